"""`eureka tasks new`: a task folder written from a gymnasium environment, passing `tasks check`.

State fields are named from the environment: for MuJoCo environments from the model (a field
per joint's qpos and qvel slice, per body whose position, inertia or velocity the observation
holds, the root position the observation leaves out, the centre of mass), found by matching
the observation against the simulator's arrays on random steps; otherwise from the
observation table of the environment's docstring, else as numbered observation slices. The
human reward reproduces the environment's own reward terms (the `reward_*` entries of
MuJoCo's info, else the step reward) where a simple expression of the state fields fits them
exactly on a random rollout; when none fits it is a marked TODO that `tasks check` reports.
"""

from __future__ import annotations

import importlib.util
import inspect
import keyword
import re
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml

from eureka import tasks
from eureka.errors import ConfigError, EurekaError
from eureka.training.envs import (
    EnvApiError,
    NumericObservation,
    batch_tensors,
    checker_text,
    gym_make,
    make_state_env,
    numeric_observations,
    register_robotics,
    task_code_raised,
)
from eureka.training.sim import mujoco
from eureka.types import Task

PROBE_STEPS = 200
"""Random-action steps on which the environment's reward terms are fitted."""
CUSTOM_EPISODE_STEPS = 1000
"""Time limit written for an env.py class (gymnasium registers none for it)."""
_MATCH = 1e-9
_FIT = 1e-5


@dataclass
class Field:
    """One state field of the scaffold: from the observation (`obs`) or built in state.py."""

    name: str
    description: str
    unit: str = ""
    shape: tuple[int, ...] = ()
    obs: int | tuple[int, int] | None = None
    single: str = ""
    """state.py expression for one environment (`env` is the unwrapped env), when not in obs."""
    batched: str = ""
    """state.py expression for the batched MuJoCo backend (`env.sim[...]`), when not in obs."""


@dataclass
class Scaffold:
    """What `tasks new` wrote and found."""

    folder: Path
    fields: list[Field]
    reproduced: list[str] = field(default_factory=list)
    """The environment's reward terms the human reward reproduces."""
    missing: list[str] = field(default_factory=list)
    """Those it could not (left as comments for the author)."""


_FILLER = {"of", "the", "a", "an"}


def _short(text: str) -> str:
    """A docstring's description as a field name: `Position of the car along the x-axis` ->
    `position_car`."""
    text = re.split(r" along | with | in the | \(", text, maxsplit=1)[0]
    return " ".join(w for w in text.split() if w.lower() not in _FILLER)


def _identifier(text: str, fallback: str) -> str:
    name = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()[:40].strip("_")
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = f"{fallback}_{name}" if name else fallback
    if name == "action" or name.startswith("prev_"):
        name = f"x_{name}"
    return name


def _unique(fields: list[Field]) -> list[Field]:
    seen: dict[str, int] = {}
    for f in fields:
        if f.name in seen:
            seen[f.name] += 1
            f.name = f"{f.name}_{seen[f.name]}"
        else:
            seen[f.name] = 1
    return fields


# ---------------------------------------------------------------- the environment


def _make(env: str, folder: Path) -> tuple[gym.Env[Any, Any], dict[str, Any]]:
    """The environment to probe and task.yaml's `env` section; an env.py is copied in."""
    if env.endswith(".py"):
        raise ConfigError(f"--env {env}: name the class in it too, as {env}:ClassName")
    if ":" in env and env.split(":", 1)[0].endswith(".py"):
        path_text, class_name = env.rsplit(":", 1)
        source = Path(path_text)
        if not source.is_file():
            raise ConfigError(f"--env {env}: {source} is not a file")
        target = folder / source.name
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
        spec = importlib.util.spec_from_file_location(f"eureka_scaffold_{source.stem}", target)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(folder))
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ConfigError(f"--env {env}: importing {source} raised {type(exc).__name__}: {exc}") from exc
        finally:
            sys.path.remove(str(folder))
        cls = getattr(module, class_name, None)
        if cls is None:
            raise ConfigError(f"--env {env}: {source} defines no class {class_name}")
        # gym.make's checker, as training has it: an old-API reset or step is named as such
        made = gym.wrappers.TimeLimit(gym.wrappers.PassiveEnvChecker(cls()), CUSTOM_EPISODE_STEPS)
        return made, {"id": f"{source.stem}:{class_name}", "max_episode_steps": CUSTOM_EPISODE_STEPS}
    if env not in gym.registry:
        register_robotics()  # gymnasium-robotics' ids (Fetch, mazes, hands), where it is installed
    try:
        return gym_make(env), {"id": env}
    except gym.error.Error as exc:
        raise ConfigError(f"--env {env}: {exc}") from None


