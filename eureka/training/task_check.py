"""`eureka tasks check`: validates a task folder and names every problem with its fix.

Runs the task author's own (trusted) code in-process: the environment, state.py, fitness.py
and human_reward.py. Reward code written by an LLM never comes here.
"""

from __future__ import annotations

import contextlib
import inspect
import keyword
import warnings
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from eureka import tasks
from eureka.errors import EurekaError, did_you_mean
from eureka.reward import checks
from eureka.reward.checks import valid_parameters
from eureka.reward.contract import RewardError, compile_reward
from eureka.training.envs import (
    StateExtractor,
    batch_tensors,
    checker_text,
    make_env,
    make_state_env,
    task_code_raised,
)
from eureka.training.fitness import Fitness
from eureka.training.sb3 import ALGORITHMS, hyperparam_problems
from eureka.training.train import path_note
from eureka.types import Episode, Task

ROLLOUT_STEPS = 64


@dataclass
class TaskReport:
    """What `tasks check` found: problems make the task unusable, notes are advice."""

    name: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_files(task: Task, report: TaskReport) -> None:
    if task.file(tasks.HUMAN_REWARD_FILE) is None:
        report.problems.append(
            f"{task.folder}: missing {tasks.HUMAN_REWARD_FILE}; write the hand-designed reward "
            "there as compute_reward(...) in the reward contract"
        )
    for path in sorted(task.folder.iterdir()):
        if path.suffix not in (".py", ".yaml") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith(tasks.TODO_MARKER):
                todo = line.strip().removeprefix(tasks.TODO_MARKER).strip()
                report.problems.append(f"{path} line {number}: left to do: {todo}")
            elif line.lstrip().startswith(tasks.NOTE_MARKER):
                note = line.strip().removeprefix(tasks.NOTE_MARKER).strip()
                report.notes.append(f"{path} line {number}: {note}")


def _check_training(task: Task, env: gym.Env[Any, Any], report: TaskReport) -> None:
    training = task.spec.training
    where = task.folder / "task.yaml"
    algo = ALGORITHMS[training.algorithm]
    if training.algorithm in ("SAC", "TD3") and not isinstance(env.action_space, gym.spaces.Box):
        report.problems.append(
            f"{where}: training.algorithm {training.algorithm} needs a continuous (Box) action space, "
            f"the environment has {env.action_space}; use PPO or A2C"
        )
    if isinstance(env.action_space, gym.spaces.Discrete) and int(env.action_space.start) != 0:
        report.problems.append(
            f"the action space {env.action_space} starts at {int(env.action_space.start)}: the policies "
            "act in 0..n-1; make the environment's Discrete start at 0 (and add the offset in env.py)"
        )
    limited = task.spec.env.max_episode_steps or (env.spec is not None and env.spec.max_episode_steps)
    if not limited:
        report.problems.append(
            f"{task.folder / 'task.yaml'}: the environment has no time limit, so an episode of a policy "
            "that never reaches a terminal state never ends (its evaluation would wait forever); set "
            "env.max_episode_steps"
        )
    space = env.action_space
    if isinstance(space, gym.spaces.Box) and not (
        np.isfinite(space.low).all() and np.isfinite(space.high).all()
    ):
        report.problems.append(
            f"the action space {space} has bounds that are not finite: PPO, SAC, TD3 and A2C sample "
            "and clip actions within them; give the Box finite low and high in env.py (the range "
            "the actuators really take)"
        )
    accepted = set(inspect.signature(algo.__init__).parameters) | {"policy", "action_noise_std"}
    for key in training.hyperparams:
        if key not in accepted:
            hint = did_you_mean(key, accepted)
            report.problems.append(
                f"{where}: training.hyperparams.{key} is not a {training.algorithm} argument{hint}"
            )
    values = hyperparam_problems(training.algorithm, training.hyperparams)
    report.problems += [f"{where}: {problem}" for problem in values]


