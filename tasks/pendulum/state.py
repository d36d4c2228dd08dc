"""Pendulum's angle from upright, read from the simulator (the observation only has cos/sin)."""

import math

import numpy as np
import torch


def get_state(env, obs: np.ndarray) -> dict[str, float]:
    theta = float(env.state[0])
    return {"pole_angle": ((theta + math.pi) % (2 * math.pi)) - math.pi}


def get_state_batched(env, obs: torch.Tensor) -> dict[str, torch.Tensor]:
    theta = env.sim["state"][:, 0].to(obs.device)
    return {"pole_angle": (torch.remainder(theta + math.pi, 2 * math.pi) - math.pi).to(torch.float32)}
