"""A 2-D point mass that must reach a goal on the far side of a round obstacle.

The environment's own reward is sparse: 1 on the step the goal is reached, else 0.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

ARENA = 2.0
OBSTACLE_CENTRE = np.array([0.0, 0.0])
OBSTACLE_RADIUS = 0.5
GOAL = np.array([1.3, 0.0])
START = np.array([-1.3, 0.0])
GOAL_RADIUS = 0.15
DT = 0.1
ACCEL = 2.0
DAMPING = 0.9


class PointMassEnv(gym.Env[np.ndarray, np.ndarray]):
    """Observation: position (2), velocity (2), goal (2). Action: force in [-1, 1]^2."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, render_mode: str | None = None, start_noise: float = 0.2) -> None:
        self.render_mode = render_mode
        self.start_noise = start_noise
        high = np.array([ARENA, ARENA, 3.0, 3.0, ARENA, ARENA], dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.position = START.copy()
        self.velocity = np.zeros(2)

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.position, self.velocity, GOAL]).astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.position = START + self.np_random.uniform(-self.start_noise, self.start_noise, size=2)
        self.velocity = np.zeros(2)
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        force = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        self.velocity = DAMPING * self.velocity + ACCEL * DT * force
        self.position = np.clip(self.position + DT * self.velocity, -ARENA, ARENA)
        offset = self.position - OBSTACLE_CENTRE
        dist = float(np.linalg.norm(offset))
        if dist < OBSTACLE_RADIUS:  # pushed back to the surface; the inward velocity is lost
            normal = offset / max(dist, 1e-9)
            self.position = OBSTACLE_CENTRE + normal * OBSTACLE_RADIUS
            inward = float(self.velocity @ normal)
            if inward < 0:
                self.velocity = self.velocity - inward * normal
        reached = bool(np.linalg.norm(self.position - GOAL) < GOAL_RADIUS)
        return self._obs(), float(reached), reached, False, {}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        size = 256
        ys, xs = np.mgrid[0:size, 0:size]
        wx = (xs / (size - 1)) * 2 * ARENA - ARENA
        wy = ARENA - (ys / (size - 1)) * 2 * ARENA
        img = np.full((size, size, 3), 245, dtype=np.uint8)

        def disc(centre: np.ndarray, radius: float) -> np.ndarray:
            return (wx - centre[0]) ** 2 + (wy - centre[1]) ** 2 < radius**2

        img[disc(OBSTACLE_CENTRE, OBSTACLE_RADIUS)] = (90, 90, 90)
        img[disc(GOAL, GOAL_RADIUS)] = (60, 180, 75)
        img[disc(self.position, 0.06)] = (30, 90, 200)
        return img