def _check_state(task: Task, env: gym.Env[Any, Any], report: TaskReport) -> None:
    where = task.folder / "task.yaml"
    shape = env.observation_space.shape
    size = int(np.prod(shape)) if shape is not None else 0  # a scalar Box (shape ()) is one number
    for name, spec in task.spec.state.items():
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("prev_") or name == "action":
            report.problems.append(
                f"{where}: state field '{name}' must be a Python identifier (not a keyword) other than "
                "'action' that does not start with 'prev_'"
            )
        index = spec.obs
        stop = index + 1 if isinstance(index, int) else (index[1] if index else 0)
        if index is not None and stop > size:
            report.problems.append(
                f"{where}: state.{name}.obs {index} is outside the observation (size {size})"
            )


@dataclass
class _Rollout:
    """Random-action steps from a fresh environment, to call the task's functions on."""

    infos: list[dict[str, Any]]
    actions: np.ndarray
    rewards: list[float]
    first_end: int | None
    """Steps in the first episode, where it ended within the rollout (terminated or cut)."""
    terminated: bool
    bad: str | None
    """The first observation that is not finite (where it was), if one was."""
    bad_reward: str | None = None
    """The first reward that is not one finite number (what and where), if one was."""


def _rollout_batch(task: Task, seed: int = 0) -> _Rollout:
    env = make_state_env(task)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    infos, actions, rewards = [], [], []
    first_end, terminated = None, False
    bad = _not_finite(obs, "reset")
    bad_reward: str | None = None
    for step in range(ROLLOUT_STEPS):
        action = env.action_space.sample()
        obs, reward, term, trunc, info = env.step(action)
        bad = bad or _not_finite(obs, f"step {step + 1}")
        infos.append(info)
        actions.append(action)
        number = _reward_number(reward)
        if number is None or not np.isfinite(number):
            bad_reward = bad_reward or f"{reward!r:.60} at step {step + 1}"
        rewards.append(number if number is not None else float("nan"))
        if term or trunc:
            if first_end is None:
                first_end, terminated = step + 1, bool(term)
            obs, _ = env.reset()
            bad = bad or _not_finite(obs, f"reset after step {step + 1}")
    env.close()
    return _Rollout(infos, np.stack(actions), rewards, first_end, terminated, bad, bad_reward)


def _reward_number(reward: Any) -> float | None:
    """A step's reward as a float, where it is one number (a 0-d or 1-element array counts)."""
    try:
        return float(np.asarray(reward, dtype=np.float64).reshape(-1)[0]) if np.size(reward) == 1 else None
    except (TypeError, ValueError):
        return None


def _check_episode_fitness(
    task: Task, fitness: Fitness, batch: dict[str, torch.Tensor], rollout: _Rollout, report: TaskReport
) -> None:
    """fitness.py's episode_fitness on the rollout's first episode (or its steps so far, where
    none ended), as training will call it: a problem where it raises or returns no number."""
    steps = rollout.first_end or len(rollout.infos)
    signal = None
    if fitness.signal is not None:
        with contextlib.suppress(RewardError):  # its own problem, reported above
            signal = fitness.signal_values(batch, len(rollout.infos))[:steps].numpy()
    episode = Episode(
        states={name: batch[name][:steps].numpy() for name in task.spec.state},
        env_rewards=np.asarray(rollout.rewards[:steps]),
        signal=signal,
        length=steps,
        terminated=rollout.terminated,
    )
    try:
        fitness.of(episode)
    except EurekaError as exc:
        report.problems.append(str(exc))


def _not_finite(obs: Any, when: str) -> str | None:
    values = np.asarray(obs, dtype=np.float64).reshape(-1)
    wrong = np.flatnonzero(~np.isfinite(values))
    return f"{values[wrong[0]]} at index {wrong[0]}, {when} of a random rollout" if wrong.size else None


