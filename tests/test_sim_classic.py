"""The torch ports (eureka.training.sim.classic, tasks/point_mass/batched.py) step like gymnasium's envs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from eureka import tasks
from eureka.training import envs
from eureka.training.sim.base import BatchedEnv
from eureka.training.sim.classic import REGISTRY, Acrobot, CartPole, MountainCarContinuous, Pendulum, TorchEnv

N = 8
STEPS = 600
ATOL = 1e-5
"""Absolute tolerance of one float32 step against gymnasium's float64 (and of cuda against CPU)."""
EPS32 = float(np.finfo(np.float32).eps)
GROWTH = 2 * EPS32
"""How far the port's float32 state may drift from gymnasium's float64, relative to its size,
per step since the episode's reset: the state is integrated, so a rounding error of ~eps32 per
step accumulates over the episode (on another x86-64 machine the same run differed by
1.04e-5 after 461 steps of point_mass)."""
PORTS: dict[str, type[TorchEnv]] = {
    "CartPole-v1": CartPole,
    "Pendulum-v1": Pendulum,
    "MountainCarContinuous-v0": MountainCarContinuous,
    "Acrobot-v1": Acrobot,
}


def _task_module(task: str, filename: str) -> ModuleType:
    module = tasks.load_module(tasks.load(task), filename)
    assert module is not None
    return module


def _point_mass(num_envs: int, **kwargs: Any) -> TorchEnv:
    cls = _task_module("point_mass", "batched.py").PointMassBatched
    env: TorchEnv = cls(num_envs, **{"max_episode_steps": 200, **kwargs})
    return env


def _random_policy(space: gym.Space[Any]) -> Callable[[np.random.Generator, np.ndarray], np.ndarray]:
    def policy(rng: np.random.Generator, obs: np.ndarray) -> np.ndarray:
        if isinstance(space, gym.spaces.Discrete):
            return rng.integers(0, int(space.n), size=len(obs))
        assert isinstance(space, gym.spaces.Box)
        return rng.uniform(space.low, space.high, size=(len(obs), *space.shape)).astype(np.float32)

    return policy


def _mountain_car_policy(rng: np.random.Generator, obs: np.ndarray) -> np.ndarray:
    """Even envs push along their velocity (reaching the flag), odd envs push at random."""
    pump = np.where(obs[:, 1] >= 0, 1.0, -1.0)
    actions = np.where(np.arange(len(obs)) % 2 == 0, pump, rng.uniform(-1, 1, len(obs)))
    return actions[:, None].astype(np.float32)


def _acrobot_policy(rng: np.random.Generator, obs: np.ndarray) -> np.ndarray:
    """Even envs torque along the elbow's velocity (raising the tip), odd envs at random."""
    pump = np.where(obs[:, 5] >= 0, 2, 0)
    return np.where(np.arange(len(obs)) % 2 == 0, pump, rng.integers(0, 3, len(obs)))


def _point_mass_policy(rng: np.random.Generator, obs: np.ndarray) -> np.ndarray:
    """Even envs go round the obstacle to the goal, odd envs head straight at it (and slide)."""
    position, velocity, goal = obs[:, :2], obs[:, 2:4], obs[:, 4:6]
    around = np.where(position[:, :1] < 0, np.array([[0.0, 0.8]]), goal)
    target = np.where((np.arange(len(obs)) % 2 == 0)[:, None], around, goal)
    force = 2 * (target - position) - velocity + rng.normal(0, 0.3, position.shape)
    return np.clip(force, -1, 1).astype(np.float32)


@dataclass
class Case:
    """A gymnasium env and its torch port, with the policy that drives both."""

    make_gym: Callable[[], gym.Env[Any, Any]]
    make_torch: Callable[[int], TorchEnv]
    policy: Callable[[np.random.Generator, np.ndarray], np.ndarray]

    def gym_state(self, env: gym.Env[Any, Any]) -> np.ndarray:
        inner: Any = env.unwrapped
        if hasattr(inner, "position"):  # PointMassEnv keeps position and velocity apart
            return np.concatenate([inner.position, inner.velocity])
        return np.asarray(inner.state, dtype=np.float64)


