"""Environments of a task: construction, named state fields, and batched state tensors."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
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
    hint = (
        ""
        if registered(task)
        else " (gymnasium-robotics is not installed; its environments need "
        "pip install 'eureka-rewards[robotics]')"
    )
    if "gymnasium_robotics" in sys.modules:  # imported elsewhere, which registers its envs too
        _patch_robotics_joint_types()
    try:
        env = gym_make(env_id, max_episode_steps=spec.max_episode_steps, **kwargs)
    except gym.error.Error as exc:
        raise TaskError(f"{task.folder / 'task.yaml'}: env.id '{spec.id}': {exc}{hint}") from None
    return numeric_observations(_checked(env, spec.id))


def _checked(env: gym.Env[Any, Any], name: str) -> gym.Env[Any, Any]:
    """`env` with ApiCheck right around the environment itself, under gymnasium's wrappers
    (its time limit unpacks five values from step and would fail first)."""
    inner = env
    while isinstance(inner, gym.Wrapper) and isinstance(inner.env, gym.Wrapper):
        inner = inner.env
    if not isinstance(inner, gym.Wrapper):
        return ApiCheck(env, name)
    inner.env = ApiCheck(inner.env, name)
    return env


class EnvApiError(TaskError):
    """An environment breaks gymnasium's API (what it returned, and what the API returns)."""


