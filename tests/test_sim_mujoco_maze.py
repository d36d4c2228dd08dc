"""The threaded MuJoCo port of gymnasium-robotics' PointMaze against the real environment: the
task's maze step for step (resets, time limit, state fields), dynamics from identical states
(walls, velocity clipping, reaching the goal), a continuing task's new goals, and the sampler.

Tolerances: both sides run the same MuJoCo model in float64 with the same operations, so the
float64 arrays are expected bit-equal (checked to 1e-9, relative and absolute, over hundreds of
steps); observations are float32 on both sides, so they may differ by float32 rounding of equal
float64 values (checked to 1e-6 relative + 1e-6 absolute, positions are at most ~6 m)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from ports import F64, close

from eureka import tasks
from eureka.training.envs import register_robotics
from eureka.training.sim.mujoco import MujocoBatch
from eureka.training.sim.registry import BatchedState, make_batched

pytestmark = pytest.mark.skipif(not register_robotics(), reason="gymnasium-robotics is not installed")

N = 3
SEED = 11


def _task_batch(n: int = N, **overrides: Any) -> tuple[tasks.Task, MujocoBatch, list[gym.Env[Any, Any]]]:
    task = tasks.load("point_maze")
    spec = task.spec.env
    limit = overrides.pop("max_episode_steps", spec.max_episode_steps)
    batch = MujocoBatch(spec.id, n, max_episode_steps=limit, **spec.kwargs)
    envs = [
        gym.wrappers.FlattenObservation(gym.make(spec.id, max_episode_steps=limit, **spec.kwargs))
        for _ in range(n)
    ]
    return task, batch, envs


def _compare_steps(
    batch: MujocoBatch, envs: list[gym.Env[Any, Any]], actions: np.ndarray, state_py: Any = None
) -> tuple[int, int]:
    """Step both sides with `actions` `[T, N, 2]` (gymnasium envs reset themselves when done);
    compare everything (and the task's state fields, given its state.py); return (episodes
    ended, of which terminated)."""
    ends = terminations = 0
    for action in actions:
        step = batch.step(torch.from_numpy(action))
        built = state_py.get_state_batched(batch, step.final_obs) if state_py else {}
        for i, env in enumerate(envs):
            ob, reward, terminated, truncated, _ = env.step(action[i])
            for name, value in state_py.get_state(env.unwrapped, ob).items() if state_py else ():
                close(built[name][i], value)
            close(step.final_obs[i], ob.astype(np.float32))
            close(batch.sim["qpos"][i], ob[4:6], F64)
            close(batch.sim["qvel"][i], ob[6:8], F64)
            close(batch.sim["goal"][i], ob[2:4], F64)
            assert float(step.reward[i]) == pytest.approx(reward, rel=1e-6, abs=1e-6)
            assert bool(step.terminated[i]) == terminated
            assert bool(step.truncated[i]) == (truncated and not terminated)
            if terminated or truncated:
                ends += 1
                terminations += terminated
                ob = env.reset()[0]  # the batch drew env i's reset from the same stream
            close(step.obs[i], ob.astype(np.float32))
    return ends, terminations


def test_the_task_maze_matches_gymnasium_step_for_step() -> None:
    """Seeded resets, 2 episodes per env through the time limit and the automatic resets, with
    actions beyond the ±1 bounds (clipped by both), and the task's state fields built for the batch."""
    task, batch, envs = _task_batch(max_episode_steps=80)
    state_py = tasks.load_module(task, "state.py")
    assert state_py is not None
    obs = batch.reset(seed=SEED)
    for i, env in enumerate(envs):
        close(obs[i], env.reset(seed=SEED + i)[0].astype(np.float32))
    actions = np.random.default_rng(0).uniform(-1.5, 1.5, size=(170, N, 2)).astype(np.float32)
    ends, _ = _compare_steps(batch, envs, actions, state_py)
    assert ends == 2 * N
    batch.close()


def test_dynamics_from_identical_states_walls_clipping_and_the_goal() -> None:
    """Both sides put in the same qpos, qvel and goal: one ball rolls into the goal (terminated,
    then a sampled reset), one hits a wall faster than the velocity clip, one starts at rest."""
    _, batch, envs = _task_batch()
    batch.reset(seed=SEED)
    for i, env in enumerate(envs):
        env.reset(seed=SEED + i)
    goal = np.array([[4.5, -3.0], [4.6, -2.9], [4.4, -3.1]])
    qpos = np.array([[3.0, -3.0], [-1.5, 1.2], [0.5, -1.0]])
    qvel = np.array([[4.0, 0.0], [0.0, 8.0], [0.0, 0.0]])
    obs = batch.set_state(qpos, qvel, goal=goal)
    for i, env in enumerate(envs):
        maze: Any = env.unwrapped
        maze.goal = goal[i].copy()
        maze.point_env.set_state(qpos[i], qvel[i])
        close(obs[i], np.concatenate([qpos[i], goal[i], qpos[i], qvel[i]]).astype(np.float32))
    actions = np.tile(np.array([[1.0, 0.0], [0.3, 1.0], [-1.0, -0.4]], dtype=np.float32), (60, 1, 1))
    ends, terminations = _compare_steps(batch, envs, actions)
    assert (ends, terminations) == (1, 1)
    batch.close()


