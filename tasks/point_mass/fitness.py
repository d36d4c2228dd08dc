"""Point mass: the success signal is being inside the goal disc."""

import torch


def success_signal(goal_distance: torch.Tensor) -> torch.Tensor:
    return (goal_distance < 0.15).float()
