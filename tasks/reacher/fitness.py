"""Reacher's success signal: the fingertip is within 5 cm of the target."""

import torch


def success_signal(distance: torch.Tensor) -> torch.Tensor:
    return (distance < 0.05).float()
