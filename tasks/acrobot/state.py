"""Acrobot's joint angles and tip height, read from the simulator."""

import math

import numpy as np
import torch


def _wrap(angle: float) -> float:
    return ((angle + math.pi) % (2 * math.pi)) - math.pi


def get_state(env, obs: np.ndarray) -> dict[str, float]:
    s = env.state
    return {
        "shoulder_angle": _wrap(float(s[0])),
        "elbow_angle": _wrap(float(s[1])),
        "tip_height": float(-math.cos(s[0]) - math.cos(s[0] + s[1])),
    }


def get_state_batched(env, obs: torch.Tensor) -> dict[str, torch.Tensor]:
    s = env.sim["state"].to(obs.device)

    def wrap(angle: torch.Tensor) -> torch.Tensor:
        return (torch.remainder(angle + math.pi, 2 * math.pi) - math.pi).to(torch.float32)

    return {
        "shoulder_angle": wrap(s[:, 0]),
        "elbow_angle": wrap(s[:, 1]),
        "tip_height": (-torch.cos(s[:, 0]) - torch.cos(s[:, 0] + s[:, 1])).to(torch.float32),
    }
