"""Distances to the goal and to the obstacle's surface, computed from the position."""

import numpy as np
import torch
from env import GOAL, OBSTACLE_CENTRE, OBSTACLE_RADIUS


def get_state(env, obs: np.ndarray) -> dict[str, float]:
    position = obs[:2]
    return {
        "goal_distance": float(np.linalg.norm(position - GOAL)),
        "obstacle_distance": float(np.linalg.norm(position - OBSTACLE_CENTRE) - OBSTACLE_RADIUS),
    }


def get_state_batched(env, obs: torch.Tensor) -> dict[str, torch.Tensor]:
    position = obs[:, :2].to(torch.float64)
    goal = torch.as_tensor(GOAL, dtype=torch.float64, device=obs.device)
    centre = torch.as_tensor(OBSTACLE_CENTRE, dtype=torch.float64, device=obs.device)
    return {
        "goal_distance": torch.linalg.vector_norm(position - goal, dim=1).to(torch.float32),
        "obstacle_distance": (torch.linalg.vector_norm(position - centre, dim=1) - OBSTACLE_RADIUS).to(
            torch.float32
        ),
    }
