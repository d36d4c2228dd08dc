"""Unbounded Python recursion."""

# expect: crashed
# message: RecursionError
import torch


def _deeper(x: torch.Tensor) -> torch.Tensor:
    return _deeper(x + 1)


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return _deeper(pole_angle), {}