def _doc_table(env: gym.Env[Any, Any]) -> dict[int, str]:
    """Index -> description from the `| Num | Observation | ...` table of the env's docstring."""
    doc = inspect.getdoc(type(env.unwrapped)) or ""
    start = doc.find("Observation Space")
    rows: dict[int, str] = {}
    for line in doc[start:].splitlines() if start >= 0 else []:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].isdigit() and cells[1]:
            rows.setdefault(int(cells[0]), cells[1].replace("`", ""))
        elif rows and line.startswith("#"):
            break
    return rows


def _doc_parts(env: gym.Env[Any, Any]) -> list[tuple[int, int, str, str]]:
    """(start, stop, name, description) of the `- *name (N elements):* what` list by which
    MuJoCo docstrings describe the observation's parts in order."""
    doc = inspect.getdoc(type(env.unwrapped)) or ""
    start = doc.find("Observation Space")
    parts, at = [], 0
    for m in re.finditer(r"^- \*(\w+) \((\d+) elements?[^)]*\):\*\s*(.*)$", doc[max(start, 0) :], re.M):
        n = int(m.group(2))
        parts.append((at, at + n, m.group(1), m.group(3).strip()))
        at += n
    return parts if start >= 0 else []


def _obs_size(env: gym.Env[Any, Any]) -> int:
    """How many observation entries become state fields: all of a Box; of a discrete or mixed
    observation only its numbers, not the one-hot blocks that follow them for the policy."""
    if isinstance(env, NumericObservation):
        return env.values
    return int(np.prod(env.observation_space.shape or ()))


def _observation_fields(env: gym.Env[Any, Any], claimed: set[int], size: int) -> list[Field]:
    """Fields for the observation entries nothing else claimed: named from the docstring's
    table where it has a row, else one field per run of unnamed entries."""
    table = _doc_table(env)
    parts = _doc_parts(env)
    named = isinstance(env, NumericObservation) and isinstance(env.env.observation_space, gym.spaces.Dict)
    leaves = env.leaves if isinstance(env, NumericObservation) and named else []
    if not parts:  # a Dict's keys
        parts = [(a, b, name, f"{leaf} (TODO: say what it is)") for a, b, name, leaf in leaves]
    whole = env.discrete if isinstance(env, NumericObservation) else set()
    space = env.observation_space
    fields: list[Field] = []
    i = 0
    while i < size:
        if i in whole and i not in claimed and i not in table:
            low, high = int(space.low[i]), int(space.high[i])  # type: ignore[attr-defined]
            leaf = next((p for p in leaves if p[0] <= i < p[1]), None)
            name = (
                f"obs_{i}"
                if leaf is None
                else leaf[2]
                if leaf[1] - leaf[0] == 1
                else f"{leaf[2]}_{i - leaf[0]}"
            )
            what = f"observation[{i}]" if leaf is None else f"{name}: {leaf[3]} (observation[{i}])"
            fields.append(
                Field(
                    _identifier(name, f"obs_{i}"),
                    f"{what}, a whole number from {low} to {high} (TODO: say what it is).",
                    obs=i,
                )
            )
            i += 1
            continue
        if i in claimed:
            i += 1
            continue
        if i in table:
            fields.append(
                Field(_identifier(_short(table[i]), f"obs_{i}"), f"{table[i]} (observation[{i}]).", obs=i)
            )
            i += 1
            continue
        j = i
        while j < size and j not in claimed and j not in table and j not in whole:
            j += 1
        part = next((p for p in parts if p[0] <= i and j <= p[1]), None)
        if part is not None:
            a, b, what, text = part
            name = what if (i, j) == (a, b) else f"{what}_{i - a}_{j - a - 1}"
            where = "" if (i, j) == (a, b) else f", entries {i - a}..{j - a - 1} of it"
            fields.append(
                Field(_identifier(name, "obs"), f"{what}{where}: {text}", shape=(j - i,), obs=(i, j))
            )
        elif j - i == 1:
            fields.append(Field(f"obs_{i}", f"observation[{i}] (TODO: say what it is).", obs=i))
        else:
            fields.append(
                Field(
                    f"obs_{i}_{j - 1}",
                    f"observation[{i}:{j}] (TODO: say what these are).",
                    shape=(j - i,),
                    obs=(i, j),
                )
            )
        i = j
    return fields