def test_a_continuing_task_draws_new_goals_as_gymnasium_does() -> None:
    kwargs = {"continuing_task": True, "reset_target": True}
    batch = MujocoBatch("PointMaze_OpenDense-v3", N, max_episode_steps=30, **kwargs)
    envs = [
        gym.wrappers.FlattenObservation(gym.make("PointMaze_OpenDense-v3", max_episode_steps=30, **kwargs))
        for _ in range(N)
    ]
    batch.reset(seed=SEED)
    goals = np.stack([env.reset(seed=SEED + i)[0][2:4] for i, env in enumerate(envs)])
    qpos, qvel = goals + 0.1, np.zeros((N, 2))  # on the goal: the first step reaches it
    batch.set_state(qpos, qvel, goal=goals)
    for i, env in enumerate(envs):
        env.unwrapped.point_env.set_state(qpos[i], qvel[i])  # type: ignore[attr-defined]
    actions = np.random.default_rng(1).uniform(-1, 1, size=(40, N, 2)).astype(np.float32)
    step = batch.step(torch.from_numpy(actions[0]))
    torch.testing.assert_close(step.final_obs[:, 2:4].double(), torch.from_numpy(goals).float().double())
    assert not torch.allclose(batch.sim_next["goal"], batch.sim["goal"])  # new goals for the next step
    for i, env in enumerate(envs):
        env.step(actions[0, i])
    ends, terminations = _compare_steps(batch, envs, actions[1:])
    assert (ends, terminations) == (N, 0)
    batch.close()


def _cells(xy: np.ndarray, maze: Any) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in maze.cell_xy_to_rowcol(p)) for p in xy]


def test_goals_and_starts_lie_in_their_cells_within_the_noise() -> None:
    """The task's map: goals around the 'g' cell, starts around the 'r' cell; a map with neither:
    both anywhere free, never in the same cell, every free cell drawn; the noise is uniform ±0.25."""
    spec = tasks.load("point_maze").spec.env
    batch = MujocoBatch(spec.id, 500, **spec.kwargs)
    batch.reset(seed=0)
    goal, start = batch.sim["goal"].numpy(), batch.sim["qpos"].numpy()
    for xy, centre in ((goal, (4.5, -3.0)), (start, (-4.5, 3.0))):
        offset = xy - np.array(centre)
        assert np.abs(offset).max() <= 0.25
        assert np.abs(offset).max() > 0.24 and np.abs(offset.mean(axis=0)).max() < 0.03
    batch.close()

    free_map = [[1, 1, 1, 1], [1, 0, 0, 1], [1, 0, 1, 1], [1, 0, 0, 1], [1, 1, 1, 1]]
    batch = MujocoBatch("PointMaze_UMaze-v3", 500, maze_map=free_map)
    maze: Any = gym.make("PointMaze_UMaze-v3", maze_map=free_map).unwrapped.maze
    free = {(i, j) for i, row in enumerate(free_map) for j, cell in enumerate(row) if cell == 0}
    batch.reset(seed=1)
    goal_cells = _cells(batch.sim["goal"].numpy(), maze)
    start_cells = _cells(batch.sim["qpos"].numpy(), maze)
    assert set(goal_cells) == set(start_cells) == free
    assert all(g != s for g, s in zip(goal_cells, start_cells, strict=True))
    batch.close()


def test_the_task_trains_on_the_port_with_its_state_fields() -> None:
    task = tasks.load("point_maze")
    env = make_batched(task, 4, torch.device("cpu"), seed=0)
    assert isinstance(env, MujocoBatch) and (env.obs_dim, env.max_episode_steps) == (8, 400)
    assert (env.action.low, env.action.high) == ((-1.0, -1.0), (1.0, 1.0))
    obs = env.reset()
    state = BatchedState(task, env)(env.step(torch.zeros(4, 2)).final_obs)
    assert set(state) == set(task.spec.state)
    torch.testing.assert_close(state["goal_distance"], (obs[:, 0:2] - obs[:, 2:4]).norm(dim=1))
    with pytest.raises(ValueError, match="set_state of PointMaze_Large-v3 takes besides qpos and qvel: goal"):
        env.set_state(np.zeros((4, 2)), np.zeros((4, 2)))
    env.close()


def test_making_a_maze_leaves_no_scratch_xml_in_the_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from eureka.training.envs import make_env

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    task = tasks.load("point_maze")
    env = make_env(task)
    batch = MujocoBatch(task.spec.env.id, 2, **task.spec.env.kwargs)
    env.reset(seed=0)
    batch.reset(seed=0)
    env.close()
    assert list(tmp_path.iterdir()) == []  # gymnasium-robotics alone leaves ant_maze<time>.xml
    gym.make(task.spec.env.id, **task.spec.env.kwargs).close()
    assert [p.name[:8] for p in tmp_path.iterdir()] == ["ant_maze"]
