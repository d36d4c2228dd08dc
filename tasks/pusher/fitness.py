"""Pusher: the success signal is the cylinder lying within 10 cm of the goal."""

import torch


def success_signal(object_to_goal: torch.Tensor) -> torch.Tensor:
    return (object_to_goal < 0.1).float()