# ---------------------------------------------------------------- MuJoCo


_JOINT_PARTS = {
    # mjtJoint: (qpos parts, qvel parts) as (suffix, offset, length, unit, what)
    0: (
        [
            ("position", 0, 3, "m", "position (x, y, z) in the world frame"),
            ("orientation", 3, 4, "", "orientation quaternion (w, x, y, z)"),
        ],
        [
            ("linear_velocity", 0, 3, "m/s", "linear velocity (x, y, z)"),
            ("angular_velocity", 3, 3, "rad/s", "angular velocity"),
        ],
    ),
    1: (
        [("orientation", 0, 4, "", "orientation quaternion (w, x, y, z)")],
        [("angular_velocity", 0, 3, "rad/s", "angular velocity")],
    ),
    2: ([("position", 0, 1, "m", "position along its slide axis")], [("velocity", 0, 1, "m/s", "velocity")]),
    3: ([("angle", 0, 1, "rad", "angle")], [("angular_velocity", 0, 1, "rad/s", "angular velocity")]),
}
_BODY_ARRAYS = (  # MjData per-body arrays the observation may hold: (array, suffix, unit, what)
    ("xpos", "position", "m", "position (x, y, z) in the world frame"),
    ("cinert", "inertia", "", "mass and inertia about the centre of mass (MuJoCo cinert, 10 numbers)"),
    ("cvel", "com_velocity", "", "velocity about the centre of mass (MuJoCo cvel: angular, then linear)"),
    ("cfrc_ext", "external_force", "", "external (contact) force and torque (MuJoCo cfrc_ext)"),
)


def _snapshots(env: gym.Env[Any, Any], n: int = 3) -> list[tuple[np.ndarray, Any]]:
    """(observation, a copy of MjData) after random steps."""
    data = env.unwrapped.data  # type: ignore[attr-defined]
    env.reset(seed=0)
    env.action_space.seed(0)
    shots = []
    for _ in range(n * 4):
        obs, _, term, trunc, _ = env.step(env.action_space.sample())
        shots.append(
            (
                np.asarray(obs, dtype=np.float64).reshape(-1),
                {
                    k: np.array(getattr(data, k), dtype=np.float64)
                    for k in ("qpos", "qvel", "qfrc_actuator", *(a for a, *_ in _BODY_ARRAYS))
                },
            )
        )
        if term or trunc:
            env.reset()
    return shots[-n:]


def _find(shots: list[tuple[np.ndarray, Any]], array: str, index: Any, claimed: set[int]) -> int | None:
    """The observation index where `data.<array>[index]` (a vector) starts on every snapshot."""
    start: int | None = None
    for obs, data in shots:
        value = np.atleast_1d(data[array][index]).reshape(-1)
        if (
            not np.all(np.isfinite(value))
            or np.max(np.abs(value)) < 1e-9
            or len(np.unique(value)) < len(value) / 2
        ):
            return None
        hits = [
            i
            for i in range(len(obs) - len(value) + 1)
            if np.allclose(obs[i : i + len(value)], value, rtol=_MATCH, atol=_MATCH) and i not in claimed
        ]
        if len(hits) != 1 or (start is not None and hits[0] != start):
            return None
        start = hits[0]
    return start


