"""Pendulum's angle from upright, read from the simulator (the observation only has cos/sin)."""

import math

import numpy as np


def get_state(env, obs: np.ndarray) -> dict[str, float]:
    theta = float(env.state[0])
    return {"pole_angle": ((theta + math.pi) % (2 * math.pi)) - math.pi}
