"""The task's true metric F per episode, its success signal, and per-environment episode tracking."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from eureka import tasks
from eureka.errors import TaskError
from eureka.reward.contract import RewardFunction
from eureka.training.envs import task_code_raised
from eureka.types import Episode, Task

SIGNAL_METRICS = {"signal_sum", "signal_mean", "signal_any", "signal_at_end"}


class Fitness:
    """Computes F for finished episodes and the per-step success signal of a task."""

    def __init__(self, task: Task) -> None:
        self.spec = task.spec.fitness
        module = tasks.load_module(task, "fitness.py")
        fields = list(task.spec.state)
        where = self.where = task.folder / "fitness.py"
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
            value = float(np.sum(ep.env_rewards))
            if not math.isfinite(value):
                raise TaskError(
                    f"{self.where}: fitness.metric env_return: the environment's rewards in an episode sum "
                    f"to {value}; F must be finite: fix the environment's reward (eureka tasks check "
                    f"{self.where.parent} finds it on a random rollout)"
                )
            return value
        if metric == "episode_length":
            return float(ep.length)
        if metric == "custom":
            assert self.custom is not None
            return self._custom(ep)
        sig = ep.signal if ep.signal is not None else np.zeros(1)
        if metric == "signal_sum":
            return float(np.sum(sig))
        if metric == "signal_mean":
            return float(np.mean(sig))
        if metric == "signal_any":
            return float(np.any(sig > 0.5))
        return float(sig[-1] > 0.5)

    def _custom(self, ep: Episode) -> float:
        """fitness.py's episode_fitness of `ep`: a finite number, or a TaskError that says what
        it returned or raised, and where."""
        assert self.custom is not None
        try:
            value = self.custom(ep)
        except Exception as exc:
            raise TaskError(
                f"{self.where}: episode_fitness: {task_code_raised(exc, self.where.parent)}"
            ) from None
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is None or not math.isfinite(number):
            raise TaskError(
                f"{self.where}: episode_fitness returned {value!r:.80}; it must return the episode's F as "
                "one finite number"
            )
        return number

    def succeeded(self, value: float) -> bool:
        return self.spec.threshold is not None and value >= self.spec.threshold


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
    turned into an Episode for each environment whose episode ends. `tick` then `write` keep a
    step (counted on the host, written on the device); `flush` reads the ends of the steps since
    the last flush back at once (a trainer flushes once per rollout, not at every step: each
    read waits for the device)."""

    def __init__(
        self, n_envs: int, max_steps: int, keep_states: bool, device: torch.device, interval: int = 1
    ) -> None:
        self.n = n_envs
        self.keep = (max_steps if max_steps > 0 else 4096) + 1
        """Rows of history an episode keeps; a longer episode keeps only its last `keep` steps."""
        self.interval = max(1, interval)
        """Steps recorded between two flushes at most (more flush by themselves at `tick`)."""
        self.size = self.keep + self.interval - 1
        """Rows in the ring: an episode that ended `interval - 1` steps before a flush still has
        its `keep` rows."""
        self.keep_states = keep_states
        self.device = device
        self.rewards = torch.zeros(self.size, n_envs, dtype=torch.float64, device=device)
        self.signals = torch.zeros(self.size, n_envs, device=device)
        self.ends = torch.zeros(self.size, 2, n_envs, dtype=torch.bool, device=device)
        """Per step: terminated, truncated."""
        self.states: dict[str, torch.Tensor] = {}
        self.has_signal = False
        self.t = 0
        """Steps recorded, counted on the host by `tick`."""
        self._row = torch.zeros(1, dtype=torch.long, device=device)
        """The ring row the next step goes to (`t % size`), kept on the device: a replayed CUDA
        graph cannot index with a host integer that changes between replays."""
        self.start = np.zeros(n_envs, dtype=np.int64)
        """The step each environment's current episode started at (known up to the last flush)."""
        self._flushed = 0
        self._ready: list[tuple[int, int, Episode]] = []

    def tick(self) -> None:
        """A step's work on the host, before its `write`: the step counted (and the steps since
        the last flush collected first when `interval` of them are waiting)."""
        if self.t - self._flushed >= self.interval:
            self._ready += self._collect()
        self.t += 1

    def write(
        self,
        env_rewards: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
        signal: torch.Tensor | None,
        state: Mapping[str, torch.Tensor],
    ) -> None:
        """A step's work on the device, after its `tick` (what a CUDA graph can capture): the step
        written to the ring's next row (nothing is read back from the device)."""
        row = self._row
        self.rewards.index_copy_(0, row, env_rewards.to(torch.float64).unsqueeze(0))
        if signal is not None:
            self.has_signal = True
            self.signals.index_copy_(0, row, signal.float().unsqueeze(0))
        if self.keep_states:
            for name, value in state.items():
                if name not in self.states:
                    self.states[name] = torch.zeros(self.size, *value.shape, device=self.device)
                ring = self.states[name]
                ring.index_copy_(0, row, value.to(ring.dtype).unsqueeze(0))
        ends = torch.stack((terminated.to(torch.bool), truncated.to(torch.bool)))
        self.ends.index_copy_(0, row, ends.unsqueeze(0))
        self._row.add_(1).remainder_(self.size)

    def flush(self) -> list[tuple[int, int, Episode]]:
        """(step, env index, Episode) for every episode that ended since the last flush, in the
        order they ended (by step, then by environment); `step` counts `tick`s from 0."""
        finished, self._ready = self._ready + self._collect(), []
        return finished

    def step(
        self,
        env_rewards: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
        signal: torch.Tensor | None,
        state: Mapping[str, torch.Tensor],
    ) -> list[tuple[int, Episode]]:
        """Keep one batched step and flush: (env index, Episode) for every episode that ended."""
        self.tick()
        self.write(env_rewards, terminated, truncated, signal, state)
        return [(i, episode) for _, i, episode in self.flush()]

    def _collect(self) -> list[tuple[int, int, Episode]]:
        first, self._flushed = self._flushed, self.t
        if first == self.t:
            return []
        rows = torch.arange(first, self.t, device=self.device) % self.size
        ends = self.ends[rows].cpu().numpy()
        steps, envs = np.nonzero(ends.any(1))
        if not len(envs):
            return []
        found: list[tuple[int, int, int, bool]] = []
        history: list[np.ndarray] = []
        for k, i in zip(steps.tolist(), envs.tolist(), strict=True):
            t = first + k
            begin = int(self.start[i])
            found.append((t, i, t - begin + 1, bool(ends[k, 0, i])))
            history.append(np.arange(max(begin, t - self.keep + 1), t + 1))
            self.start[i] = t + 1
        sizes = [len(h) for h in history]
        cuts = np.cumsum(sizes)[:-1]
        at = torch.as_tensor(np.concatenate(history) % self.size, device=self.device)
        which = torch.as_tensor(np.repeat(envs, sizes), device=self.device)

        def gather(ring: torch.Tensor) -> list[np.ndarray]:
            return np.split(ring[at, which].cpu().numpy(), cuts)

        rewards = gather(self.rewards)
        signals = gather(self.signals) if self.has_signal else None
        states = {name: gather(ring) for name, ring in self.states.items()}
        return [
            (
                t,
                i,
                Episode(
                    states={name: parts[j] for name, parts in states.items()},
                    env_rewards=rewards[j],
                    signal=signals[j] if signals is not None else None,
                    length=length,
                    terminated=terminated,
                ),
            )
            for j, (t, i, length, terminated) in enumerate(found)
        ]
