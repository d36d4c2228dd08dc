"""The threaded MuJoCo backend against gymnasium's own v5 environments: observations, rewards,
terminations and resets step for step; set_state; the tasks' batched state builders; seeding."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from eureka import tasks
from eureka.training.envs import make_env
from eureka.training.sim.base import Step
from eureka.training.sim.mujoco import FETCHES, POINT_MAZES, SUPPORTED, MujocoBatch

N = 3
GYM_IDS = [env_id for env_id in SUPPORTED if env_id not in (*POINT_MAZES, *FETCHES)]
"""gymnasium's own v5 environments (PointMaze: test_sim_mujoco_maze.py, Fetch: test_sim_mujoco_fetch.py)."""
SEED = 11
ACTION_SCALE = 1.2
"""Beyond the ±1 bounds on purpose: MuJoCo clamps ctrl, the control cost sees the action as given."""
MUJOCO_TASKS = [
    "half_cheetah",
    "half_cheetah_backward",
    "hopper",
    "ant",
    "reacher",
    "inverted_double_pendulum",
    "pusher",
    "ant_turn",
    "half_cheetah_flip",
    "hopper_jump",
]


def _close(mine: torch.Tensor, theirs: Any) -> None:
    """Equal up to float32 rounding (in practice bit-equal after the cast: MuJoCo is deterministic)."""
    expected = torch.as_tensor(np.asarray(theirs, dtype=np.float64)).to(torch.float32)
    torch.testing.assert_close(mine.to(torch.float32), expected, rtol=1e-6, atol=1e-6)


def _lockstep(
    batch: MujocoBatch,
    envs: list[gym.Env[Any, Any]],
    steps: int,
    probe: Callable[[gym.Env[Any, Any], Any], Any] = lambda env, obs: None,
) -> Iterator[tuple[Step, list[tuple[Any, ...]]]]:
    """Step the batch and the gymnasium envs with the same random actions; yield the batch's step
    and each gymnasium env's (obs, reward, terminated, truncated, obs after its reset or None,
    `probe(env, obs)` taken before that reset).

    Both sides reset with the same seeds (env i with SEED + i) and then only reset themselves, with
    no re-syncing at episode ends: the batch draws env i's reset noise from
    `default_rng(SEED + i)` in gymnasium's order, so its automatic resets reproduce gymnasium's
    `env.reset()` exactly, and comparing the next observation tests the reset too."""
    obs = batch.reset(seed=SEED)
    for i, env in enumerate(envs):
        _close(obs[i], env.reset(seed=SEED + i)[0])
    rng = np.random.default_rng(0)
    for _ in range(steps):
        action = rng.uniform(-ACTION_SCALE, ACTION_SCALE, size=(N, batch.action.dim)).astype(np.float32)
        step = batch.step(torch.from_numpy(action))
        results = []
        for i, env in enumerate(envs):
            ob, reward, terminated, truncated, _ = env.step(action[i])
            probed = probe(env, ob)
            reset_ob = env.reset()[0] if terminated or truncated else None
            results.append((ob, reward, terminated, truncated, reset_ob, probed))
        yield step, results


@pytest.mark.parametrize("env_id", GYM_IDS)
def test_matches_gymnasium_step_for_step(env_id: str) -> None:
    limit = 60  # short, so that every env also reaches its time limit
    batch = MujocoBatch(env_id, N, max_episode_steps=limit)
    envs = [gym.make(env_id, max_episode_steps=limit) for _ in range(N)]
    ends = 0
    for step, results in _lockstep(batch, envs, steps=250):
        obs, rewards, terminated, truncated, reset_obs, _ = zip(*results, strict=True)
        _close(step.final_obs, np.stack(obs))
        _close(step.reward, rewards)
        assert step.terminated.tolist() == list(terminated)
        timed_out = [tr and not te for te, tr in zip(terminated, truncated, strict=True)]
        assert step.truncated.tolist() == timed_out
        next_obs = [ob if new is None else new for ob, new in zip(obs, reset_obs, strict=True)]
        _close(step.obs, np.stack(next_obs))
        ends += sum(new is not None for new in reset_obs)
    assert ends >= N * 250 // limit
    batch.close()


