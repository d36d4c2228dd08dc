"""Straight-line distance from the ball to the goal, from the flattened goal observation."""

import numpy as np
import torch


def get_state(env, obs: np.ndarray) -> dict[str, float]:
    return {"goal_distance": float(np.linalg.norm(obs[0:2] - obs[2:4]))}


def get_state_batched(env, obs: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"goal_distance": torch.linalg.vector_norm(obs[:, 0:2] - obs[:, 2:4], dim=1)}
