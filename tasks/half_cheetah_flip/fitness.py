"""HalfCheetah front flips: F counts full forward turns of the torso; the success signal is
having turned at least one full front flip from the start."""

import math

import numpy as np
import torch


def success_signal(torso_angle: torch.Tensor) -> torch.Tensor:
    return (torso_angle >= 2 * math.pi).float()


def episode_fitness(episode) -> float:
    pitch = np.asarray(episode.states["torso_angle"], dtype=np.float64)
    return float(np.floor(max(pitch.max() - pitch[0], 0.0) / (2 * math.pi)))
