"""The gymnasium fallback backend (eureka.training.sim.gym_vector): it steps like the task's own gymnasium
envs, reports named state before and after automatic resets, and is chosen exactly when a task
has no native port (or state.py has no get_state_batched for a field the observation lacks)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from eureka import tasks
from eureka.errors import TaskError
from eureka.training.envs import StateExtractor, make_env
from eureka.training.sim.gym_vector import GymVector
from eureka.training.sim.registry import BatchedState, make_batched
from eureka.types import Task

N = 4
SEED = 3
CPU = torch.device("cpu")


def _without_port(tmp_path: Path) -> Task:
    """point_mass as a user's task folder would be without batched.py: a custom env.py only."""
    folder = tmp_path / "point_mass"
    shutil.copytree(tasks.load("point_mass").folder, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "batched.py").unlink()
    yaml_file = folder / "task.yaml"
    yaml_file.write_text(yaml_file.read_text().replace('  batched: "batched:PointMassBatched"\n', ""))
    return tasks.load(str(folder))


def _f32(values: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32))


def test_steps_like_the_tasks_gymnasium_envs(tmp_path: Path) -> None:
    task = _without_port(tmp_path)
    batch = GymVector(task, N, CPU, seed=SEED)
    envs: list[gym.Env[Any, Any]] = [make_env(task) for _ in range(N)]
    extract = StateExtractor(task)
    resets = 0

    def next_seed() -> int:  # GymVector's rule: one fresh seed per reset, in order
        nonlocal resets
        resets += 1
        return SEED * 1_000_003 + resets

    obs = batch.reset()
    theirs = [env.reset(seed=next_seed())[0] for env in envs]
    assert torch.equal(obs, _f32(theirs))
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(260):  # past the 200-step time limit
        actions = rng.uniform(-1, 1, size=(N, 2)).astype(np.float32)
        step = batch.step(torch.from_numpy(actions))
        state = BatchedState(task, batch)(step.final_obs)
        state_next = BatchedState(task, batch)(step.obs, after_reset=True)
        for i, env in enumerate(envs):
            ob, reward, terminated, truncated, _ = env.step(actions[i])
            assert torch.equal(step.final_obs[i], _f32(ob))
            assert float(step.reward[i]) == pytest.approx(reward, rel=1e-6)
            assert bool(step.terminated[i]) == terminated
            assert bool(step.truncated[i]) == (truncated and not terminated)
            before = extract(env, ob)
            for name, value in before.items():
                assert torch.equal(state[name][i], torch.as_tensor(value)), name
            if terminated or truncated:
                ends += 1
                ob = env.reset(seed=next_seed())[0]
            after = extract(env, ob)
            assert torch.equal(step.obs[i], _f32(ob))
            for name, value in after.items():
                assert torch.equal(state_next[name][i], torch.as_tensor(value)), name
    assert ends >= N  # every env reached its time limit (or the goal) at least once
    batch.close()


def test_the_fallback_is_taken_only_without_a_native_port(tmp_path: Path) -> None:
    ported = tasks.load("point_mass")
    assert type(make_batched(ported, 2, CPU)).__name__ == "PointMassBatched"
    assert isinstance(make_batched(ported, 2, CPU, backend="gym"), GymVector)
    bare = _without_port(tmp_path)
    assert isinstance(make_batched(bare, 2, CPU), GymVector)
    with pytest.raises(TaskError, match="no batched port of env:PointMassEnv"):
        make_batched(bare, 2, CPU, backend="native")
