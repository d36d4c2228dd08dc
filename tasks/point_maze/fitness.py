"""Point maze: the success signal is the ball within 0.45 m of the goal (gymnasium-robotics' own test)."""

import torch


def success_signal(goal_distance: torch.Tensor) -> torch.Tensor:
    return (goal_distance <= 0.45).float()
