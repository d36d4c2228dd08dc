"""Gymnasium's classic-control environments ported to torch: N copies stepped as tensors on one device.

`CartPole`, `Pendulum`, `MountainCarContinuous` and `Acrobot` reproduce CartPole-v1, Pendulum-v1,
MountainCarContinuous-v0 and Acrobot-v1 of gymnasium 1.x step for step: the same dynamics
(in float64, with the float32 roundings gymnasium's numpy arithmetic makes), observations,
rewards, termination, time limits, action clipping and reset distributions. Only the random
numbers differ: resets draw from a `torch.Generator` seeded by `seed`.

`TorchEnv` holds what every such port shares (keyword checking, the reset generator, the time
limit and automatic reset), so a task folder can port its own environment by writing three
methods (see tasks/point_mass/batched.py).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, ClassVar

import torch

from eureka.training.sim.base import ActionSpec, BatchedEnv, Step

F64 = torch.float64


def f32(value: float) -> float:
    """`value` rounded to the nearest float32: what numpy compares and computes with when a
    python float meets a float32 array (NEP 50)."""
    return float(torch.tensor(value, dtype=torch.float32))


def round32(x: torch.Tensor) -> torch.Tensor:
    """`x` rounded to float32 and kept as float64, like a float64 value stored in a float32 array."""
    return x.to(torch.float32).to(F64)


class TorchEnv(BatchedEnv):
    """A `BatchedEnv` whose state is one float64 tensor `[N, k]` (`sim["state"]`).

    A subclass sets `obs_dim`, `action`, `state_dim`, `default_max_episode_steps` and `defaults`
    (its constructor keywords and their default values, found in `self.params`), and writes
    `_sample` (reset states), `_observe` (observations) and `_dynamics` (one step). This class
    checks the keywords, keeps the per-env step counters for the time limit and resets the
    environments whose episode ended.
    """

    graphable = True

    state_dim: ClassVar[int]
    """Size `k` of one environment's state."""
    default_max_episode_steps: ClassVar[int | None]
    """The registered time limit; None when the caller must give one."""
    defaults: ClassVar[dict[str, Any]] = {}
    """The constructor keywords the environment accepts, with their default values."""

    def __init__(
        self,
        num_envs: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
        max_episode_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        unknown = [key for key in kwargs if key not in self.defaults]
        if unknown:
            accepted = ", ".join(self.defaults) or "none"
            raise TypeError(
                f"{name} got unknown keyword argument(s) {', '.join(unknown)}; accepted: {accepted}"
            )
        limit = self.default_max_episode_steps if max_episode_steps is None else max_episode_steps
        if limit is None or limit < 1:
            raise ValueError(f"{name} needs max_episode_steps >= 1 (the task's time limit), got {limit}")
        self.params: dict[str, Any] = {**self.defaults, **kwargs}
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.max_episode_steps = limit
        self._generator = torch.Generator(device=self.device)
        self.generators = (self._generator,)
        self._elapsed = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self._state = torch.zeros(num_envs, self.state_dim, dtype=F64, device=self.device)
        self.reset(seed)

    @abstractmethod
    def _sample(self, n: int) -> torch.Tensor:
        """`n` reset states `[n, k]` float64, drawn with `self._generator`."""

    @abstractmethod
    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        """The observations `[N, obs_dim]` float32 of the states `[N, k]`."""

    @abstractmethod
    def _dynamics(
        self, state: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step from `state`: the next state `[N, k]` float64, the reward `[N]` (any float
        dtype) and `terminated` `[N]` bool. `self._elapsed` still counts the steps before this one."""

    def _uniform(self, low: float, high: float, shape: tuple[int, ...]) -> torch.Tensor:
        """Uniform float64 samples in [low, high), computed like numpy's `Generator.uniform`."""
        u = torch.rand(shape, generator=self._generator, dtype=F64, device=self.device)
        return low + (high - low) * u

    def reset(self, seed: int | None = None) -> torch.Tensor:
        if seed is not None:
            self._generator.manual_seed(seed)
        return self.set_state(self._sample(self.num_envs))

    def set_state(self, state: torch.Tensor, env_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Set the state of every environment (`state` `[N, k]`, laid out as `sim["state"]`), or
        only of the environments `env_ids` (`state` then `[len(env_ids), k]`), whose episodes
        restart (their step counters go back to 0). Returns the observations of all environments."""
        state = state.to(device=self.device, dtype=F64)
        rows = self.num_envs if env_ids is None else len(env_ids)
        if state.shape != (rows, self.state_dim):
            raise ValueError(
                f"{type(self).__name__}.set_state: expected a state of shape {[rows, self.state_dim]}, "
                f"got {list(state.shape)}"
            )
        if env_ids is None:
            self._state.copy_(state)
            self._elapsed.zero_()
        else:
            self._state[env_ids] = state
            self._elapsed[env_ids] = 0
        self.sim = self.sim_next = {"state": self._state.clone()}
        return self._observe(self._state)

    def step(self, actions: torch.Tensor) -> Step:
        state, reward, terminated = self._dynamics(self._state, actions)
        self._elapsed += 1
        truncated = (self._elapsed >= self.max_episode_steps) & ~terminated
        done = terminated | truncated
        self.sim = {"state": state}
        # Every env draws a reset state so that no count of finished envs has to leave the device.
        # `_state` and `_elapsed` are updated in place: a captured CUDA graph reads them where
        # they were at capture.
        torch.where(done[:, None], self._sample(self.num_envs), state, out=self._state)
        self._elapsed.masked_fill_(done, 0)
        self.sim_next = {"state": self._state}
        final_obs = self._observe(state)
        obs = torch.where(done[:, None], self._observe(self._state), final_obs)
        return Step(
            obs=obs,
            reward=reward.to(torch.float32),
            terminated=terminated,
            truncated=truncated,
            final_obs=final_obs,
        )


class CartPole(TorchEnv):
    """CartPole-v1. `sim["state"]` `[N, 4]`: x, x_dot, theta, theta_dot (gymnasium's `env.state`).
    Actions int64 `[N]`: 0 pushes left, 1 pushes right. Keyword: `sutton_barto_reward`."""

    obs_dim = 4
    action = ActionSpec(discrete=2)
    state_dim = 4
    default_max_episode_steps = 500
    defaults: ClassVar[dict[str, Any]] = {"sutton_barto_reward": False}

    GRAVITY = 9.8
    MASSCART = 1.0
    MASSPOLE = 0.1
    TOTAL_MASS = MASSPOLE + MASSCART
    LENGTH = 0.5  # half the pole's length
    POLEMASS_LENGTH = MASSPOLE * LENGTH
    FORCE_MAG = 10.0
    TAU = 0.02
    THETA_THRESHOLD = 12 * 2 * math.pi / 360
    X_THRESHOLD = 2.4

    def _sample(self, n: int) -> torch.Tensor:
        return self._uniform(-0.05, 0.05, (n, 4))

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        return state.to(torch.float32)

    def _dynamics(
        self, state: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, x_dot, theta, theta_dot = state.unbind(1)
        force = torch.where(actions == 1, self.FORCE_MAG, -self.FORCE_MAG).to(F64)
        costheta = torch.cos(theta)
        sintheta = torch.sin(theta)
        temp = (force + self.POLEMASS_LENGTH * theta_dot.square() * sintheta) / self.TOTAL_MASS
        thetaacc = (self.GRAVITY * sintheta - costheta * temp) / (
            self.LENGTH * (4.0 / 3.0 - self.MASSPOLE * costheta.square() / self.TOTAL_MASS)
        )
        xacc = temp - self.POLEMASS_LENGTH * thetaacc * costheta / self.TOTAL_MASS
        # gymnasium's default "euler" integrator
        x = x + self.TAU * x_dot
        x_dot = x_dot + self.TAU * xacc
        theta = theta + self.TAU * theta_dot
        theta_dot = theta_dot + self.TAU * thetaacc
        terminated = (
            (x < -self.X_THRESHOLD)
            | (x > self.X_THRESHOLD)
            | (theta < -self.THETA_THRESHOLD)
            | (theta > self.THETA_THRESHOLD)
        )
        reward = -terminated.to(F64) if self.params["sutton_barto_reward"] else torch.ones_like(x)
        return torch.stack((x, x_dot, theta, theta_dot), dim=1), reward, terminated


class Pendulum(TorchEnv):
    """Pendulum-v1. `sim["state"]` `[N, 2]`: theta (unwrapped, 0 upright), theta_dot.
    Actions float32 `[N, 1]`: torque, clipped to [-2, 2]. Keyword: `g` (gravity)."""

    obs_dim = 3
    action = ActionSpec(discrete=None, dim=1, low=(-2.0,), high=(2.0,))
    state_dim = 2
    default_max_episode_steps = 200
    defaults: ClassVar[dict[str, Any]] = {"g": 10.0}

    MAX_SPEED = 8
    MAX_TORQUE = 2.0
    DT = 0.05
    M = 1.0
    L = 1.0

    def _sample(self, n: int) -> torch.Tensor:
        theta = self._uniform(-math.pi, math.pi, (n,))
        return torch.stack((theta, self._uniform(-1.0, 1.0, (n,))), dim=1)

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        theta, theta_dot = state.unbind(1)
        return torch.stack((torch.cos(theta), torch.sin(theta), theta_dot), dim=1).to(torch.float32)

    def _dynamics(
        self, state: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        th, thdot = state.unbind(1)
        g, m, l, dt = self.params["g"], self.M, self.L, self.DT  # noqa: E741 - gymnasium's names
        # The torque stays float32 as in gymnasium, so the terms made of it alone round like its numpy.
        u = actions[:, 0].to(torch.float32).clamp(-self.MAX_TORQUE, self.MAX_TORQUE)
        angle = torch.remainder(th + math.pi, 2 * math.pi) - math.pi
        costs = angle.square() + 0.1 * thdot.square() + (0.001 * u.square()).to(F64)
        newthdot = thdot + (3 * g / (2 * l) * torch.sin(th) + (3.0 / (m * l**2) * u).to(F64)) * dt
        newthdot = newthdot.clamp(-self.MAX_SPEED, self.MAX_SPEED)
        newth = th + newthdot * dt
        terminated = torch.zeros_like(th, dtype=torch.bool)
        return torch.stack((newth, newthdot), dim=1), -costs, terminated


class MountainCarContinuous(TorchEnv):
    """MountainCarContinuous-v0. `sim["state"]` `[N, 2]`: position, velocity.
    Actions float32 `[N, 1]`: force, clipped to [-1, 1]. Keyword: `goal_velocity`.

    gymnasium keeps this state as float32 after a step (float64 only as drawn at reset), and its
    numpy arithmetic on it rounds to float32; the step below makes the same roundings."""

    obs_dim = 2
    action = ActionSpec(discrete=None, dim=1, low=(-1.0,), high=(1.0,))
    state_dim = 2
    default_max_episode_steps = 999
    defaults: ClassVar[dict[str, Any]] = {"goal_velocity": 0}

    MIN_ACTION = -1.0
    MAX_ACTION = 1.0
    MIN_POSITION = f32(-1.2)
    MAX_POSITION = f32(0.6)
    MAX_SPEED = f32(0.07)
    GOAL_POSITION = f32(0.45)
    POWER = 0.0015

    def _sample(self, n: int) -> torch.Tensor:
        position = self._uniform(-0.6, -0.4, (n,))
        return torch.stack((position, torch.zeros_like(position)), dim=1)

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        return state.to(torch.float32)

    def _dynamics(
        self, state: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        position, velocity = state.unbind(1)
        action = actions[:, 0].to(torch.float32)
        force = action.clamp(self.MIN_ACTION, self.MAX_ACTION)
        # 3 * position is float32 arithmetic, except on the first step where the state is still float64
        three_x = torch.where(self._elapsed == 0, 3 * position, round32(3 * position))
        hill = (0.0025 * torch.cos(three_x)).to(torch.float32)
        velocity = round32(velocity + (force * self.POWER - hill).to(F64))
        velocity = velocity.clamp(-self.MAX_SPEED, self.MAX_SPEED)
        position = round32(position + velocity).clamp(self.MIN_POSITION, self.MAX_POSITION)
        velocity = velocity.masked_fill((position == self.MIN_POSITION) & (velocity < 0), 0.0)
        terminated = (position >= self.GOAL_POSITION) & (velocity >= f32(self.params["goal_velocity"]))
        reward = 100.0 * terminated.to(F64) - action.to(F64).square() * 0.1
        return torch.stack((position, velocity), dim=1), reward, terminated


class Acrobot(TorchEnv):
    """Acrobot-v1 ("book" dynamics, no torque noise, RK4 over one 0.2 s step).
    `sim["state"]` `[N, 4]`: theta1, theta2 (wrapped to [-pi, pi]), dtheta1, dtheta2.
    Actions int64 `[N]`: 0, 1, 2 apply -1, 0, +1 N·m at the elbow. No keywords."""

    obs_dim = 6
    action = ActionSpec(discrete=3)
    state_dim = 4
    default_max_episode_steps = 500
    defaults: ClassVar[dict[str, Any]] = {}

    DT = 0.2
    LINK_LENGTH_1 = 1.0
    LINK_MASS_1 = 1.0
    LINK_MASS_2 = 1.0
    LINK_COM_POS_1 = 0.5
    LINK_COM_POS_2 = 0.5
    LINK_MOI = 1.0
    MAX_VEL_1 = 4 * math.pi
    MAX_VEL_2 = 9 * math.pi

    def _sample(self, n: int) -> torch.Tensor:
        return round32(self._uniform(-0.1, 0.1, (n, 4)))  # gymnasium draws float32 reset states

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        s0, s1, s2, s3 = state.unbind(1)
        obs = (torch.cos(s0), torch.sin(s0), torch.cos(s1), torch.sin(s1), s2, s3)
        return torch.stack(obs, dim=1).to(torch.float32)

    def _dsdt(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """gymnasium's `AcrobotEnv._dsdt` ("book"), term for term in the same order (the cosine and
        sine of theta2 computed once)."""
        m1, m2 = self.LINK_MASS_1, self.LINK_MASS_2
        l1 = self.LINK_LENGTH_1
        lc1, lc2 = self.LINK_COM_POS_1, self.LINK_COM_POS_2
        I1 = I2 = self.LINK_MOI
        g = 9.8
        theta1, theta2, dtheta1, dtheta2 = s.unbind(1)
        cos2, sin2 = torch.cos(theta2), torch.sin(theta2)
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * cos2) + I1 + I2
        d2 = m2 * (lc2**2 + l1 * lc2 * cos2) + I2
        phi2 = m2 * lc2 * g * torch.cos(theta1 + theta2 - math.pi / 2.0)
        phi1 = (
            -m2 * l1 * lc2 * dtheta2**2 * sin2
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin2
            + (m1 * lc1 + m2 * l1) * g * torch.cos(theta1 - math.pi / 2)
            + phi2
        )
        ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * sin2 - phi2) / (
            m2 * lc2**2 + I2 - d2**2 / d1
        )
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return torch.stack((dtheta1, dtheta2, ddtheta1, ddtheta2), dim=1)

    def _dynamics(
        self, state: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        torque = actions.to(F64) - 1.0  # AVAIL_TORQUE[a] for a in 0, 1, 2
        # gymnasium's rk4 over t = [0, dt]; the torque it carries in the state has derivative 0
        dt = self.DT
        dt2 = dt / 2.0
        k1 = self._dsdt(state, torque)
        k2 = self._dsdt(state + dt2 * k1, torque)
        k3 = self._dsdt(state + dt2 * k2, torque)
        k4 = self._dsdt(state + dt * k3, torque)
        ns = state + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        dtheta1 = ns[:, 2].clamp(-self.MAX_VEL_1, self.MAX_VEL_1)
        dtheta2 = ns[:, 3].clamp(-self.MAX_VEL_2, self.MAX_VEL_2)
        ns = torch.cat((_wrap(ns[:, :2]), dtheta1[:, None], dtheta2[:, None]), dim=1)
        terminated = -torch.cos(ns[:, 0]) - torch.cos(ns[:, 1] + ns[:, 0]) > 1.0
        reward = terminated.to(F64) - 1.0
        return ns, reward, terminated


def _wrap(x: torch.Tensor) -> torch.Tensor:
    """gymnasium's `wrap(x, -pi, pi)`: shift by 2*pi until inside, one shift at a time so that it
    rounds alike. One RK4 step can turn a link by several turns (angles up to 6*pi come out in
    ordinary play, 9.5*pi from states at the velocity bounds), so up to 5 shifts are made each
    way, and anything still outside is wrapped by a remainder."""
    for _ in range(5):
        x = torch.where(x > math.pi, x - 2 * math.pi, x)
    for _ in range(5):
        x = torch.where(x < -math.pi, x + 2 * math.pi, x)
    outside = (x > math.pi) | (x < -math.pi)
    return torch.where(outside, torch.remainder(x + math.pi, 2 * math.pi) - math.pi, x)


REGISTRY: dict[str, type[BatchedEnv]] = {
    "CartPole-v1": CartPole,
    "Pendulum-v1": Pendulum,
    "MountainCarContinuous-v0": MountainCarContinuous,
    "Acrobot-v1": Acrobot,
}
"""The torch ports by gymnasium id."""
