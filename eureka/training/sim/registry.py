"""Choosing a batched backend for a task, and building its named state fields for a batch.

Native backends (torch ports, threaded MuJoCo, or a task folder's own `BatchedEnv` named in
task.yaml as `env.batched: module:Class`) are used when the task's state fields can be built
for the whole batch: from observation indices, plus `get_state_batched(env, obs)` in state.py
for the others. Otherwise the gymnasium fallback runs the task's own `get_state` per env.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch

from eureka import tasks
from eureka.errors import TaskError
from eureka.training.envs import gym_id
from eureka.training.sim.base import BatchedEnv
from eureka.training.sim.gym_vector import GymVector
from eureka.types import Task

Backend = Literal["auto", "native", "gym"]
Physics = Literal["auto", "cpu", "mjx"]
"""Where MuJoCo's physics runs (`BatchedSpec.physics`)."""
StateFn = Callable[[Any, torch.Tensor], dict[str, torch.Tensor]]
"""get_state_batched(env, obs): `env` is the backend (or a view of it with another `sim`)."""


def _native_class(
    task: Task, threads: int = 1, device: torch.device | None = None, physics: Physics = "auto"
) -> Callable[..., BatchedEnv] | None:
    """The native backend's constructor for this task, taking (num_envs, device, seed, ...)."""
    spec = task.spec.env
    if spec.batched:
        module_name, _, class_name = spec.batched.partition(":")
        module = tasks.load_module(task, f"{module_name}.py")
        cls = getattr(module, class_name, None) if module else None
        if cls is None:
            raise TaskError(
                f"{task.folder / 'task.yaml'}: env.batched '{spec.batched}' names no class "
                f"{class_name} in {module_name}.py of {task.folder}"
            )
        return cls
    from eureka.training.sim import classic

    if spec.id in classic.REGISTRY:
        return classic.REGISTRY[spec.id]
    from eureka.training.sim import mjx, mujoco  # MuJoCo's import (0.2 s) only for the tasks it runs

    if physics == "mjx" and spec.id not in mjx.SUPPORTED:
        raise TaskError(
            f"task {task.name}: physics 'mjx' has no port of {spec.id} "
            f"(MJX ports: {', '.join(mjx.SUPPORTED)})"
        )
    if on_mjx(spec.id, device, physics):

        def make_mjx(num_envs: int, device: torch.device, seed: int, **kwargs: Any) -> BatchedEnv:
            return mjx.MjxBatch(spec.id, num_envs, device, seed, **kwargs)

        return make_mjx
    env_id = gym_id(task)
    if mujoco.port_of(env_id) is not None:

        def make(num_envs: int, device: torch.device, seed: int, **kwargs: Any) -> BatchedEnv:
            return mujoco.MujocoBatch(env_id, num_envs, device, seed, threads=threads, **kwargs)

        return make
    return None


def on_mjx(env_id: str, device: torch.device | None, physics: Physics) -> bool:
    """A MuJoCo port of `env_id` steps on MJX (`physics` asks for it, or `auto` on a GPU where MJX
    runs and ports it); other backends take no physics."""
    from eureka.training.sim import mjx

    on_gpu = device is not None and device.type == "cuda"
    return physics == "mjx" or (physics == "auto" and on_gpu and env_id in mjx.SUPPORTED and mjx.available())


def _missing_fields(task: Task) -> list[str]:
    return [name for name, f in task.spec.state.items() if f.obs is None]


def _batched_state_fn(task: Task) -> StateFn | None:
    module = tasks.load_module(task, "state.py")
    fn = getattr(module, "get_state_batched", None) if module else None
    return fn if callable(fn) else None


def native_available(task: Task) -> tuple[bool, str]:
    """(a native backend can run this task, why not)."""
    if _native_class(task) is None:
        return False, f"no batched port of {task.spec.env.id} (set env.batched in task.yaml to add one)"
    if _missing_fields(task) and _batched_state_fn(task) is None:
        return False, (
            f"state field(s) {', '.join(_missing_fields(task))} need get_state_batched(env, obs) in state.py"
        )
    return True, ""


def make_batched(
    task: Task,
    num_envs: int,
    device: torch.device,
    seed: int = 0,
    backend: Backend = "auto",
    threads: int = 1,
    physics: Physics = "auto",
) -> BatchedEnv:
    """A batched environment for the task: native where possible (`auto`), or as asked.
    `threads`: simulator threads for backends that step on the CPU in parallel (MuJoCo);
    `physics`: where MuJoCo steps (`BatchedSpec.physics`)."""
    if backend != "gym":
        ok, why = native_available(task)
        if ok:
            cls = _native_class(task, threads, device, physics)
            assert cls is not None
            spec = task.spec.env
            return cls(num_envs, device, seed, max_episode_steps=spec.max_episode_steps, **spec.kwargs)
        if backend == "native":
            raise TaskError(f"task {task.name}: no native batched backend: {why}")
    return GymVector(task, num_envs, device, seed)


class _SimView:
    """The backend as a state builder sees it, with `sim` swapped for another snapshot."""

    def __init__(self, env: BatchedEnv, sim: dict[str, torch.Tensor]) -> None:
        self._env = env
        self.sim = sim

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)


class BatchedState:
    """Builds every named state field `[N, *shape]` of a batch from the pre-reset observation
    and the backend's `sim` (or takes the gymnasium fallback's `named_state`)."""

    def __init__(self, task: Task, env: BatchedEnv) -> None:
        self.fields = task.spec.state
        self.env = env
        self.builder = _batched_state_fn(task) if _missing_fields(task) else None
        self._checked = False
        self._where = task.folder / "state.py"

    def __call__(self, obs: torch.Tensor, after_reset: bool = False) -> dict[str, torch.Tensor]:
        """The fields for `obs`: the pre-reset state of the last step, or with `after_reset`,
        the state the next step starts from (`obs` is then the post-reset observation)."""
        named = getattr(self.env, "named_state_next" if after_reset else "named_state", None)
        if named is not None:
            return dict(named)
        state: dict[str, torch.Tensor] = {}
        for name, field in self.fields.items():
            if isinstance(field.obs, int):
                state[name] = obs[:, field.obs]
            elif field.obs is not None:
                state[name] = obs[:, field.obs[0] : field.obs[1]]
        if self.builder is not None:
            built = self.builder(_SimView(self.env, self.env.sim_next) if after_reset else self.env, obs)
            state.update({k: v.to(torch.float32) for k, v in built.items() if k in self.fields})
        if not self._checked:
            self._check(state, obs.shape[0])
        return state

    def _check(self, state: dict[str, torch.Tensor], n: int) -> None:
        for name, field in self.fields.items():
            if name not in state:
                raise TaskError(f"{self._where}: get_state_batched() did not return field '{name}'")
            want = (n, *field.shape)
            if tuple(state[name].shape) != want:
                raise TaskError(
                    f"{self._where}: get_state_batched() returned '{name}' with shape "
                    f"{list(state[name].shape)}; expected {list(want)} (batch first)"
                )
        self._checked = True
