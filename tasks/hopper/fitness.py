"""Hopper: F is the distance travelled forward; the success signal is hopping at over 1 m/s."""

import torch


def success_signal(x_velocity: torch.Tensor, torso_height: torch.Tensor) -> torch.Tensor:
    return ((x_velocity > 1.0) & (torso_height > 0.7)).float()


def episode_fitness(episode) -> float:
    x = episode.states["x_position"]
    return float(x[-1] - x[0])
