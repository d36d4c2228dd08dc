"""HalfCheetah: F is the distance run forward; the success signal is running at over 3 m/s."""

import torch


def success_signal(x_velocity: torch.Tensor) -> torch.Tensor:
    return (x_velocity > 3.0).float()


def episode_fitness(episode) -> float:
    x = episode.states["x_position"]
    return float(x[-1] - x[0])