def _mujoco_fields(env: gym.Env[Any, Any], size: int) -> tuple[list[Field], set[int]]:
    import mujoco as mj

    model = env.unwrapped.model  # type: ignore[attr-defined]
    shots = _snapshots(env)
    claimed: set[int] = set()
    fields: list[Field] = []
    table = _doc_table(env)

    def add(name: str, what: str, unit: str, array: str, a: int, n: int) -> None:
        # each scalar is matched alone; the field is in the observation when they are contiguous
        hits = [_find(shots, array, i, claimed) for i in range(a, a + n)]
        claimed.update(h for h in hits if h is not None)
        shape = () if n == 1 else (n,)
        first = hits[0]
        if first is not None and hits == list(range(first, first + n)):
            doc = f" ({table[first]})" if n == 1 and first in table else ""
            fields.append(Field(name, f"{what}{doc}.", unit, shape, first if n == 1 else (first, first + n)))
        else:
            index = f"{a}" if n == 1 else f"{a}:{a + n}"
            fields.append(
                Field(
                    name,
                    f"{what} (not in the observation; read from the simulator).",
                    unit,
                    shape,
                    single=f"env.data.{array}[{index}]",
                    batched=f'env.sim["{array}"][:, {index}]',
                )
            )

    for j in range(model.njnt):
        joint = _identifier(mj.mj_id2name(model, mj.mjtObj.mjOBJ_JOINT, j) or "", f"joint_{j}")
        qpos_parts, qvel_parts = _JOINT_PARTS[int(model.jnt_type[j])]
        for suffix, offset, n, unit, what in qpos_parts:
            add(
                f"{joint}_{suffix}",
                f"Joint {joint}: {what}",
                unit,
                "qpos",
                int(model.jnt_qposadr[j]) + offset,
                n,
            )
        for suffix, offset, n, unit, what in qvel_parts:
            add(
                f"{joint}_{suffix}",
                f"Joint {joint}: {what}",
                unit,
                "qvel",
                int(model.jnt_dofadr[j]) + offset,
                n,
            )
    for b in reversed(range(1, model.nbody)):  # bodies at one place: the leaf (tips_arm) names it
        body = _identifier(mj.mj_id2name(model, mj.mjtObj.mjOBJ_BODY, b) or "", f"body_{b}")
        for array, suffix, unit, what in _BODY_ARRAYS:
            start = _find(shots, array, b, claimed)
            if start is None:
                continue
            n = shots[0][1][array].shape[1]
            claimed.update(range(start, start + n))
            fields.append(Field(f"{body}_{suffix}", f"Body {body}: {what}.", unit, (n,), (start, start + n)))
    free = 6 if model.njnt and int(model.jnt_type[0]) == 0 else 0
    start = _find(shots, "qfrc_actuator", slice(free, None), claimed)
    if start is not None and model.nv > free:
        n = model.nv - free
        claimed.update(range(start, start + n))
        fields.append(
            Field(
                "actuator_forces",
                "Generalised force of the actuators at each joint (MuJoCo qfrc_actuator).",
                "",
                (n,),
                (start, start + n),
            )
        )
    fields.sort(key=lambda f: _first(f.obs))
    if env.spec is None or env.spec.id not in mujoco.SUPPORTED:  # the batched port's sim has no xipos
        fields.append(
            Field(
                "center_of_mass",
                "Centre of mass of the whole model (x, y, z) in the world frame.",
                "m",
                (3,),
                single="(env.model.body_mass[:, None] * env.data.xipos).sum(0) / env.model.body_mass.sum()",
            )
        )
    return fields, claimed


# ---------------------------------------------------------------- files


def _state_py(fields: list[Field]) -> str:
    built = [f for f in fields if f.obs is None]
    lines = [
        '"""State fields the observation does not hold, read from the simulator (by `eureka tasks new`)."""',
        "",
        "import numpy as np",
        "import torch",
        "",
        "",
        "def get_state(env, obs):",
        "    return {",
        *(f'        "{f.name}": np.asarray({f.single}, dtype=np.float64).copy(),' for f in built),
        "    }",
    ]
    batched = [f for f in built if f.batched]
    if len(batched) == len(built):
        lines += [
            "",
            "",
            "def get_state_batched(env, obs: torch.Tensor) -> dict[str, torch.Tensor]:",
            '    """The same fields for the batched MuJoCo backend (a batch of MjData as `env.sim`)."""',
            "    state = {",
            *(f'        "{f.name}": {f.batched}.to(obs.device, torch.float32),' for f in built),
            "    }",
            "    return state",
        ]
    return "\n".join(lines) + "\n"


def _training(env: gym.Env[Any, Any], episode_steps: int) -> dict[str, Any]:
    """PPO settings from the action space and the episode length: longer episodes and bigger
    action spaces get a larger budget, a longer horizon (gamma) and longer rollouts."""
    space = env.action_space
    dims = int(np.prod(space.shape)) if isinstance(space, gym.spaces.Box) else 1
    continuous = isinstance(space, gym.spaces.Box)
    if dims >= 8:
        timesteps = 2_000_000
    elif dims >= 3 or episode_steps > 500:
        timesteps = 1_000_000
    else:
        timesteps = 200_000
    gamma = 0.99 if episode_steps >= 200 else 0.98
    hyper: dict[str, Any] = {
        "n_steps": 1024 if episode_steps >= 500 else 512,
        "batch_size": 64,
        "gamma": gamma,
        "gae_lambda": 0.95,
        "n_epochs": 10,
        "learning_rate": 3e-4,
        "ent_coef": 0.0,
    }
    return {
        "algorithm": "PPO",
        "timesteps": timesteps,
        "n_envs": 4 if episode_steps >= 500 else 8,
        "normalize": continuous,
        "hyperparams": hyper,
        "eval_episodes": 10,
        "timeout": 3600 if timesteps <= 200_000 else 14400,
    }


