"""Ant: F is the distance walked forward; the success signal is walking at over 1 m/s while healthy."""

import torch


def success_signal(torso_velocity: torch.Tensor, torso_height: torch.Tensor) -> torch.Tensor:
    healthy = (torso_height >= 0.2) & (torso_height <= 1.0)
    return ((torso_velocity[:, 0] > 1.0) & healthy).float()


def episode_fitness(episode) -> float:
    x = episode.states["x_position"]
    return float(x[-1] - x[0])
