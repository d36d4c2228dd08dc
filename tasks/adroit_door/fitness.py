"""Adroit door: the success signal is the door open past 1.35 rad (gymnasium-robotics' own test)."""

import torch


def success_signal(door_angle: torch.Tensor) -> torch.Tensor:
    return (door_angle >= 1.35).float()