def _action_text(env: gym.Env[Any, Any]) -> str:
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        return f"{space}, an integer tensor [N]: TODO say what each of the {space.n} actions does."
    if isinstance(space, gym.spaces.Box):
        n = int(np.prod(space.shape))
        low, high = np.min(space.low), np.max(space.high)
        names = ""
        model = getattr(env.unwrapped, "model", None)
        if model is not None and getattr(model, "nu", 0) == n:
            import mujoco as mj

            names = ", ".join(
                mj.mj_id2name(model, mj.mjtObj.mjOBJ_ACTUATOR, i) or f"actuator {i}" for i in range(n)
            )
            names = f" torques/controls of the actuators {names}"
        what = names or " TODO say what each entry does"
        return f"Box({low:g}, {high:g}, shape=({n},)), a float tensor [N, {n}]:{what}."
    if isinstance(space, gym.spaces.MultiDiscrete):
        n = int(np.prod(space.shape))
        return f"{space}, an integer tensor [N, {n}]: TODO say what each entry does (SB3 trains it)."
    if isinstance(space, gym.spaces.MultiBinary) and len(space.shape) == 1:
        return (
            f"{space}, a float tensor [N, {space.n}] of 0s and 1s: TODO say what each entry does "
            "(SB3 trains it)."
        )
    raise ConfigError(
        f"the action space is {space}: `tasks new` maps Box, Discrete, MultiDiscrete and "
        "one-dimensional MultiBinary actions"
    )


# ---------------------------------------------------------------- the human reward


def _candidates(task: Task, dt: float | None, discrete: bool) -> dict[str, str]:
    """Expressions over the reward's parameters that a reward term may be a multiple of."""
    out: dict[str, str] = {"constant": "torch.ones(action.shape[0], device=action.device)"}
    if not discrete:
        out["action_cost"] = "(action.float() ** 2).sum(dim=1)"
    state = task.spec.state
    positions = [n for n, f in state.items() if f.unit == "m"]
    if dt:
        for name in positions:
            parts = (
                [name]
                if state[name].shape == ()
                else [f"{name}[:, {i}]" for i in range(min(2, state[name].shape[0]))]
            )
            for p in parts:
                out[f"velocity of {p}"] = f"({p} - prev_{p}) / {dt:g}"
    vectors = [n for n in positions if state[n].shape == (3,) and not n.endswith("orientation")]
    for i, a in enumerate(vectors):
        for b in vectors[i + 1 :]:
            out[f"distance {a}-{b}"] = f"torch.linalg.norm({a} - {b}, dim=1)"
    return out


def _fit(y: np.ndarray, x: np.ndarray) -> float | None:
    """w with y == w * x on every step (to rounding), or None."""
    denom = float(x @ x)
    if denom < 1e-12 or float(np.abs(y).max()) < 1e-12:
        return None
    w = float(x @ y) / denom
    return w if float(np.abs(y - w * x).max()) <= _FIT * max(1.0, float(np.abs(y).max())) else None


def _is_number(value: Any) -> bool:
    return np.ndim(value) == 0 and np.issubdtype(np.asarray(value).dtype, np.number)


