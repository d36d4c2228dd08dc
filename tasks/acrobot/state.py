"""Acrobot's joint angles and tip height, read from the simulator."""

import math

import numpy as np


def _wrap(angle: float) -> float:
    return ((angle + math.pi) % (2 * math.pi)) - math.pi


def get_state(env, obs: np.ndarray) -> dict[str, float]:
    s = env.state
    return {
        "shoulder_angle": _wrap(float(s[0])),
        "elbow_angle": _wrap(float(s[1])),
        "tip_height": float(-math.cos(s[0]) - math.cos(s[0] + s[1])),
    }
