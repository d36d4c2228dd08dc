"""FetchReach: the success signal is the gripper within 5 cm of the goal (gymnasium-robotics' own test)."""

import torch


def success_signal(goal_distance: torch.Tensor) -> torch.Tensor:
    return (goal_distance < 0.05).float()