def _rollout(task: Task) -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray], np.ndarray]:
    """The reward's parameters over random steps, the env's reward terms at each, and which
    steps are not terminal (a survival bonus drops to 0 on the step that ends the episode,
    which no state field can tell; the fit leaves those steps out)."""
    env = make_state_env(task)
    env.action_space.seed(1)
    env.reset(seed=1)
    infos, actions, live = [], [], []
    terms: dict[str, list[float]] = {}
    for step in range(PROBE_STEPS):
        action = env.action_space.sample()
        _, reward, term, trunc, info = env.step(action)
        parts = {k: float(v) for k, v in info.items() if k.startswith("reward_") and _is_number(v)}
        for k, v in (parts or {"reward": float(reward)}).items():
            terms.setdefault(k, [0.0] * step).append(v)
        infos.append(info)
        actions.append(action)
        live.append(not term)
        if term or trunc:
            env.reset()
    env.close()
    names = [*task.spec.state, *(f"prev_{n}" for n in task.spec.state), "action"]
    batch = batch_tensors(infos, np.stack(actions), names, task.spec.state, torch.device("cpu"))
    return batch, {k: np.asarray(v, dtype=np.float64) for k, v in terms.items()}, np.asarray(live)


def _human_reward(
    task: Task, env_name: str, dt: float | None, discrete: bool
) -> tuple[str, list[str], list[str]]:
    batch, terms, live = _rollout(task)
    namespace: dict[str, Any] = {"torch": torch, **batch}
    features = {}
    for label, expr in _candidates(task, dt, discrete).items():
        try:
            value = eval(expr, namespace)  # our own expressions over our own fields
        except Exception:
            continue
        features[label] = (expr, value.double().numpy().reshape(-1))
    body: list[str] = []
    used: set[str] = set()
    reproduced, missing, fits = [], [], []
    for term, y in terms.items():
        found = None
        for label, (expr, x) in features.items():
            w = _fit(y[live], x[live])
            if w is not None:
                found = (label, expr, w)
                break
        key = _identifier(term.removeprefix("reward_"), "term")
        if found is None:
            missing.append(term)
            body.append(
                f"    {tasks.NOTE_MARKER} {env_name}'s {term} is left out: no simple expression of the state "
                "fields fits it; write it here (delete this line once decided)"
            )
            continue
        label, expr, w = found
        reproduced.append(term)
        fits.append(label)
        used.update(re.findall(r"\b[a-z_][a-z0-9_]*\b", expr))
        weight = "" if w == 1 else f"{w:.6g} * "
        body.append(f"    {key} = {weight}{expr}  # {env_name}'s {term} ({label})")
    params = [n for n in [*task.spec.state, *(f"prev_{n}" for n in task.spec.state)] if n in used]
    signature = ", ".join(f"{p}: torch.Tensor" for p in [*params, "action"])
    keys = [line.split(" = ")[0].strip() for line in body if " = " in line]
    if not keys:
        return _todo_reward(env_name, missing), [], missing
    silent = []
    if reproduced and all(f == "constant" for f in fits) and live.all():
        # the same number on every random step and no episode ended: a goal's sparse reward that
        # random actions never reached, not a survival bonus or a time penalty that ends at a goal
        silent = [
            f"{tasks.TODO_MARKER} {env_name}'s reward was the same on every random step and no episode "
            "ended early: a sparse reward random actions never trigger, no better than the sparse reward as "
            "the human one (HNS's baseline); write a dense one over the state fields (e.g. a distance to "
            "the goal), then delete this line",
            "",
            "",
        ]
    text = [
        '"""Starter human reward: the environment\'s own reward terms, written over the state fields',
        f'by `eureka tasks new` (fitted on random steps of {env_name}). Replace or refine it."""',
        "",
        "import torch",
        "",
        "",
        *silent,
        f"def compute_reward({signature}) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:",
        *body,
        f"    total = {' + '.join(keys)}",
        f"    return total, {{{', '.join(f'{k!r}: {k}' for k in keys)}}}",
    ]
    return "\n".join(text) + "\n", reproduced, missing


def _todo_reward(env_name: str, terms: list[str]) -> str:
    which = ", ".join(terms) or "the step reward"
    return (
        "\n".join(
            [
                '"""The hand-designed reward of this task, in the reward contract (see README)."""',
                "",
                "import torch",
                "",
                f"{tasks.TODO_MARKER} write compute_reward over the state fields ({env_name}'s {which} is no "
                "simple expression of them), then delete this line",
                "",
                "",
                "def compute_reward(action: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:",
                "    total = torch.zeros(action.shape[0], device=action.device)",
                '    return total, {"todo": total}',
            ]
        )
        + "\n"
    )


# ---------------------------------------------------------------- the entry point


