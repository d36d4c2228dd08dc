"""PointMassEnv (env.py) ported to torch: N point masses stepped together as tensors."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from env import ACCEL, ARENA, DAMPING, DT, GOAL, GOAL_RADIUS, OBSTACLE_CENTRE, OBSTACLE_RADIUS, START

from eureka.training.sim.base import ActionSpec
from eureka.training.sim.classic import F64, TorchEnv


class PointMassBatched(TorchEnv):
    """env.py's PointMassEnv, step for step, in float64.

    `sim["state"]` `[N, 4]` float64: x, y, vx, vy (PointMassEnv's `position` then `velocity`).
    Observations `[N, 6]` float32: position, velocity, goal. Actions float32 `[N, 2]`: the force,
    clipped to [-1, 1]. Keyword: `start_noise`. The time limit is the task's
    (`max_episode_steps` is required: PointMassEnv has none of its own).
    """

    obs_dim = 6
    action = ActionSpec(discrete=None, dim=2, low=(-1.0, -1.0), high=(1.0, 1.0))
    state_dim = 4
    default_max_episode_steps = None
    defaults: ClassVar[dict[str, Any]] = {"start_noise": 0.2}

    def __init__(
        self,
        num_envs: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
        max_episode_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        device = torch.device(device)
        self._start = torch.as_tensor(START, dtype=F64, device=device)
        self._goal = torch.as_tensor(GOAL, dtype=F64, device=device)
        self._centre = torch.as_tensor(OBSTACLE_CENTRE, dtype=F64, device=device)
        super().__init__(num_envs, device, seed, max_episode_steps, **kwargs)

    def _sample(self, n: int) -> torch.Tensor:
        noise = self.params["start_noise"]
        position = self._start + self._uniform(-noise, noise, (n, 2))
        return torch.cat((position, torch.zeros_like(position)), dim=1)

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        goal = self._goal.expand(state.shape[0], 2)
        return torch.cat((state, goal), dim=1).to(torch.float32)

    def _dynamics(
        self, state: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        position, velocity = state[:, :2], state[:, 2:]
        force = actions.to(F64).clamp(-1.0, 1.0)
        velocity = DAMPING * velocity + ACCEL * DT * force
        position = (position + DT * velocity).clamp(-ARENA, ARENA)
        offset = position - self._centre
        dist = _norm(offset)
        # inside the obstacle: pushed back to its surface, and the inward velocity is lost
        inside = dist < OBSTACLE_RADIUS
        normal = offset / dist.clamp(min=1e-9)[:, None]
        position = torch.where(inside[:, None], self._centre + normal * OBSTACLE_RADIUS, position)
        inward = velocity[:, 0] * normal[:, 0] + velocity[:, 1] * normal[:, 1]
        lose = (inside & (inward < 0))[:, None]
        velocity = torch.where(lose, velocity - inward[:, None] * normal, velocity)
        reached = _norm(position - self._goal) < GOAL_RADIUS
        return torch.cat((position, velocity), dim=1), reached.to(F64), reached


def _norm(v: torch.Tensor) -> torch.Tensor:
    """Length of each row of `[N, 2]`, summed in the order numpy's `linalg.norm` sums."""
    return torch.sqrt(v[:, 0] * v[:, 0] + v[:, 1] * v[:, 1])
