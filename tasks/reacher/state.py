"""Reacher's joint angles, fingertip position and distance, read from the simulator."""

import numpy as np


def get_state(env, obs: np.ndarray) -> dict[str, np.ndarray | float]:
    fingertip = env.get_body_com("fingertip")[:2]
    target = env.get_body_com("target")[:2]
    return {
        "joint_angles": env.data.qpos[:2].copy(),
        "fingertip_position": fingertip.copy(),
        "distance": float(np.linalg.norm(fingertip - target)),
    }
