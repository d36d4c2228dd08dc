"""FetchReach, far and precise: the success signal is the gripper within 2 cm of the goal.
gymnasium-robotics' own test (5 cm of a goal within 15 cm) is met by random motion in about 17% of
episodes, and the sparse reward alone learns it; with env.py's far goals, random motion comes
within 3 cm in under 0.5% of episodes."""

import torch


def success_signal(goal_distance: torch.Tensor) -> torch.Tensor:
    return (goal_distance < 0.02).float()
