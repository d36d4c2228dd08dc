"""Distances fingertip-cylinder and cylinder-goal, from the observation's positions."""

import numpy as np
import torch


def get_state(env, obs: np.ndarray) -> dict[str, float]:
    return {
        "fingertip_to_object": float(np.linalg.norm(obs[17:20] - obs[14:17])),
        "object_to_goal": float(np.linalg.norm(obs[17:19] - obs[20:22])),
    }


def get_state_batched(env, obs: torch.Tensor) -> dict[str, torch.Tensor]:
    return {
        "fingertip_to_object": torch.linalg.vector_norm(obs[:, 17:20] - obs[:, 14:17], dim=1),
        "object_to_goal": torch.linalg.vector_norm(obs[:, 17:19] - obs[:, 20:22], dim=1),
    }
