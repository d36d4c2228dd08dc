"""Ant turning in place: F is the net counter-clockwise turn (radians) made within 1 m of the
start; the success signal is turning faster than 1.5 rad/s there."""

import numpy as np
import torch


def success_signal(torso_angular_velocity: torch.Tensor, distance_from_start: torch.Tensor) -> torch.Tensor:
    return ((torso_angular_velocity[:, 2] > 1.5) & (distance_from_start < 1.0)).float()


def episode_fitness(episode) -> float:
    heading = np.unwrap(np.asarray(episode.states["heading"], dtype=np.float64))
    near = np.asarray(episode.states["distance_from_start"]) < 1.0
    turns = np.diff(heading, prepend=heading[0])
    return float(np.sum(turns * near))