def _check_functions(task: Task, report: TaskReport) -> None:
    fields = list(task.spec.state)
    rollout = _rollout_batch(task)
    infos, actions, bad = rollout.infos, rollout.actions, rollout.bad
    if bad is not None:
        report.problems.append(
            f"the environment returned an observation that is not finite ({bad}): the policy cannot "
            "learn from NaN or infinite inputs; fix the environment, or clip the observation in env.py"
        )
    if rollout.bad_reward is not None:
        report.problems.append(
            f"the environment's step returned a reward that is not one finite number ({rollout.bad_reward} "
            "of a random rollout): F and training need one finite float per step; fix the reward in the "
            "environment"
        )
    names = valid_parameters(fields)
    batch = batch_tensors(infos, actions, names, task.spec.state, torch.device("cpu"))
    n = len(infos)
    fitness = Fitness(task)
    if fitness.signal is not None:
        try:
            values = fitness.signal_values(batch, n)
            if bool(((values < 0) | (values > 1)).any()):
                report.problems.append(f"{task.folder / 'fitness.py'}: success_signal must lie in [0, 1]")
        except RewardError as exc:
            report.problems.append(f"{task.folder / 'fitness.py'}: {exc.message}")
    else:
        report.notes.append("fitness.py defines no success_signal, so the task has no sparse baseline")
    if fitness.custom is not None and task.spec.fitness.metric == "custom":
        _check_episode_fitness(task, fitness, batch, rollout, report)
    if task.spec.fitness.threshold is None:
        report.notes.append(
            "task.yaml sets no fitness.threshold, so no policy counts as solved; set the F that means solved"
        )
    human = task.file(tasks.HUMAN_REWARD_FILE)
    if human is None:
        return
    source = human.read_text()
    for problem in checks.check_source(source, fields, human.name):
        report.problems.append(f"{human}: {problem}")
    if report.problems:
        return
    try:
        compile_reward(source, str(human), fields)(batch, n)
    except RewardError as exc:
        report.problems.append(f"{human}: {exc.message}")


def _check_custom_env(task: Task, report: TaskReport) -> None:
    """gymnasium's own checker, for environments defined in the task folder."""
    from gymnasium.utils.env_checker import check_env

    env = make_env(task)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            check_env(env.unwrapped, skip_render_check=True)
        except Exception as exc:
            report.problems.append(f"gymnasium's env checker: {type(exc).__name__}: {exc}")
        else:  # an environment that cannot render trains; its runs have no videos
            try:
                check_env(env.unwrapped, skip_render_check=False)
            except Exception as exc:
                report.notes.append(
                    f"gymnasium's env checker, rendering: {type(exc).__name__}: {exc}; training works, "
                    "but runs will have no rollout videos (give the environment render_modes and an "
                    "rgb_array render() for them)"
                )
    for w in caught:
        report.notes.append(f"gymnasium's env checker: {checker_text(w.message)}")
    env.close()


def check_task(name_or_path: str) -> TaskReport:
    """Every problem with a task folder, each with where it is and what to do; never raises."""
    report = TaskReport(name=name_or_path)
    try:
        task = tasks.load(name_or_path)
    except EurekaError as exc:
        report.problems += str(exc).splitlines()
        return report
    report.name = task.name
    _check_files(task, report)
    try:
        env = make_env(task)
        StateExtractor(task)
    except EurekaError as exc:
        report.problems.append(str(exc))
        return report
    except Exception as exc:
        report.problems.append(task_code_raised(exc, task.folder))
        return report
    try:
        Fitness(task)
    except EurekaError as exc:
        report.problems.append(str(exc))
    except RewardError as exc:  # success_signal breaks the reward contract (a parameter's name)
        report.problems.append(f"{task.folder / 'fitness.py'}: {exc.message}")
    except Exception as exc:
        report.problems.append(task_code_raised(exc, task.folder))
    report.notes.append(path_note(task))
    _check_training(task, env, report)
    _check_state(task, env, report)
    env.close()
    if report.problems:
        return report
    try:
        _check_functions(task, report)
        if ":" in task.spec.env.id:
            _check_custom_env(task, report)
    except EurekaError as exc:
        report.problems.append(str(exc))
    except RewardError as exc:
        report.problems.append(exc.message)
    except Exception as exc:  # the task's own code failed: say where
        report.problems.append(task_code_raised(exc, task.folder))
    return report