class ApiCheck(gym.Wrapper[Any, Any, Any, Any]):
    """gymnasium's API, enforced where an environment breaks it (one written for the old gym
    API): a TaskError that says what it returned, not an IndexError deep in a learner."""

    def __init__(self, env: gym.Env[Any, Any], name: str) -> None:
        super().__init__(env)
        self._name = name

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        out = self.env.reset(**kwargs)
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
            raise EnvApiError(
                f"the environment {self._name}: reset() returned {type(out).__name__}"
                f"{f' of {len(out)}' if isinstance(out, tuple) else ''}; gymnasium's API returns "
                "(observation, info): an environment written for the old gym API returns only the observation"
            )
        return out

    def step(self, action: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        out = self.env.step(action)
        if not (isinstance(out, tuple) and len(out) == 5):
            raise EnvApiError(
                f"the environment {self._name}: step() returned {type(out).__name__}"
                f"{f' of {len(out)}' if isinstance(out, tuple) else ''}; gymnasium's API returns "
                "(observation, reward, terminated, truncated, info): an environment written for the old gym "
                "API returns 4, with done in place of terminated and truncated"
            )
        return out


def checker_text(message: Warning | str) -> str:
    """A warning of gymnasium's env checker without its colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", str(message))


def task_code_raised(exc: BaseException, folder: Path | None = None) -> str:
    """The task's own code (its environment, state.py, fitness.py) failed: what it raised, and
    where: the innermost frame in the task's `folder` when one is, else the innermost."""
    frames = list(traceback.extract_tb(exc.__traceback__))
    if not frames:
        return f"running the task's code raised {type(exc).__name__}: {exc}"
    root = folder.resolve() if folder is not None else None
    own = [f for f in frames if root is not None and Path(f.filename).resolve().is_relative_to(root)]
    frame = (own or frames)[-1]
    # raised outside the task's files (in a library it called): the whole path
    name = frame.filename if root is not None and not own else Path(frame.filename).name
    where = f" ({name} line {frame.lineno})"
    return f"running the task's code raised {type(exc).__name__}: {exc}{where}"


_MAKING = threading.Lock()


def gym_make(env_id: str, **kwargs: Any) -> gym.Env[Any, Any]:
    """`gym.make`, less the scratch file gymnasium-robotics' mazes leave behind: each maze
    writes its MuJoCo XML to `$TMPDIR/ant_maze<time>.xml` (AntMaze v3: `ant_maze.xml`, one
    name for all, hence the lock) and never deletes it (thousands pile up in /tmp); the model
    is loaded by then, so it goes here."""
    with _MAKING:
        env = gym.make(env_id, **kwargs)
        scratch = getattr(env.unwrapped, "tmp_xml_file_path", None)
        if isinstance(scratch, str) and os.path.dirname(scratch) == tempfile.gettempdir():
            with contextlib.suppress(OSError):
                os.unlink(scratch)
    return env


ONE_HOT_LIMIT = 1024
"""A discrete part with at most this many values also reaches the policy one-hot."""


def numeric_observations(env: gym.Env[Any, Any]) -> gym.Env[Any, Any]:
    """`env` with one flat Box observation: a dict of Boxes flattened in key order as
    `FlattenObservation` does (gymnasium-robotics' goal environments); any other space (a
    Discrete, MultiDiscrete or MultiBinary part, a Tuple) as `NumericObservation` lays it out;
    a flat Box unchanged, any other Box (a scalar, shape (); a matrix) flattened in C order."""
    space = env.observation_space
    if isinstance(space, gym.spaces.Box):
        return env if len(space.shape) == 1 else gym.wrappers.FlattenObservation(env)
    if isinstance(space, gym.spaces.Dict) and all(isinstance(s, gym.spaces.Box) for s, _ in _parts(space)):
        return gym.wrappers.FlattenObservation(env)
    return NumericObservation(env)


def _parts(space: gym.spaces.Space[Any], obs: Any = None) -> list[tuple[gym.spaces.Space[Any], Any]]:
    """(leaf space, its value in `obs`, or None without one) in the space's order."""
    if isinstance(space, gym.spaces.Tuple):
        values = [None] * len(space.spaces) if obs is None else obs
        return [p for s, o in zip(space.spaces, values, strict=True) for p in _parts(s, o)]
    if isinstance(space, gym.spaces.Dict):
        return [p for key, s in space.spaces.items() for p in _parts(s, None if obs is None else obs[key])]
    return [(space, obs)]


def _leaf_names(space: gym.spaces.Space[Any], prefix: str = "") -> list[str]:
    """A name per leaf of `space`, in `_parts`'s order: a Dict's keys, a Tuple's positions,
    joined by `_` where they nest (`pos`, `sensors_0`)."""
    if isinstance(space, gym.spaces.Tuple):
        return [n for i, s in enumerate(space.spaces) for n in _leaf_names(s, f"{prefix}{i}_")]
    if isinstance(space, gym.spaces.Dict):
        return [n for key, s in space.spaces.items() for n in _leaf_names(s, f"{prefix}{key}_")]
    return [prefix.removesuffix("_") or "obs"]


def _value_bounds(leaf: gym.spaces.Space[Any]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(leaf, gym.spaces.Box):
        return leaf.low.reshape(-1).astype(np.float64), leaf.high.reshape(-1).astype(np.float64)
    if isinstance(leaf, gym.spaces.Discrete):
        return np.array([leaf.start], np.float64), np.array([leaf.start + leaf.n - 1], np.float64)
    if isinstance(leaf, gym.spaces.MultiDiscrete):
        low = np.asarray(leaf.start, np.float64).reshape(-1)
        return low, low + np.asarray(leaf.nvec, np.float64).reshape(-1) - 1
    if isinstance(leaf, gym.spaces.MultiBinary):
        n = int(np.prod(leaf.shape))
        return np.zeros(n), np.ones(n)
    raise TaskError(
        f"the observation space holds {leaf}, which has no fixed-size numeric form: convert the "
        "observation to numbers with a wrapper in the task folder's env.py (env.id: 'env:YourClass')"
    )


def _one_hot_sizes(leaf: gym.spaces.Space[Any]) -> list[int]:
    """The one-hot blocks of a discrete leaf, one per value slot (a MultiDiscrete has several),
    when the leaf's slots hold at most ONE_HOT_LIMIT values together; else none."""
    if isinstance(leaf, gym.spaces.Discrete):
        sizes = [int(leaf.n)]
    elif isinstance(leaf, gym.spaces.MultiDiscrete):
        sizes = [int(n) for n in np.asarray(leaf.nvec).reshape(-1)]
    else:
        return []
    return sizes if sum(sizes) <= ONE_HOT_LIMIT else []


def observation_values(space: gym.spaces.Space[Any], obs: Any) -> np.ndarray:
    """The numbers of an observation, flat (float64): each part in the space's order, a discrete
    part as its value (not one-hot). For a `NumericObservation` these are its first entries,
    so state fields read the same indices from the raw and the wrapped observation."""
    if not isinstance(space, gym.spaces.Tuple | gym.spaces.Dict):
        return np.asarray(obs, dtype=np.float64).reshape(-1)
    return _numbers(_parts(space, obs))


def _numbers(parts: list[tuple[gym.spaces.Space[Any], Any]]) -> np.ndarray:
    return np.concatenate([np.zeros(0)] + [np.asarray(o, np.float64).reshape(-1) for _, o in parts])


class NumericObservation(gym.ObservationWrapper[np.ndarray, Any, Any]):
    """Any observation as one flat float vector: first every part's numbers in the space's order
    (a Discrete part as its value, a MultiDiscrete or MultiBinary part as its values, a Box
    flattened: what state fields read), then one one-hot block per discrete value slot (what a
    policy learns from best), for discrete parts with at most `ONE_HOT_LIMIT` values in all."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        source = env.observation_space
        leaves = [leaf for leaf, _ in _parts(source)]
        bounds = [_value_bounds(leaf) for leaf in leaves]
        self.values = sum(len(low) for low, _ in bounds)
        """How many entries the values part has (the one-hot blocks follow)."""
        if self.values == 0:
            raise TaskError(
                f"the observation space {source} holds no numbers; give the environment an observation"
            )
        whole = [
            not isinstance(leaf, gym.spaces.Box)
            for leaf, (low, _) in zip(leaves, bounds, strict=True)
            for _ in low
        ]
        self.discrete = {i for i, w in enumerate(whole) if w}
        """The entries of the values part that hold whole numbers (a discrete part's values)."""
        self.leaves: list[tuple[int, int, str, str]] = []
        """(start, stop, name, space) of each part's entries in the values part, named by its Dict
        key or Tuple position (what `eureka tasks new` names state fields by)."""
        at = 0
        for leaf, name, (low, _) in zip(leaves, _leaf_names(source), bounds, strict=True):
            self.leaves.append((at, at + len(low), name, str(leaf)))
            at += len(low)
        sizes = [(i, _one_hot_sizes(leaf)) for i, leaf in enumerate(leaves)]
        self._hot = [(i, s) for i, s in sizes if s]
        hot = sum(sum(s) for _, s in self._hot)
        floats = [leaf.dtype for leaf in leaves if isinstance(leaf, gym.spaces.Box)]
        self._dtype = np.result_type(np.float32, *floats)
        low = np.concatenate([b[0] for b in bounds] + [np.zeros(hot)])
        high = np.concatenate([b[1] for b in bounds] + [np.ones(hot)])
        self.observation_space = gym.spaces.Box(
            low.astype(self._dtype), high.astype(self._dtype), dtype=self._dtype
        )

    def observation(self, observation: Any) -> np.ndarray:
        parts = _parts(self.env.observation_space, observation)
        blocks = [_numbers(parts)]
        for i, sizes in self._hot:
            leaf, value = parts[i]
            start = np.asarray(getattr(leaf, "start", 0)).reshape(-1)
            for v, n in zip(np.asarray(value).reshape(-1) - start, sizes, strict=True):
                if not 0 <= v < n:
                    raise TaskError(f"the observation holds {value} for its part {leaf}, outside that space")
                block = np.zeros(n)
                block[int(v)] = 1.0
                blocks.append(block)
        return np.concatenate(blocks).astype(self._dtype)


def registered(task: Task) -> bool:
    """False when the task's environment id (without a module prefix) is not in gymnasium's
    registry even after gymnasium-robotics' environments were registered."""
    return ":" in task.spec.env.id or gym_id(task) in gym.registry or register_robotics()


def register_robotics() -> bool:
    """Register gymnasium-robotics' environments (Fetch, Shadow hand, Adroit, mazes); False
    when it is not installed."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # its import prints a notice about Adroit v1 rewards
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
    # one id per folder and class: two folders of one name (or a test's many) are not confused
    digest = hashlib.sha1(f"{task.folder.resolve()}:{spec.id}".encode()).hexdigest()[:10]
    env_id = f"eureka-{task.name}-{digest}-v0"
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
        obs_arr = observation_values(env.observation_space, obs)
        if isinstance(env, NumericObservation):  # its numbers, as from the raw observation
            obs_arr = obs_arr[: env.values]
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
