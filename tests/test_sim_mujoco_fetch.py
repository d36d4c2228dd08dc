"""The threaded MuJoCo port of gymnasium-robotics' Fetch tasks against the real environments:
tasks/fetch_reach and tasks/fetch_push (subclasses with their own goal samplers; fetch_push's
places the goal from the block the port drew) step for step (seeded resets, time limit,
automatic resets, actions beyond the bounds), a push with the block in contact from identical
states, the goal samplers, and which envs the port stands for.

Tolerances: both sides run the same MuJoCo model in float64 with the same operations, so qpos and
goals are expected bit-equal (checked to 1e-9, relative and absolute); observations are float32
on both sides (max difference seen 6e-8, float32 rounding of equal values), checked to 1e-6
relative + 1e-6 absolute; rewards to 1e-6."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch
from ports import F64, close

from eureka import tasks
from eureka.training.envs import gym_id, make_env, register_robotics
from eureka.training.sim.mujoco import MujocoBatch, port_of
from eureka.training.sim.registry import BatchedState, make_batched

pytestmark = pytest.mark.skipif(not register_robotics(), reason="gymnasium-robotics is not installed")

N = 3
SEED = 7


def _task_batch(name: str, threads: int = 1) -> tuple[tasks.Task, MujocoBatch, list[gym.Env[Any, Any]]]:
    task = tasks.load(name)
    batch = make_batched(task, N, torch.device("cpu"), seed=SEED, threads=threads)
    assert isinstance(batch, MujocoBatch)
    return task, batch, [make_env(task) for _ in range(N)]


def _compare_steps(
    batch: MujocoBatch, envs: list[gym.Env[Any, Any]], actions: np.ndarray, state_py: Any
) -> int:
    """Step both sides with `actions` `[T, N, 4]` (gymnasium envs reset themselves when done);
    compare everything, the task's state fields too; return the episodes ended."""
    ends = 0
    for action in actions:
        step = batch.step(torch.from_numpy(action))
        built = state_py.get_state_batched(batch, step.final_obs)
        for i, env in enumerate(envs):
            ob, reward, terminated, truncated, _ = env.step(action[i])
            for name, value in state_py.get_state(env.unwrapped, ob).items():
                close(built[name][i], value)
            close(step.final_obs[i], ob.astype(np.float32))
            close(batch.sim["qpos"][i], env.unwrapped.data.qpos, F64)
            close(batch.sim["goal"][i], env.unwrapped.goal, F64)
            assert float(step.reward[i]) == pytest.approx(reward, rel=1e-6, abs=1e-6)
            assert (bool(step.terminated[i]), bool(step.truncated[i])) == (terminated, truncated)
            if terminated or truncated:
                ends += 1
                ob = env.reset()[0]  # the batch drew env i's reset from the same stream
            close(step.obs[i], ob.astype(np.float32))
    return ends


@pytest.mark.parametrize(("name", "threads"), [("fetch_reach", 1), ("fetch_push", 2)])
def test_the_task_matches_gymnasium_step_for_step(name: str, threads: int) -> None:
    """Seeded resets, 2 episodes per env through the time limit and the automatic resets, actions
    beyond the ±1 bounds (clipped by both), the task's state fields built for the batch."""
    task, batch, envs = _task_batch(name, threads)
    state_py = tasks.load_module(task, "state.py")
    obs = batch.reset(seed=SEED)
    for i, env in enumerate(envs):
        close(obs[i], env.reset(seed=SEED + i)[0].astype(np.float32))
    actions = np.random.default_rng(0).uniform(-1.5, 1.5, size=(110, N, 4)).astype(np.float32)
    assert _compare_steps(batch, envs, actions, state_py) == 2 * N
    batch.close()


def test_a_push_in_contact_from_identical_states() -> None:
    """Both sides put in the same state (block beside the gripper, goals given); the gripper is
    driven into the block, which slides several centimetres, identically on both sides."""
    task, batch, envs = _task_batch("fetch_push")
    state_py = tasks.load_module(task, "state.py")
    batch.reset(seed=SEED)
    for i, env in enumerate(envs):
        env.reset(seed=SEED + i)
    port: Any = batch.port
    qpos = np.tile(port.init_qpos, (N, 1))
    start = port.initial_xy + np.array([[0.1, 0.0], [0.0, 0.12], [-0.1, -0.05]])
    qpos[:, port.object_qpos : port.object_qpos + 2] = start
    qvel = np.zeros((N, batch.model.nv))
    goal = np.column_stack([start + 0.1, np.full(N, port.env.height_offset)])
    obs = batch.set_state(qpos, qvel, goal=goal)
    for i, env in enumerate(envs):
        fetch: Any = env.unwrapped
        mujoco.mj_resetData(fetch.model, fetch.data)  # as gymnasium-robotics' _reset_sim
        fetch.data.qpos[:], fetch.data.qvel[:] = qpos[i], qvel[i]
        mujoco.mj_forward(fetch.model, fetch.data)
        fetch.goal = goal[i].copy()
        theirs = fetch._get_obs()
        flat = np.concatenate([theirs["achieved_goal"], theirs["desired_goal"], theirs["observation"]])
        close(obs[i], flat.astype(np.float32))
    for _ in range(40):  # the gripper toward the block's centre: down beside it, then into it
        sites = batch.sim["site_xpos"].numpy()
        to_block = sites[:, port.object] - sites[:, port.grip]
        action = np.column_stack([np.clip(to_block * 20, -1, 1), np.zeros(N)]).astype(np.float32)
        assert _compare_steps(batch, envs, action[None], state_py) == 0
    moved = batch.sim["qpos"][:, port.object_qpos : port.object_qpos + 2].numpy() - start
    assert (np.linalg.norm(moved, axis=1) > 0.02).all()
    batch.close()


