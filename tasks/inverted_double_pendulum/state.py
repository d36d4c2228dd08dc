"""InvertedDoublePendulum's joint angles and tip position, read from the simulator."""

import numpy as np


def get_state(env, obs: np.ndarray) -> dict[str, float]:
    tip = env.data.site_xpos[0]
    return {
        "lower_pole_angle": float(env.data.qpos[1]),
        "upper_pole_angle": float(env.data.qpos[2]),
        "tip_x": float(tip[0]),
        "tip_height": float(tip[2]),
    }
