"""Environments of a task: construction, named state fields, and batched state tensors."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from eureka import tasks
from eureka.errors import TaskError
from eureka.types import StateField, Task

StateDict = dict[str, np.ndarray]


def make_env(
    task: Task, render_mode: str | None = None, size: tuple[int, int] | None = None
) -> gym.Env[Any, Any]:
    """One environment of the task, with its time limit, not yet wrapped for state; `size`:
    the (width, height) of rendered frames, for environments that take them (MuJoCo). A goal
    environment's dict observation (gymnasium-robotics) is flattened in key order:
    `achieved_goal`, `desired_goal`, `observation`."""
    spec = task.spec.env
    kwargs = dict(spec.kwargs)
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    if size is not None:
        kwargs["width"], kwargs["height"] = size
    env_id = gym_id(task)
    hint = ""
    if ":" not in spec.id and env_id not in gym.registry and not register_robotics():
        hint = (
            " (gymnasium-robotics is not installed; its environments need "
            "pip install 'eureka-rewards[robotics]')"
        )
    if "gymnasium_robotics" in sys.modules:  # imported elsewhere, which registers its envs too
        _patch_robotics_joint_types()
    try:
        env = gym.make(env_id, max_episode_steps=spec.max_episode_steps, **kwargs)
    except gym.error.Error as exc:
        raise TaskError(f"{task.folder / 'task.yaml'}: env.id '{spec.id}': {exc}{hint}") from None
    if isinstance(env.observation_space, gym.spaces.Dict):
        env = gym.wrappers.FlattenObservation(env)
    return env


def register_robotics() -> bool:
    """Register gymnasium-robotics' environments (Fetch, Shadow hand, Adroit, mazes); False
    when it is not installed."""
    try:
        import gymnasium_robotics
    except ImportError:
        return False
    gym.register_envs(gymnasium_robotics)
    _patch_robotics_joint_types()
    return True


def _patch_robotics_joint_types() -> None:
    """gymnasium-robotics 1.4.2 tests `joint_type in (mjJNT_HINGE, mjJNT_SLIDE)` with a numpy
    int, which mujoco >= 3.4's enums never equal, so Fetch and hand envs fail at construction;
    give its joint helpers the joint type as a plain int instead."""
    import mujoco
    from gymnasium_robotics.utils import mujoco_utils

    if getattr(mujoco_utils, "_eureka_patched", False):
        return

    class _IntTypes:
        """The model as the helpers see it: `jnt_type` as plain ints, the rest unchanged."""

        def __init__(self, model: Any) -> None:
            self._model = model
            self.jnt_type = [int(t) for t in model.jnt_type]

        def __getattr__(self, name: str) -> Any:
            return getattr(self._model, name)

    joint = mujoco.mjtJoint
    if np.int32(int(joint.mjJNT_HINGE)) in (joint.mjJNT_HINGE,):
        return  # enums compare with numpy ints: nothing to fix

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def fixed(model: Any, *args: Any) -> Any:
            return fn(_IntTypes(model), *args)

        return fixed

    for name in ("set_joint_qpos", "set_joint_qvel", "get_joint_qpos", "get_joint_qvel"):
        setattr(mujoco_utils, name, wrap(getattr(mujoco_utils, name)))
    mujoco_utils._eureka_patched = True


def gym_id(task: Task) -> str:
    """The gymnasium id the task's environment is made with (a task folder's own class, e.g.
    `env:FarFetchReach`, registered first)."""
    return _register_custom(task) if ":" in task.spec.env.id else task.spec.env.id


def _register_custom(task: Task) -> str:
    """Register the task folder's own environment class with gymnasium; return its id."""
    spec = task.spec.env
    module_name, _, class_name = spec.id.partition(":")
    env_id = f"eureka-{task.name}-v0"
    if env_id in gym.registry:
        return env_id
    module = tasks.load_module(task, f"{module_name}.py")
    if module is None:
        raise TaskError(
            f"{task.folder / 'task.yaml'}: env.id '{spec.id}' names {module_name}.py, "
            f"which is not in {task.folder}"
        )
    cls = getattr(module, class_name, None)
    if cls is None:
        raise TaskError(f"{task.folder / (module_name + '.py')}: defines no class '{class_name}'")
    gym.register(id=env_id, entry_point=cls, max_episode_steps=spec.max_episode_steps)
    return env_id


class StateExtractor:
    """Builds the named state fields of one environment from its observation (and state.py)."""

    def __init__(self, task: Task) -> None:
        self.fields = task.spec.state
        module = tasks.load_module(task, "state.py")
        self.builder: Callable[[Any, np.ndarray], dict[str, Any]] | None = (
            getattr(module, "get_state", None) if module else None
        )
        missing = [n for n, f in self.fields.items() if f.obs is None]
        if missing and self.builder is None:
            raise TaskError(
                f"{task.folder / 'task.yaml'}: state field(s) {', '.join(missing)} have no 'obs' index, "
                f"so state.py must define get_state(env, obs) returning them"
            )

    def __call__(self, env: gym.Env[Any, Any], obs: Any) -> StateDict:
        obs_arr = np.asarray(obs, dtype=np.float64).reshape(-1)
        built = self.builder(env.unwrapped, obs_arr) if self.builder else {}
        state: StateDict = {}
        for name, field in self.fields.items():
            if name in built:
                value = np.asarray(built[name], dtype=np.float32)
            elif field.obs is None:
                raise TaskError(f"state.py get_state() did not return field '{name}'")
            elif isinstance(field.obs, int):
                value = np.asarray(obs_arr[field.obs], dtype=np.float32)
            else:
                value = np.asarray(obs_arr[field.obs[0] : field.obs[1]], dtype=np.float32)
            if value.shape != tuple(field.shape):
                raise TaskError(
                    f"state field '{name}' has shape {list(value.shape)}, task.yaml says {list(field.shape)}"
                )
            state[name] = value
        return state


class StateWrapper(gym.Wrapper[Any, Any, Any, Any]):
    """Adds `state`, `prev_state` and `terminated` to every step's info."""

    def __init__(self, env: gym.Env[Any, Any], extractor: StateExtractor) -> None:
        super().__init__(env)
        self.extractor = extractor
        self._state: StateDict = {}

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._state = self.extractor(self.env, obs)
        info["state"] = self._state
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        state = self.extractor(self.env, obs)
        info["prev_state"] = self._state
        info["state"] = state
        info["terminated"] = bool(terminated)
        self._state = state
        return obs, reward, terminated, truncated, info


def make_state_env(
    task: Task, render_mode: str | None = None, size: tuple[int, int] | None = None
) -> StateWrapper:
    """An environment of the task whose infos carry the named state fields."""
    return StateWrapper(make_env(task, render_mode, size), StateExtractor(task))


def batch_tensors(
    infos: Sequence[dict[str, Any]],
    actions: np.ndarray,
    names: Sequence[str],
    fields: dict[str, StateField],
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """The reward's keyword arguments for a batched step: fields, `prev_<field>` and `action`."""
    batch: dict[str, torch.Tensor] = {}
    for name in names:
        if name == "action":
            batch[name] = torch.as_tensor(np.asarray(actions), device=device)
            if batch[name].is_floating_point():
                batch[name] = batch[name].to(torch.float32)
            continue
        key, field = (
            ("prev_state", name[5:]) if name.startswith("prev_") and name[5:] in fields else ("state", name)
        )
        stacked = np.stack([info[key][field] for info in infos])
        batch[name] = torch.as_tensor(stacked, device=device)
    return batch