def _classic(gym_id: str, policy: Any = None, max_episode_steps: int | None = None, **kwargs: Any) -> Case:
    def make_gym() -> gym.Env[Any, Any]:
        return gym.make(gym_id, max_episode_steps=max_episode_steps, **kwargs)

    def make_torch(num_envs: int) -> TorchEnv:
        return PORTS[gym_id](num_envs, max_episode_steps=max_episode_steps, **kwargs)

    return Case(make_gym, make_torch, policy or _random_policy(make_gym().action_space))


def _point_mass_case() -> Case:
    task = tasks.load("point_mass")
    return Case(lambda: envs.make_env(task), _point_mass, _point_mass_policy)


CASES: dict[str, Callable[[], Case]] = {
    "cartpole": lambda: _classic("CartPole-v1"),
    "cartpole-sutton-barto": lambda: _classic("CartPole-v1", sutton_barto_reward=True),
    "pendulum": lambda: _classic("Pendulum-v1"),
    "pendulum-g": lambda: _classic("Pendulum-v1", g=9.81),
    # a shorter time limit, so that 600 steps also see truncations
    "mountain_car": lambda: _classic("MountainCarContinuous-v0", _mountain_car_policy, max_episode_steps=250),
    "acrobot": lambda: _classic("Acrobot-v1", _acrobot_policy),
    "point_mass": _point_mass_case,
}


def _close(
    torch_value: torch.Tensor, gym_value: np.ndarray, what: str, t: int, age: np.ndarray | None = None
) -> None:
    """Equal within ATOL plus GROWTH x (steps since each env's reset) x (1 + |value|)."""
    reference = gym_value.astype(np.float64)
    diff = np.abs(torch_value.numpy().astype(np.float64) - reference)
    steps = np.zeros(len(reference)) if age is None else age
    tol = ATOL + GROWTH * steps.reshape(-1, *([1] * (reference.ndim - 1))) * (1 + np.abs(reference))
    worst = np.unravel_index(np.argmax(diff - tol), diff.shape) if diff.size else ()
    assert (diff <= tol).all(), f"step {t}: {what} differs by {diff[worst]} (tolerance {tol[worst]:.3g})"


@pytest.mark.parametrize("name", CASES)
def test_steps_like_gymnasium(name: str) -> None:
    case = CASES[name]()
    gyms = [case.make_gym() for _ in range(N)]
    obs = np.stack([g.reset(seed=100 + i)[0] for i, g in enumerate(gyms)])
    env = case.make_torch(N)
    _close(env.set_state(torch.as_tensor(np.stack([case.gym_state(g) for g in gyms]))), obs, "reset obs", 0)
    rng = np.random.default_rng(0)
    ended = {"terminated": 0, "truncated": 0}
    age = np.zeros(N)
    for t in range(1, STEPS + 1):
        age += 1
        actions = case.policy(rng, obs)
        results = [g.step(a) for g, a in zip(gyms, actions, strict=True)]
        step = env.step(torch.as_tensor(actions))
        assert (step.obs.dtype, step.final_obs.dtype, step.reward.dtype) == (torch.float32,) * 3
        assert step.terminated.dtype == step.truncated.dtype == torch.bool
        next_obs = np.stack([r[0] for r in results])
        terminated = np.array([r[2] for r in results])
        # gymnasium's TimeLimit also reports truncated on a terminal last step; the contract does not
        truncated = np.array([r[3] for r in results]) & ~terminated
        assert np.array_equal(step.terminated.numpy(), terminated), f"step {t}: terminated"
        assert np.array_equal(step.truncated.numpy(), truncated), f"step {t}: truncated"
        _close(step.reward, np.array([r[1] for r in results]), "reward", t, age)
        _close(step.final_obs, next_obs, "final_obs", t, age)
        _close(env.sim["state"], np.stack([case.gym_state(g) for g in gyms]), "sim state", t, age)
        done = terminated | truncated
        _close(step.obs[~done], next_obs[~done], "obs", t, age[~done])
        ended["terminated"] += int(terminated.sum())
        ended["truncated"] += int(truncated.sum())
        # Where an episode ended, the port has reset itself from its own generator: check that it
        # did, then carry on from gymnasium's next start state, copied into those envs alone.
        if done.any():
            ids = np.flatnonzero(done)
            assert not torch.equal(step.obs[ids], step.final_obs[ids])
            for i in ids:
                next_obs[i] = gyms[i].reset()[0]
            states = torch.as_tensor(np.stack([case.gym_state(gyms[i]) for i in ids]))
            age[ids] = 0
            _close(env.set_state(states, torch.as_tensor(ids)), next_obs, "reset obs", t, age)
        obs = next_obs
    if name != "pendulum" and name != "pendulum-g":  # Pendulum has no terminal state
        assert ended["terminated"] > 0
    if name not in ("cartpole", "cartpole-sutton-barto", "point_mass"):  # these end before the limit
        assert ended["truncated"] > 0


