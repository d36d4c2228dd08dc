"""Hopper jumping in place: the success signal is the torso above 1.4 m within 0.5 m of the start."""

import torch


def success_signal(torso_height: torch.Tensor, x_position: torch.Tensor) -> torch.Tensor:
    return ((torso_height > 1.4) & (x_position.abs() < 0.5)).float()
