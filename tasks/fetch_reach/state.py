"""Distance from the gripper to the goal (achieved vs desired goal of the flattened observation)."""

import numpy as np
import torch


def get_state(env, obs: np.ndarray) -> dict[str, float]:
    return {"goal_distance": float(np.linalg.norm(obs[0:3] - obs[3:6]))}


def get_state_batched(env, obs: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"goal_distance": torch.linalg.vector_norm(obs[:, 0:3] - obs[:, 3:6], dim=1)}
