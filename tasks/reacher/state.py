"""Reacher's joint angles, fingertip position and distance, read from the simulator."""

import numpy as np
import torch


def get_state(env, obs: np.ndarray) -> dict[str, np.ndarray | float]:
    fingertip = env.get_body_com("fingertip")[:2]
    target = env.get_body_com("target")[:2]
    return {
        "joint_angles": env.data.qpos[:2].copy(),
        "fingertip_position": fingertip.copy(),
        "distance": float(np.linalg.norm(fingertip - target)),
    }


def get_state_batched(env, obs: torch.Tensor) -> dict[str, torch.Tensor]:
    xpos = env.sim["xpos"]
    fingertip = xpos[:, env.body_id("fingertip"), :2]
    target = xpos[:, env.body_id("target"), :2]
    state = {
        "joint_angles": env.sim["qpos"][:, :2],
        "fingertip_position": fingertip,
        "distance": torch.linalg.vector_norm(fingertip - target, dim=1),
    }
    return {name: value.to(obs.device, torch.float32) for name, value in state.items()}