def test_ant_with_the_task_kwargs_matches_gymnasium() -> None:
    kwargs: dict[str, Any] = {"include_cfrc_ext_in_observation": False, "ctrl_cost_weight": 0.3}
    batch = MujocoBatch("Ant-v5", N, **kwargs)
    envs = [gym.make("Ant-v5", **kwargs) for _ in range(N)]
    assert batch.obs_dim == 27
    for step, results in _lockstep(batch, envs, steps=40):
        for i, (ob, reward, terminated, *_) in enumerate(results):
            _close(step.final_obs[i], ob)
            _close(step.reward[i], reward)
            assert bool(step.terminated[i]) == terminated


@pytest.mark.parametrize("env_id", GYM_IDS)
def test_set_state_matches_gymnasium(env_id: str) -> None:
    """States reached by gymnasium, copied in with set_state, give gymnasium's observations and
    the same next steps (set_state resets the data as gymnasium's reset does, then sets it)."""
    source = [gym.make(env_id) for _ in range(N)]
    for i, env in enumerate(source):
        env.reset(seed=SEED + i)
        for _ in range(5):
            env.step(env.action_space.sample())
    qpos = np.stack([env.unwrapped.data.qpos.copy() for env in source])  # type: ignore[attr-defined]
    qvel = np.stack([env.unwrapped.data.qvel.copy() for env in source])  # type: ignore[attr-defined]
    envs = [gym.make(env_id) for _ in range(N)]
    for env in envs:
        env.reset(seed=0)
    batch = MujocoBatch(env_id, N)
    obs = batch.set_state(qpos, qvel)
    for i, env in enumerate(envs):
        model_env: Any = env.unwrapped
        model_env.set_state(qpos[i], qvel[i])
        _close(obs[i], model_env._get_obs())
        torch.testing.assert_close(batch.sim["qpos"][i], torch.from_numpy(model_env.data.qpos))
        torch.testing.assert_close(batch.sim["xpos"][i], torch.from_numpy(model_env.data.xpos))
        torch.testing.assert_close(batch.sim["site_xpos"][i], torch.from_numpy(model_env.data.site_xpos))
    rng = np.random.default_rng(1)
    for _ in range(3):
        action = rng.uniform(-1, 1, size=(N, batch.action.dim)).astype(np.float32)
        step = batch.step(torch.from_numpy(action))
        results = [env.step(action[i]) for i, env in enumerate(envs)]
        for i, (ob, reward, terminated, _, _) in enumerate(results):
            _close(step.final_obs[i], ob)
            _close(step.reward[i], reward)
            assert bool(step.terminated[i]) == terminated
        if step.terminated.any():
            break


@pytest.mark.parametrize("name", MUJOCO_TASKS)
def test_batched_state_builder_matches_get_state(name: str) -> None:
    task = tasks.load(name)
    state_py = tasks.load_module(task, "state.py")
    assert state_py is not None
    batch = MujocoBatch(task.spec.env.id, N, **task.spec.env.kwargs)
    envs = [make_env(task) for _ in range(N)]

    def get_state(env: gym.Env[Any, Any], obs: Any) -> dict[str, Any]:
        return state_py.get_state(env.unwrapped, np.asarray(obs))

    for step, results in _lockstep(batch, envs, steps=30, probe=get_state):
        built = state_py.get_state_batched(batch, step.final_obs)
        for i, (*_, single) in enumerate(results):
            assert set(built) == set(single)
            for field, value in single.items():
                assert built[field].dtype == torch.float32
                assert built[field].shape == (N, *np.shape(value))
                _close(built[field][i], value)


def test_sim_layout_and_pre_reset_semantics() -> None:
    batch = MujocoBatch("HalfCheetah-v5", 4, max_episode_steps=5)
    model = batch.model
    batch.reset(seed=0)
    for _ in range(5):
        step = batch.step(torch.zeros(4, 6))
    assert step.truncated.all() and not step.terminated.any()
    assert {k: (tuple(v.shape), v.dtype) for k, v in batch.sim.items()} == {
        "qpos": ((4, model.nq), torch.float64),
        "qvel": ((4, model.nv), torch.float64),
        "xpos": ((4, model.nbody, 3), torch.float64),
        "site_xpos": ((4, model.nsite, 3), torch.float64),
    }
    # `sim` and `final_obs` show the state the step reached; `obs` already the new episode's.
    torch.testing.assert_close(step.final_obs[:, :8], batch.sim["qpos"][:, 1:].float())
    assert not torch.allclose(step.obs, step.final_obs)
    assert batch.sim["qpos"][:, 0].abs().max() > 0
    assert batch.body_id("torso") == 1
    with pytest.raises(KeyError, match="did you mean 'torso'"):
        batch.body_id("torsoo")


