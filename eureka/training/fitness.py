"""The task's true metric F per episode, its success signal, and per-environment episode tracking."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from eureka import tasks
from eureka.errors import TaskError
from eureka.reward.contract import RewardFunction
from eureka.types import Episode, Task

SIGNAL_METRICS = {"signal_sum", "signal_mean", "signal_any", "signal_at_end"}


class Fitness:
    """Computes F for finished episodes and the per-step success signal of a task."""

    def __init__(self, task: Task) -> None:
        self.spec = task.spec.fitness
        module = tasks.load_module(task, "fitness.py")
        fields = list(task.spec.state)
        where = task.folder / "fitness.py"
        signal_fn = getattr(module, "success_signal", None) if module else None
        self.signal = (
            RewardFunction(signal_fn, str(where), fields, entry="success_signal", pair=False)
            if signal_fn
            else None
        )
        self.custom: Callable[[Episode], float] | None = (
            getattr(module, "episode_fitness", None) if module else None
        )
        if self.spec.metric in SIGNAL_METRICS and self.signal is None:
            raise TaskError(f"{where}: fitness.metric '{self.spec.metric}' needs success_signal(...) there")
        if self.spec.metric == "custom" and self.custom is None:
            raise TaskError(f"{where}: fitness.metric 'custom' needs episode_fitness(episode) there")
        self.needs_states = self.spec.metric == "custom"

    def signal_values(self, batch: Mapping[str, torch.Tensor], n: int) -> torch.Tensor:
        """The success signal for a batch of states, as floats in [0, 1]."""
        if self.signal is None:
            raise TaskError("this task defines no success_signal in fitness.py")
        value, _ = self.signal(batch, n)
        return value

    def of(self, ep: Episode) -> float:
        """F of one finished episode."""
        metric = self.spec.metric
        if metric == "env_return":
            return float(np.sum(ep.env_rewards))
        if metric == "episode_length":
            return float(ep.length)
        if metric == "custom":
            assert self.custom is not None
            return float(self.custom(ep))
        sig = ep.signal if ep.signal is not None else np.zeros(1)
        if metric == "signal_sum":
            return float(np.sum(sig))
        if metric == "signal_mean":
            return float(np.mean(sig))
        if metric == "signal_any":
            return float(np.any(sig > 0.5))
        return float(sig[-1] > 0.5)

    def succeeded(self, value: float) -> bool:
        return value >= self.spec.threshold


class EpisodeTracker:
    """Accumulates each environment's steps and emits an Episode when it ends."""

    def __init__(self, n_envs: int, keep_states: bool, keep_signal: bool) -> None:
        self.n = n_envs
        self.keep_states = keep_states
        self.keep_signal = keep_signal
        self._reset_all()

    def _reset_all(self) -> None:
        self.rewards: list[list[float]] = [[] for _ in range(self.n)]
        self.signals: list[list[float]] = [[] for _ in range(self.n)]
        self.states: list[list[dict[str, np.ndarray]]] = [[] for _ in range(self.n)]

    def step(
        self,
        env_rewards: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
        signal: np.ndarray | None,
    ) -> list[tuple[int, Episode]]:
        finished = []
        for i in range(self.n):
            self.rewards[i].append(float(env_rewards[i]))
            if self.keep_signal and signal is not None:
                self.signals[i].append(float(signal[i]))
            if self.keep_states:
                self.states[i].append(infos[i]["state"])
            if dones[i]:
                finished.append((i, self._close(i, bool(infos[i].get("terminated", False)))))
        return finished

    def _close(self, i: int, terminated: bool) -> Episode:
        states = (
            {k: np.stack([s[k] for s in self.states[i]]) for k in self.states[i][0]}
            if self.keep_states and self.states[i]
            else {}
        )
        ep = Episode(
            states=states,
            env_rewards=np.asarray(self.rewards[i], dtype=np.float64),
            signal=np.asarray(self.signals[i]) if self.keep_signal else None,
            length=len(self.rewards[i]),
            terminated=terminated,
        )
        self.rewards[i], self.signals[i], self.states[i] = [], [], []
        return ep


class BatchedEpisodes:
    """Episode tracking for the batched path: the per-step history of N environments in a
    ring of tensors (env reward and success signal always, state fields when F needs them),
    turned into an Episode for each environment whose episode ends."""

    def __init__(self, n_envs: int, max_steps: int, keep_states: bool, device: torch.device) -> None:
        self.n = n_envs
        self.size = (max_steps if max_steps > 0 else 4096) + 1
        """Rows kept; a longer episode keeps only its last `size` steps of history."""
        self.keep_states = keep_states
        self.device = device
        self.rewards = torch.zeros(self.size, n_envs, dtype=torch.float64, device=device)
        self.signals = torch.zeros(self.size, n_envs, device=device)
        self.states: dict[str, torch.Tensor] = {}
        self.t = 0
        self.start = torch.zeros(n_envs, dtype=torch.long, device=device)

    def step(
        self,
        env_rewards: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
        signal: torch.Tensor | None,
        state: Mapping[str, torch.Tensor],
    ) -> list[tuple[int, Episode]]:
        """Record one batched step; return (env index, Episode) for every episode that ended."""
        row = self.t % self.size
        self.rewards[row] = env_rewards.to(torch.float64)
        if signal is not None:
            self.signals[row] = signal.float()
        if self.keep_states:
            for name, value in state.items():
                if name not in self.states:
                    self.states[name] = torch.zeros(self.size, *value.shape, device=self.device)
                self.states[name][row] = value
        done = terminated | truncated
        finished: list[tuple[int, Episode]] = []
        if bool(done.any()):
            idx = done.nonzero().flatten()
            starts = self.start[idx].cpu().tolist()
            terms = terminated[idx].cpu().tolist()
            for i, first, term in zip(idx.cpu().tolist(), starts, terms, strict=True):
                length = self.t - first + 1
                rows = (
                    torch.arange(max(first, self.t - self.size + 1), self.t + 1, device=self.device)
                    % self.size
                )
                finished.append(
                    (
                        i,
                        Episode(
                            states={k: v[rows, i].cpu().numpy() for k, v in self.states.items()},
                            env_rewards=self.rewards[rows, i].cpu().numpy(),
                            signal=self.signals[rows, i].cpu().numpy() if signal is not None else None,
                            length=length,
                            terminated=bool(term),
                        ),
                    )
                )
            self.start[idx] = self.t + 1
        self.t += 1
        return finished
