"""Distances gripper-block and block-goal, from the flattened goal observation."""

import numpy as np
import torch


def get_state(env, obs: np.ndarray) -> dict[str, float]:
    return {
        "gripper_to_object": float(np.linalg.norm(obs[12:15])),
        "object_to_goal": float(np.linalg.norm(obs[0:3] - obs[3:6])),
    }


def get_state_batched(env, obs: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "gripper_to_object": torch.linalg.vector_norm(obs[:, 12:15], dim=1),
        "object_to_goal": torch.linalg.vector_norm(obs[:, 0:3] - obs[:, 3:6], dim=1),
    }
