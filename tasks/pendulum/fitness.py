"""Pendulum's success signal: within 0.3 rad of upright."""

import torch


def success_signal(pole_angle: torch.Tensor) -> torch.Tensor:
    return (pole_angle.abs() < 0.3).float()
