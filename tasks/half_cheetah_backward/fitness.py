"""HalfCheetah backwards: F is the distance run in -x while upright; the success signal is
running backwards at over 2 m/s without being upside down."""

import numpy as np
import torch


def success_signal(x_velocity: torch.Tensor, torso_angle: torch.Tensor) -> torch.Tensor:
    return ((x_velocity < -2.0) & (torso_angle.abs() < 1.5)).float()


def episode_fitness(episode) -> float:
    x = episode.states["x_position"]
    upright = np.abs(episode.states["torso_angle"]) < 1.5
    steps = -np.diff(x, prepend=x[0])
    return float(np.sum(steps * upright))
