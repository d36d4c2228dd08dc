"""MountainCarContinuous's success signal: the car is at the flag."""

import torch


def success_signal(position: torch.Tensor) -> torch.Tensor:
    return (position >= 0.45).float()
