"""The batched-environment contract: N copies of a task's environment stepped together, with
observations, rewards and the simulator's state as torch tensors on one device.

Every backend (native torch ports, threaded MuJoCo, gymnasium's vector env as the fallback)
implements `BatchedEnv`. Episodes reset automatically; `step` reports the observation and the
simulator state reached by the step *before* finished environments were reset, so a reward
and the task's fitness see terminal states exactly as gymnasium's single env shows them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ActionSpec:
    """What `step` takes: Discrete(n) as int64 `[N]`, or a Box as float32 `[N, dim]`."""

    discrete: int | None
    """Number of actions of a Discrete space; None for a Box."""
    dim: int = 1
    """Size of a Box action (1 for Discrete)."""
    low: tuple[float, ...] = ()
    """Lower bound of each Box dimension (empty for Discrete)."""
    high: tuple[float, ...] = ()

    @property
    def is_discrete(self) -> bool:
        return self.discrete is not None


@dataclass(frozen=True)
class Step:
    """What one batched step returns; every tensor has the batch first."""

    obs: torch.Tensor
    """`[N, obs_dim]` float32: the next observation, already the first of a new episode where
    `terminated | truncated`."""
    reward: torch.Tensor
    """`[N]` float32: the environment's own reward for the step."""
    terminated: torch.Tensor
    """`[N]` bool: a terminal condition was met."""
    truncated: torch.Tensor
    """`[N]` bool: the time limit (`max_episode_steps`) ended the episode, and it did not terminate."""
    final_obs: torch.Tensor
    """`[N, obs_dim]` float32: the observation the step reached, before any reset (equal to
    `obs` where the episode goes on)."""


class BatchedEnv(ABC):
    """N environments of one kind stepped together as tensors, with automatic reset.

    Besides observations, a backend exposes its simulator's state in `sim` (names documented
    by each backend, e.g. `state` `[N, 4]` for CartPole as gymnasium's `env.state`, or `qpos`,
    `qvel` for MuJoCo) so that a task's `state.py` can build named state fields for all
    environments at once (`get_state_batched(env, obs)`). After `reset()`, `sim` holds the
    reset state; after `step()`, the state the step reached, before finished envs were reset.
    """

    num_envs: int
    device: torch.device
    obs_dim: int
    action: ActionSpec
    max_episode_steps: int
    sim: dict[str, torch.Tensor]
    sim_next: dict[str, torch.Tensor]
    """After `step()`: the state the next step starts from (`sim` where the episode goes on,
    the reset state where it ended), so `prev_<field>` of a new episode is its reset state.
    After `reset()`: the same as `sim`."""
    generators: tuple[torch.Generator, ...] = ()
    """The random generators `step` draws from, besides torch's default ones (a CUDA graph that
    captures the step registers them)."""
    graphable: bool = False
    """True where `step` stays on the device (no copy to the host, no wait for it), so a CUDA
    graph can capture it (`training.batched.cuda_graph`); False for environments stepped on the
    host (CPU threads, MJX through jax), which then train eagerly."""

    @abstractmethod
    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset every environment; return the observations `[N, obs_dim]`."""

    @abstractmethod
    def step(self, actions: torch.Tensor) -> Step:
        """Apply `actions` (`[N]` int64 or `[N, dim]` float32, within the action bounds) and
        reset the environments whose episode ended."""

    def close(self) -> None:  # noqa: B027 - optional for backends that hold no resources
        """Release threads or simulator handles."""
