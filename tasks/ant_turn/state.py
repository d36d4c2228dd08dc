"""The torso's position, distance from the start and heading (yaw from its quaternion)."""

import numpy as np
import torch


def _yaw(w, x, y, z):
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def get_state(env, obs: np.ndarray) -> dict[str, np.ndarray | float]:
    xy = env.data.qpos[:2].copy()
    w, x, y, z = env.data.qpos[3:7]
    return {
        "xy_position": xy,
        "distance_from_start": float(np.linalg.norm(xy)),
        "heading": float(_yaw(w, x, y, z)),
    }


def get_state_batched(env, obs: torch.Tensor) -> dict[str, torch.Tensor]:
    qpos = env.sim["qpos"]
    w, x, y, z = qpos[:, 3], qpos[:, 4], qpos[:, 5], qpos[:, 6]
    state = {
        "xy_position": qpos[:, :2],
        "distance_from_start": torch.linalg.vector_norm(qpos[:, :2], dim=1),
        "heading": torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)),
    }
    return {name: value.to(obs.device, torch.float32) for name, value in state.items()}