def test_acrobot_wraps_several_turns() -> None:
    """From the velocity bounds one RK4 step turns a link by up to ~9.5*pi; the wrap must follow
    gymnasium's shift-by-2*pi loop all the way."""
    rng = np.random.default_rng(3)
    n = 200
    state = np.stack(
        [
            rng.uniform(-np.pi, np.pi, n),
            rng.uniform(-np.pi, np.pi, n),
            rng.choice([-4 * np.pi, 4 * np.pi], n),
            rng.choice([-9 * np.pi, 9 * np.pi], n),
        ],
        axis=1,
    )
    actions = rng.integers(0, 3, n)
    env = Acrobot(n)
    env.set_state(torch.as_tensor(state))
    env.step(torch.as_tensor(actions))
    reference: Any = gym.make("Acrobot-v1").unwrapped
    reference.reset(seed=0)
    for i in range(n):
        reference.state = state[i].copy()
        reference.step(int(actions[i]))
        assert np.allclose(env.sim["state"][i].numpy(), reference.state, rtol=0, atol=1e-12), i


@pytest.mark.parametrize(
    ("task", "make"), [("pendulum", Pendulum), ("acrobot", Acrobot), ("point_mass", None)]
)
def test_state_builders_agree(task: str, make: Callable[[int], TorchEnv] | None) -> None:
    module = _task_module(task, "state.py")
    env = (make or _point_mass)(16)
    rng = np.random.default_rng(1)
    # states all over the place (angles of several turns, positions across the arena), then a step
    env.set_state(torch.as_tensor(rng.uniform(-2, 2, (16, env.state_dim)) * (1 if make is None else 5)))
    policy = _random_policy(
        gym.spaces.Discrete(3) if make is Acrobot else gym.spaces.Box(-1, 1, (env.action.dim,))
    )
    step = env.step(torch.as_tensor(policy(rng, np.zeros((16, 1)))))
    batched = module.get_state_batched(env, step.final_obs)
    states = env.sim["state"].numpy()
    for i in range(16):
        one = module.get_state(SimpleNamespace(state=states[i]), step.final_obs[i].numpy().astype(np.float64))
        assert set(one) == set(batched)
        for key, value in one.items():
            assert batched[key].dtype == torch.float32
            assert batched[key].shape == (16,)
            assert batched[key][i].item() == pytest.approx(value, abs=1e-6), key


ALL: dict[str, Callable[..., TorchEnv]] = {**PORTS, "point_mass": _point_mass}


@pytest.mark.parametrize("name", ALL)
def test_reset_is_reproducible(name: str) -> None:
    env = ALL[name](64, seed=5)
    first = env.sim["state"].clone()
    assert torch.equal(env.reset(seed=5), env.set_state(first))
    assert torch.equal(env.sim["state"], first)
    assert not torch.equal(env.reset(seed=6), env.set_state(first))
    assert not torch.equal(env.reset(), env.reset(seed=6))  # a reset without seed goes on drawing


def test_reset_distributions() -> None:
    lo_hi = {
        "CartPole-v1": ([-0.05] * 4, [0.05] * 4),
        "Pendulum-v1": ([-np.pi, -1.0], [np.pi, 1.0]),
        "MountainCarContinuous-v0": ([-0.6, 0.0], [-0.4, 0.0]),
        "Acrobot-v1": ([-0.1] * 4, [0.1] * 4),
        "point_mass": ([-1.5, -0.2, 0.0, 0.0], [-1.1, 0.2, 0.0, 0.0]),
    }
    for name, (low, high) in lo_hi.items():
        state = ALL[name](4096).sim["state"]
        assert state.dtype == torch.float64
        assert (state >= torch.tensor(low, dtype=torch.float64)).all(), name
        assert (state <= torch.tensor(high, dtype=torch.float64)).all(), name
        spread = state.max(0).values - state.min(0).values
        assert (spread >= 0.95 * (torch.tensor(high) - torch.tensor(low))).all(), name