def test_sim_fields_choose_what_sim_holds() -> None:
    """Any MjData array can be asked for; contact forces come filled as gymnasium fills them."""
    batch = MujocoBatch("HalfCheetah-v5", 1, sim_fields=("qpos", "cfrc_ext"))
    env: Any = gym.make("HalfCheetah-v5")
    batch.reset(seed=SEED)
    env.reset(seed=SEED)
    for _ in range(20):
        batch.step(torch.ones(1, 6))
        env.step(np.ones(6, dtype=np.float32))
    assert set(batch.sim) == {"qpos", "cfrc_ext"}
    assert batch.sim["cfrc_ext"].abs().max() > 0
    torch.testing.assert_close(batch.sim["cfrc_ext"][0], torch.from_numpy(env.unwrapped.data.cfrc_ext))
    with pytest.raises(ValueError, match="sim field 'qpoz' is not a float MjData array"):
        MujocoBatch("Ant-v5", 2, sim_fields=("qpoz",))


def _rollout(batch: MujocoBatch, seed: int | None, steps: int = 40) -> torch.Tensor:
    rng = torch.Generator().manual_seed(0)
    observations = [batch.reset(seed=seed)]
    for _ in range(steps):
        action = torch.rand(batch.num_envs, batch.action.dim, generator=rng) * 2 - 1
        observations.append(batch.step(action).obs)
    return torch.stack(observations)


def test_reset_is_reproducible_per_seed_and_thread_count() -> None:
    one, three = MujocoBatch("Hopper-v5", 5, threads=1), MujocoBatch("Hopper-v5", 5, threads=3)
    first = _rollout(one, seed=4)
    assert torch.equal(first, _rollout(three, seed=4))
    assert torch.equal(first, _rollout(one, seed=4))
    assert not torch.equal(first[0], _rollout(one, seed=5)[0])
    assert not torch.equal(first[0], _rollout(one, seed=None)[0])  # the noise streams go on
    assert torch.equal(first[0], MujocoBatch("Hopper-v5", 5, seed=4).reset())  # constructor seed
    one.close()
    three.close()


def test_defaults_and_errors() -> None:
    assert MujocoBatch("Reacher-v5", 1).max_episode_steps == 50
    batch = MujocoBatch("InvertedDoublePendulum-v5", 2)
    assert batch.max_episode_steps == 1000
    assert (batch.obs_dim, batch.action.dim, batch.action.low, batch.action.high) == (9, 1, (-1.0,), (1.0,))
    with pytest.raises(RuntimeError, match="call reset"):
        batch.step(torch.zeros(2, 1))
    batch.reset()
    with pytest.raises(ValueError, match=r"actions must be \[2, 1\], got \[2, 3\]"):
        batch.step(torch.zeros(2, 3))
    with pytest.raises(ValueError) as err:
        MujocoBatch("Hoper-v5", 2)
    assert str(err.value).startswith(
        "no batched MuJoCo port of 'Hoper-v5' (did you mean 'Hopper-v5'?); supported: HalfCheetah-v5, "
        "Hopper-v5, Walker2d-v5, Ant-v5, Reacher-v5, InvertedDoublePendulum-v5, Pusher-v5, "
        "PointMaze_UMaze-v3, PointMaze_UMazeDense-v3, "
    )
    batch.close()
    with pytest.raises(RuntimeError, match="closed"):
        batch.step(torch.zeros(2, 1))


def test_pusher_goal_is_where_its_description_says() -> None:
    """The goal the LLM is told about: the same spot every episode, at the x, y the description
    states (not (0, 0): the goal's slide joints are 0 at (0.45, -0.05) in the world frame), and
    below the cylinder's centre in z, so the description says to compare them in x, y."""
    task = tasks.load("pusher")
    told = " ".join(task.spec.description.split())
    env = make_env(task)
    goals, objects = [], []
    for seed in range(3):
        obs = env.reset(seed=seed)[0]
        goals.append(obs[20:23])
        objects.append(obs[17:20])
    np.testing.assert_array_equal(goals[0], goals[1])
    np.testing.assert_array_equal(goals[0], goals[2])
    assert f"x {goals[0][0]:.2f} m, y {goals[0][1]:.2f} m" in told, told
    assert objects[0][2] - goals[0][2] > 0.04
    assert "compare the two in x, y" in " ".join(task.spec.state["goal_position"].description.split())
    env.close()
