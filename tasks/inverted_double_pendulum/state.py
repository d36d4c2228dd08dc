"""InvertedDoublePendulum's joint angles and tip position, read from the simulator."""

import numpy as np
import torch


def get_state(env, obs: np.ndarray) -> dict[str, float]:
    tip = env.data.site_xpos[0]
    return {
        "lower_pole_angle": float(env.data.qpos[1]),
        "upper_pole_angle": float(env.data.qpos[2]),
        "tip_x": float(tip[0]),
        "tip_height": float(tip[2]),
    }


def get_state_batched(env, obs: torch.Tensor) -> dict[str, torch.Tensor]:
    qpos, tip = env.sim["qpos"], env.sim["site_xpos"][:, 0]
    state = {
        "lower_pole_angle": qpos[:, 1],
        "upper_pole_angle": qpos[:, 2],
        "tip_x": tip[:, 0],
        "tip_height": tip[:, 2],
    }
    return {name: value.to(obs.device, torch.float32) for name, value in state.items()}