def test_time_limit_and_auto_reset() -> None:
    env = Pendulum(3, max_episode_steps=4)
    torque = torch.zeros(3, 1)
    flags = [env.step(torque).truncated.tolist() for _ in range(9)]
    assert flags == [[False] * 3] * 3 + [[True] * 3] + [[False] * 3] * 3 + [[True] * 3] + [[False] * 3]
    env.set_state(env.sim["state"][:1], torch.tensor([1]))
    assert [env.step(torque).truncated.tolist() for _ in range(3)][-1] == [True, False, True]


def test_registry_holds_the_ports() -> None:
    assert REGISTRY == PORTS


@pytest.mark.parametrize("gym_id", PORTS)
def test_specs_match_gymnasium(gym_id: str) -> None:
    assert REGISTRY[gym_id] is PORTS[gym_id]
    env, reference = PORTS[gym_id](2), gym.make(gym_id)
    assert isinstance(env, BatchedEnv)
    assert reference.observation_space.shape is not None
    assert env.max_episode_steps == gym.spec(gym_id).max_episode_steps
    assert (env.num_envs, env.obs_dim) == (2, reference.observation_space.shape[0])
    space = reference.action_space
    if isinstance(space, gym.spaces.Discrete):
        assert env.action.discrete == space.n
    else:
        assert isinstance(space, gym.spaces.Box)
        assert (env.action.dim, env.action.low, env.action.high) == (
            space.shape[0],
            tuple(space.low.tolist()),
            tuple(space.high.tolist()),
        )


def test_argument_errors() -> None:
    with pytest.raises(TypeError) as error:
        CartPole(2, sutton_barto=True, render_mode="human")
    assert str(error.value) == (
        "CartPole got unknown keyword argument(s) sutton_barto, render_mode; accepted: sutton_barto_reward"
    )
    with pytest.raises(TypeError) as error:
        Acrobot(2, g=9.8)
    assert str(error.value) == "Acrobot got unknown keyword argument(s) g; accepted: none"
    with pytest.raises(ValueError) as limit:
        _point_mass(2, max_episode_steps=None)
    assert str(limit.value) == (
        "PointMassBatched needs max_episode_steps >= 1 (the task's time limit), got None"
    )
    with pytest.raises(ValueError) as shape:
        Pendulum(2).set_state(torch.zeros(2, 3))
    assert str(shape.value) == "Pendulum.set_state: expected a state of shape [2, 2], got [2, 3]"
    assert MountainCarContinuous(2, goal_velocity=0.01).params == {"goal_velocity": 0.01}
    assert _point_mass(2, start_noise=0.0).sim["state"][:, 0].tolist() == [-1.3, -1.3]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", ALL)
def test_cuda_matches_cpu(name: str) -> None:
    cpu, cuda = ALL[name](256), ALL[name](256, device="cuda")
    cuda.set_state(cpu.sim["state"])
    rng = np.random.default_rng(2)
    ended = torch.zeros(256, dtype=torch.bool)  # compared until their first episode ends (resets differ)
    for _ in range(100):
        if cpu.action.discrete is not None:
            actions = torch.as_tensor(rng.integers(0, cpu.action.discrete, 256))
        else:
            actions = torch.as_tensor(rng.uniform(-1, 1, (256, cpu.action.dim)).astype(np.float32))
        a, b = cpu.step(actions), cuda.step(actions.cuda())
        assert b.obs.device == cuda.sim["state"].device == torch.device("cuda", 0)
        same = ~ended
        assert torch.allclose(a.final_obs[same], b.final_obs.cpu()[same], atol=ATOL)
        assert torch.allclose(a.reward[same], b.reward.cpu()[same], atol=ATOL)
        assert torch.equal(a.terminated[same], b.terminated.cpu()[same])
        assert torch.equal(a.truncated[same], b.truncated.cpu()[same])
        ended |= a.terminated | a.truncated
