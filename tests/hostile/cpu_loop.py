"""Spins forever inside compute_reward: the wall-clock timeout kills it."""

# expect: timeout
# timeout: 6
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    n = 0
    while True:
        n += 1
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
