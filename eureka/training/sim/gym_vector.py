"""The general fallback backend: N gymnasium environments of any task folder, stepped in turn.

No speed-up over SB3's DummyVecEnv in the physics, but the rest of the fast path (batched
reward, tensor rollouts, the batched PPO) applies to every task. The named state fields are
built per environment by the task's `state.py` `get_state`, exactly as on the SB3 path, and
handed over as `named_state` (so no `get_state_batched` is needed).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from eureka.errors import TaskError
from eureka.training.envs import StateExtractor, make_env
from eureka.training.sim.base import ActionSpec, BatchedEnv, Step
from eureka.types import Task


class GymVector(BatchedEnv):
    """`num_envs` copies of the task's gymnasium environment behind the BatchedEnv contract.

    `sim` is empty; `named_state` holds every state field `[N, *shape]` (float32) with the
    semantics of `sim` in base.py (pre-reset after a step)."""

    def __init__(self, task: Task, num_envs: int, device: torch.device | str = "cpu", seed: int = 0) -> None:
        self.task = task
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.envs = [make_env(task) for _ in range(num_envs)]
        self.extractor = StateExtractor(task)
        space = self.envs[0].observation_space
        self.obs_dim = int(np.prod(space.shape or (1,)))
        act = self.envs[0].action_space
        if isinstance(act, gym.spaces.Discrete):
            self.action = ActionSpec(discrete=int(act.n))
        elif isinstance(act, gym.spaces.Box):
            self.action = ActionSpec(
                discrete=None,
                dim=int(np.prod(act.shape)),
                low=tuple(float(v) for v in act.low.reshape(-1)),
                high=tuple(float(v) for v in act.high.reshape(-1)),
            )
        else:
            raise TaskError(
                f"{task.folder / 'task.yaml'}: the batched path takes Box and Discrete actions, not {act}; "
                "train this task on SB3 (--backend sb3, or training.backend: sb3 in task.yaml)"
            )
        self._action_shape = act.shape
        limit = self.envs[0].spec.max_episode_steps if self.envs[0].spec else None
        self.max_episode_steps = int(limit or 0)
        self.sim: dict[str, torch.Tensor] = {}
        self.named_state: dict[str, torch.Tensor] = {}
        self.named_state_next: dict[str, torch.Tensor] = {}
        """Like `sim_next`: the fields the next step starts from (reset state where one ended)."""
        self.sim_next: dict[str, torch.Tensor] = {}
        self._seed = seed
        self._resets = 0

    def _next_seed(self) -> int:
        self._resets += 1
        return self._seed * 1_000_003 + self._resets

    def _stack(self, states: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        return {
            name: torch.as_tensor(
                np.stack([s[name] for s in states]), dtype=torch.float32, device=self.device
            )
            for name in self.task.spec.state
        }

    def _tensor(self, rows: list[Any]) -> torch.Tensor:
        return torch.as_tensor(
            np.stack(rows).reshape(self.num_envs, -1), dtype=torch.float32, device=self.device
        )

    def reset(self, seed: int | None = None) -> torch.Tensor:
        if seed is not None:
            self._seed, self._resets = seed, 0
        observations, states = [], []
        for env in self.envs:
            obs, _ = env.reset(seed=self._next_seed())
            observations.append(np.asarray(obs, dtype=np.float32))
            states.append(self.extractor(env, obs))
        self.named_state = self.named_state_next = self._stack(states)
        return self._tensor(observations)

    def step(self, actions: torch.Tensor) -> Step:
        acts = actions.detach().cpu().numpy()
        observations, finals, rewards, terms, truncs, states, nexts = [], [], [], [], [], [], []
        for i, env in enumerate(self.envs):
            action = acts[i] if self.action.discrete is None else int(acts[i])
            if self.action.discrete is None:
                action = np.asarray(action, dtype=np.float32).reshape(self._action_shape)
            obs, reward, terminated, truncated, _ = env.step(action)
            states.append(self.extractor(env, obs))
            finals.append(np.asarray(obs, dtype=np.float32))
            if terminated or truncated:
                obs, _ = env.reset(seed=self._next_seed())
                nexts.append(self.extractor(env, obs))
            else:
                nexts.append(states[-1])
            observations.append(np.asarray(obs, dtype=np.float32))
            rewards.append(float(reward))
            terms.append(bool(terminated))
            truncs.append(bool(truncated) and not bool(terminated))
        self.named_state = self._stack(states)
        self.named_state_next = self._stack(nexts)
        return Step(
            obs=self._tensor(observations),
            reward=torch.tensor(rewards, dtype=torch.float32, device=self.device),
            terminated=torch.tensor(terms, dtype=torch.bool, device=self.device),
            truncated=torch.tensor(truncs, dtype=torch.bool, device=self.device),
            final_obs=self._tensor(finals),
        )

    def close(self) -> None:
        for env in self.envs:
            env.close()