def test_goals_are_drawn_by_the_task_env_own_sampler() -> None:
    """tasks/fetch_reach's goals: 20-30 cm from the gripper's start horizontally, 0-15 cm above
    it, as its env.py draws them (and gymnasium's env seeded alike draws the same)."""
    task = tasks.load("fetch_reach")
    batch = MujocoBatch(gym_id(task), 400, max_episode_steps=50)
    batch.reset(seed=3)
    offset = batch.sim["goal"].numpy() - batch.port.env.initial_gripper_xpos  # type: ignore[attr-defined]
    radius = np.linalg.norm(offset[:, :2], axis=1)
    assert radius.min() >= 0.2 and radius.max() <= 0.3 and radius.max() - radius.min() > 0.09
    assert offset[:, 2].min() >= 0 and offset[:, 2].max() <= 0.15
    env = make_env(task)
    for i in (0, 1, 399):
        np.testing.assert_array_equal(env.reset(seed=3 + i)[0][3:6], batch.sim["goal"][i].numpy())
    batch.close()


def test_push_goals_are_placed_from_the_block_the_port_drew() -> None:
    """tasks/fetch_push's env.py places the goal from the block's start, which the port draws
    before calling it: blocks 10-14 cm from the gripper's start, goals PUSH from the block, up to
    TURN off straight away from the gripper unless turned (aside) onto the far edge's line x =
    FAR_EDGE, never past it;
    gymnasium's env seeded alike draws the same block and goal. The description the LLM reads
    states the same distance and angle."""
    task = tasks.load("fetch_push")
    sampler: Any = tasks.load_module(task, "env.py")
    told = " ".join(task.spec.description.split())
    assert f"goal lies {sampler.PUSH * 100:.0f} cm" in told, told
    assert f"up to {np.degrees(sampler.TURN):.0f} degrees" in told, told
    batch = MujocoBatch(gym_id(task), 400, max_episode_steps=50)
    batch.reset(seed=3)
    port: Any = batch.port
    block = batch.sim["qpos"].numpy()[:, port.object_qpos : port.object_qpos + 2]
    goal = batch.sim["goal"].numpy()
    away = block - port.initial_xy
    assert np.linalg.norm(away, axis=1).min() >= 0.1 and np.abs(away).max() <= 0.1
    np.testing.assert_allclose(np.linalg.norm(goal[:, :2] - block, axis=1), sampler.PUSH, atol=1e-9)
    cos = ((goal[:, :2] - block) * away).sum(axis=1) / (sampler.PUSH * np.linalg.norm(away, axis=1))
    turned = np.isclose(goal[:, 0], sampler.FAR_EDGE)
    assert (cos[~turned] >= np.cos(sampler.TURN) - 1e-9).all()
    assert (goal[:, 0] <= sampler.FAR_EDGE + 1e-9).all()
    assert cos.max() > 0.999 and 0 < turned.sum() < len(goal) / 2
    env = make_env(task)
    for i in (0, 1, 399):
        np.testing.assert_array_equal(env.reset(seed=3 + i)[0][3:6], goal[i])
        theirs = env.unwrapped.data.qpos[port.object_qpos : port.object_qpos + 2]  # type: ignore[attr-defined]
        np.testing.assert_array_equal(theirs, block[i])
    batch.close()


def test_which_envs_the_port_stands_for() -> None:
    """Fetch ids and a subclass that only draws other goals: ported; a subclass that changes the
    observation: not (it trains on gymnasium's vector env)."""
    from gymnasium_robotics.envs.fetch.reach import MujocoFetchReachEnv

    class OtherObs(MujocoFetchReachEnv):
        def _get_obs(self) -> Any:
            return super()._get_obs()

    gym.register(id="eureka-test-other-obs-v0", entry_point=OtherObs, max_episode_steps=50)
    assert port_of("FetchPush-v4") is port_of(gym_id(tasks.load("fetch_reach"))) is not None
    assert port_of("eureka-test-other-obs-v0") is None
    assert port_of("CartPole-v1") is None
    batch = make_batched(tasks.load("fetch_reach"), 2, torch.device("cpu"))
    assert isinstance(batch, MujocoBatch) and (batch.obs_dim, batch.max_episode_steps) == (16, 50)
    assert (batch.action.low, batch.action.high) == ((-1.0,) * 4, (1.0,) * 4)
    state = BatchedState(tasks.load("fetch_reach"), batch)(batch.reset())
    assert set(state) == set(tasks.load("fetch_reach").spec.state)
    batch.close()