def new_task(name: str, env_id: str, root: Path, force: bool = False) -> Scaffold:
    """Write `root/name/` from the environment `env_id` (a gymnasium id or `path/env.py:Class`).
    When the environment fails (its constructor, reset or step raises), the error names what it
    raised and where, and a folder made for it is removed."""
    if not name.isidentifier():
        raise ConfigError(
            f"task name {name!r}: use letters, digits and underscores, starting with a letter (it names "
            "the folder)"
        )
    folder = root / name
    if folder.exists() and any(folder.iterdir()) and not force:
        raise ConfigError(f"{folder} already exists and is not empty; choose another name or pass --force")
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        try:
            scaffold = _write(name, env_id, folder)
        except BaseException as exc:
            if made:
                shutil.rmtree(folder, ignore_errors=True)
            if isinstance(exc, EnvApiError):
                raise ConfigError(f"--env {env_id}: {exc}") from None
            if isinstance(exc, Exception) and not isinstance(exc, EurekaError):
                raised = task_code_raised(exc, folder)
                checker = [
                    checker_text(w.message).removeprefix("WARN: ").strip()
                    for w in warned
                    if "passive_env_checker" in w.filename
                ]
                hint = f"; gymnasium's env checker: {checker[0]}" if checker else ""
                raise ConfigError(f"--env {env_id}: {raised}{hint}") from None
            raise
    for w in warned:  # as they would have shown
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return scaffold


def _write(name: str, env_id: str, folder: Path) -> Scaffold:
    env, env_section = _make(env_id, folder)
    try:
        env = numeric_observations(env)
        size = _obs_size(env)
        is_mujoco = hasattr(env.unwrapped, "model") and hasattr(env.unwrapped, "data")
        fields, claimed = _mujoco_fields(env, size) if is_mujoco else ([], set())
        fields = _unique(fields + _observation_fields(env, claimed, size))
        fields.sort(key=lambda f: (f.obs is not None, _first(f.obs)))
        episode_steps = (
            int(env.spec.max_episode_steps or CUSTOM_EPISODE_STEPS) if env.spec else CUSTOM_EPISODE_STEPS
        )
        if "max_episode_steps" not in env_section and not (env.spec and env.spec.max_episode_steps):
            env_section["max_episode_steps"] = episode_steps  # registered with no limit (CliffWalking)
        threshold = env.spec.reward_threshold if env.spec and env.spec.reward_threshold else None
        dt = float(getattr(env.unwrapped, "dt", 0.0) or 0.0) or None
        discrete = isinstance(env.action_space, gym.spaces.Discrete)
        spec = {
            "name": name,
            "description": (
                f"TODO: describe the task for the LLM: what the agent controls in {env_id} and what it must "
                "achieve (the state fields below say what it can see)."
            ),
            "env": env_section,
            "state": {
                f.name: {
                    **(
                        {"obs": list(f.obs) if isinstance(f.obs, tuple) else f.obs}
                        if f.obs is not None
                        else {}
                    ),
                    **({"shape": list(f.shape)} if f.shape else {}),
                    **({"unit": f.unit} if f.unit else {}),
                    "description": f.description,
                }
                for f in fields
            },
            "action": _action_text(env),
            "termination": (
                f"TODO: when an episode ends early (failure or success); it is cut after {episode_steps} "
                "steps (time limit)."
            ),
            "fitness": {
                "metric": "env_return",
                "description": f"the return of {env_id}'s own reward over an episode",
                **({"threshold": float(threshold)} if threshold is not None else {}),
            },
            "training": _training(env, episode_steps),
        }
    finally:
        env.close()
    header = (
        f"# Generated by `eureka tasks new {name} --env {env_id}`: complete the TODOs (description,\n"
        "# termination, field descriptions), set fitness.threshold to the F that means solved"
        + (
            ""
            if threshold is not None
            else " (the environment registers none: until set, nothing counts as solved)"
        )
        + ",\n# and check with `eureka tasks check "
        + name
        + "`.\n"
    )
    (folder / tasks.TASK_FILE).write_text(header + yaml.safe_dump(spec, sort_keys=False, width=100))
    if any(f.obs is None for f in fields):
        (folder / "state.py").write_text(_state_py(fields))
    task = tasks.load(str(folder))
    text, reproduced, missing = _human_reward(task, env_section["id"], dt, discrete)
    (folder / tasks.HUMAN_REWARD_FILE).write_text(text)
    return Scaffold(folder, fields, reproduced, missing)


def _first(obs: int | tuple[int, int] | None) -> int:
    return -1 if obs is None else (obs if isinstance(obs, int) else obs[0])
