"""Distances to the goal and to the obstacle's surface, computed from the position."""

import numpy as np
from env import GOAL, OBSTACLE_CENTRE, OBSTACLE_RADIUS


def get_state(env, obs: np.ndarray) -> dict[str, float]:
    position = obs[:2]
    return {
        "goal_distance": float(np.linalg.norm(position - GOAL)),
        "obstacle_distance": float(np.linalg.norm(position - OBSTACLE_CENTRE) - OBSTACLE_RADIUS),
    }
