"""Finite but absurd rewards (1e30): training may go on or blow up, never silently."""

# expect: ok|crashed|diverged
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    huge = torch.full_like(pole_angle, 1e30) * (1 + pole_angle)
    return huge, {"huge": huge}
