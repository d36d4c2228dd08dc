"""FetchPush, pushed away: the block starts 10-14 cm from the gripper (gymnasium-robotics' draw with
a range of +-10 cm instead of +-15 cm) and the goal lies 15 cm from the block, in a direction up to
15 degrees off straight away from the gripper's start (turned farther aside where the goal would
come within 2 cm of the table's far edge)."""

from typing import Any, ClassVar

import numpy as np
from gymnasium_robotics.envs.fetch.push import MujocoFetchPushEnv

PUSH = 0.15
"""How far from the block the goal lies (m)."""
TURN = np.pi / 12
"""Largest angle between the push and straight away from the gripper's start."""
FAR_EDGE = 1.53
"""The largest x of a goal (the table ends at 1.55 m)."""


class AwayFetchPush(MujocoFetchPushEnv):
    # no "human" window: gymnasium's env checker opens one for every listed mode, which aborts
    # the process on a machine without a display
    metadata: ClassVar[dict[str, Any]] = {
        **MujocoFetchPushEnv.metadata,
        "render_modes": ["rgb_array", "depth_array"],
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.obj_range = 0.1

    def _sample_goal(self) -> np.ndarray:
        block = self.data.qpos[self.model.joint("object0:joint").qposadr[0] :][:2].copy()
        away = block - self.initial_gripper_xpos[:2]
        angle = np.arctan2(away[1], away[0]) + self.np_random.uniform(-TURN, TURN)
        widest = np.arccos((FAR_EDGE - block[0]) / PUSH) if block[0] + PUSH > FAR_EDGE else 0.0
        if abs(angle) < widest:  # past the far edge: turn it aside, to the same side
            angle = np.copysign(widest, angle)
        return np.array([*(block + PUSH * np.array([np.cos(angle), np.sin(angle)])), self.height_offset])
