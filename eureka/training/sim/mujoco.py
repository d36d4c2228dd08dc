"""Threaded MuJoCo backend: gymnasium's v5 MuJoCo environments (and gymnasium-robotics' PointMaze,
FetchReach and FetchPush) as N MjData stepped in parallel."""

from __future__ import annotations

import inspect
import itertools
import queue
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
import torch

from eureka.errors import did_you_mean
from eureka.training.envs import gym_make, register_robotics
from eureka.training.sim.base import ActionSpec, BatchedEnv, Step

Snapshot = dict[str, np.ndarray]
"""MjData arrays of several environments, batch first: `qpos` `[N, nq]`, `xpos` `[N, nbody, 3]`, ..."""

SIM_FIELDS = ("qpos", "qvel", "xpos", "site_xpos")
"""What `sim` holds by default."""
_POST_CONSTRAINT_FIELDS = ("cacc", "cfrc_int", "cfrc_ext")
"""MjData arrays that only `mj_rnePostConstraint` fills."""


# ---------------------------------------------------------------- per-environment ports


class _Port(ABC):
    """One gymnasium v5 environment's observation, reward, termination and reset noise, computed
    for a batch from MjData arrays read right after `mj_step` (no extra `mj_forward`, as in
    gymnasium: `xpos`, `site_xpos` and `qfrc_constraint` are those of the last substep's start)."""

    reads: ClassVar[tuple[str, ...]] = ()
    """MjData arrays needed after a step besides `qpos` and `qvel`."""
    post_constraint: ClassVar[bool] = False
    """Call `mj_rnePostConstraint` after stepping (it fills `cfrc_ext`; gymnasium always calls it,
    but only ports that read contact forces need it)."""
    extras: ClassVar[tuple[str, ...]] = ()
    """Per-environment arrays of an episode that MjData does not hold (PointMaze's `goal`): drawn
    by `sample_state`, carried from step to step in the snapshots, shown in `sim`."""
    qvel_limit: ClassVar[float | None] = None
    """Clip qvel to plus or minus this before every step (PointMaze's `_clip_velocity`; its
    `set_state` also calls `mj_forward`, which `mj_step` repeats: left out, the states stay
    bit-equal)."""

    derived: int = 0
    """Size of a per-environment vector `derive` computes in the stepping thread after each step
    and reset (Fetch's site velocities, which need MuJoCo's Jacobians), kept as `derived`."""

    def __init__(self, env: Any, options: dict[str, Any]) -> None:
        physics = self.physics(env)
        self.model = physics.model
        self.init_qpos: np.ndarray = physics.init_qpos.copy()
        self.init_qvel: np.ndarray = physics.init_qvel.copy()
        self.dt = float(physics.dt)
        self.frame_skip = int(physics.frame_skip)
        self.obs_dim = int(gym.spaces.flatdim(env.observation_space))
        """Flat observation size (a dict observation flattened as `FlattenObservation` does)."""
        self.options = options

    @staticmethod
    def physics(env: Any) -> Any:
        """The gymnasium `MujocoEnv` that holds the model (`env` itself, or the one it wraps)."""
        return env

    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of an action: the actuators' ctrlrange."""
        low, high = self.model.actuator_ctrlrange.astype(np.float32).T
        return low, high

    def control(self, data: Any, action: np.ndarray) -> None:
        """Apply one environment's action before it steps (in its stepping thread)."""
        data.ctrl[:] = action

    def settle(self, data: Any) -> None:
        """Anything gymnasium does to one environment right after `mj_step` (its stepping thread)."""
        return

    def derive(self, data: Any, out: np.ndarray) -> None:
        """Fill `out` `[derived]` from one environment's MjData (its stepping thread)."""
        return

    @abstractmethod
    def observe(self, s: Snapshot) -> np.ndarray:
        """Observations `[N, obs_dim]` (float64)."""

    @abstractmethod
    def reward(self, before: Snapshot, after: Snapshot, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(reward `[N]` float64, terminated `[N]` bool) of a step from `before` to `after`."""

    @abstractmethod
    def sample_reset(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The (qpos, qvel) of a new episode, drawn as gymnasium's `reset_model` draws them."""

    def sample_state(self, rng: np.random.Generator) -> Snapshot:
        """A new episode's `qpos`, `qvel` and `extras`, drawn in gymnasium's order."""
        qpos, qvel = self.sample_reset(rng)
        return {"qpos": qpos, "qvel": qvel}

    def advance(self, s: Snapshot, rngs: Sequence[np.random.Generator]) -> Snapshot:
        """The state the next step starts from, given the state a step reached (before resets):
        `s` itself, or a copy with new `extras` (never written in place: `sim` shares `s`)."""
        return s

    def _uniform_reset(self, rng: np.random.Generator, noise: float) -> tuple[np.ndarray, np.ndarray]:
        qpos = self.init_qpos + rng.uniform(low=-noise, high=noise, size=self.model.nq)
        qvel = self.init_qvel + rng.uniform(low=-noise, high=noise, size=self.model.nv)
        return qpos, qvel

    def _normal_reset(self, rng: np.random.Generator, noise: float) -> tuple[np.ndarray, np.ndarray]:
        qpos = self.init_qpos + rng.uniform(low=-noise, high=noise, size=self.model.nq)
        qvel = self.init_qvel + noise * rng.standard_normal(self.model.nv)
        return qpos, qvel


def _x_velocity(port: _Port, before: Snapshot, after: Snapshot) -> np.ndarray:
    return (after["qpos"][:, 0] - before["qpos"][:, 0]) / port.dt


class _HalfCheetah(_Port):
    def __init__(self, env: Any, options: dict[str, Any]) -> None:
        super().__init__(env, options)
        self.forward_weight = options["forward_reward_weight"]
        self.ctrl_weight = options["ctrl_cost_weight"]
        self.noise = options["reset_noise_scale"]
        self.skip = 1 if options["exclude_current_positions_from_observation"] else 0

    def observe(self, s: Snapshot) -> np.ndarray:
        return np.concatenate((s["qpos"][:, self.skip :], s["qvel"]), axis=1)

    def reward(self, before: Snapshot, after: Snapshot, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        forward = self.forward_weight * _x_velocity(self, before, after)
        ctrl_cost = self.ctrl_weight * np.square(action).sum(axis=1)
        return forward - ctrl_cost, np.zeros(len(action), dtype=bool)

    def sample_reset(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self._normal_reset(rng, self.noise)


class _Hopper(_Port):
    check_state: ClassVar[bool] = True
    """Hopper also requires every qpos[2:] and qvel inside `healthy_state_range`; Walker2d not."""

    def __init__(self, env: Any, options: dict[str, Any]) -> None:
        super().__init__(env, options)
        self.forward_weight = options["forward_reward_weight"]
        self.ctrl_weight = options["ctrl_cost_weight"]
        self.healthy_reward = options["healthy_reward"]
        self.terminate = bool(options["terminate_when_unhealthy"])
        self.z_range = options["healthy_z_range"]
        self.angle_range = options["healthy_angle_range"]
        self.state_range = options["healthy_state_range"] if self.check_state else None
        self.noise = options["reset_noise_scale"]
        self.skip = 1 if options["exclude_current_positions_from_observation"] else 0

    def observe(self, s: Snapshot) -> np.ndarray:
        return np.concatenate((s["qpos"][:, self.skip :], np.clip(s["qvel"], -10, 10)), axis=1)

    def healthy(self, s: Snapshot) -> np.ndarray:
        z, angle = s["qpos"][:, 1], s["qpos"][:, 2]
        (min_z, max_z), (min_angle, max_angle) = self.z_range, self.angle_range
        ok = (min_z < z) & (z < max_z) & (min_angle < angle) & (angle < max_angle)
        if self.state_range is not None:
            state = np.concatenate((s["qpos"], s["qvel"]), axis=1)[:, 2:]
            ok &= ((self.state_range[0] < state) & (state < self.state_range[1])).all(axis=1)
        return ok

    def reward(self, before: Snapshot, after: Snapshot, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        healthy = self.healthy(after)
        rewards = self.forward_weight * _x_velocity(self, before, after) + healthy * self.healthy_reward
        ctrl_cost = self.ctrl_weight * np.square(action).sum(axis=1)
        return rewards - ctrl_cost, ~healthy & self.terminate

    def sample_reset(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self._uniform_reset(rng, self.noise)


class _Walker2d(_Hopper):
    check_state = False


class _Ant(_Port):
    reads = ("xpos", "cfrc_ext")
    post_constraint = True

    def __init__(self, env: Any, options: dict[str, Any]) -> None:
        super().__init__(env, options)
        self.forward_weight = options["forward_reward_weight"]
        self.ctrl_weight = options["ctrl_cost_weight"]
        self.contact_weight = options["contact_cost_weight"]
        self.healthy_reward = options["healthy_reward"]
        self.terminate = bool(options["terminate_when_unhealthy"])
        self.z_range = options["healthy_z_range"]
        self.force_range = options["contact_force_range"]
        self.noise = options["reset_noise_scale"]
        self.skip = 2 if options["exclude_current_positions_from_observation"] else 0
        self.include_forces = bool(options["include_cfrc_ext_in_observation"])
        self.main_body = int(env.data.body(options["main_body"]).id)

    def contact_forces(self, s: Snapshot) -> np.ndarray:
        return np.clip(s["cfrc_ext"], self.force_range[0], self.force_range[1])

    def observe(self, s: Snapshot) -> np.ndarray:
        parts = [s["qpos"][:, self.skip :], s["qvel"]]
        if self.include_forces:
            parts.append(self.contact_forces(s)[:, 1:].reshape(len(s["qpos"]), -1))
        return np.concatenate(parts, axis=1)

    def reward(self, before: Snapshot, after: Snapshot, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xy_before = before["xpos"][:, self.main_body, :2]
        xy_after = after["xpos"][:, self.main_body, :2]
        x_velocity = ((xy_after - xy_before) / self.dt)[:, 0]
        z = after["qpos"][:, 2]
        finite = np.isfinite(after["qpos"]).all(axis=1) & np.isfinite(after["qvel"]).all(axis=1)
        healthy = finite & (self.z_range[0] <= z) & (z <= self.z_range[1])
        rewards = x_velocity * self.forward_weight + healthy * self.healthy_reward
        ctrl_cost = self.ctrl_weight * np.square(action).sum(axis=1)
        forces = self.contact_forces(after)
        contact_cost = self.contact_weight * np.square(forces).reshape(len(forces), -1).sum(axis=1)
        return rewards - (ctrl_cost + contact_cost), ~healthy & self.terminate

    def sample_reset(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self._normal_reset(rng, self.noise)


class _Reacher(_Port):
    reads = ("xpos",)

    def __init__(self, env: Any, options: dict[str, Any]) -> None:
        super().__init__(env, options)
        self.dist_weight = options["reward_dist_weight"]
        self.control_weight = options["reward_control_weight"]
        self.fingertip = int(env.data.body("fingertip").id)
        self.target = int(env.data.body("target").id)

    def _to_target(self, s: Snapshot) -> np.ndarray:
        return s["xpos"][:, self.fingertip] - s["xpos"][:, self.target]

    def observe(self, s: Snapshot) -> np.ndarray:
        theta = s["qpos"][:, :2]
        parts = (np.cos(theta), np.sin(theta), s["qpos"][:, 2:], s["qvel"][:, :2], self._to_target(s)[:, :2])
        return np.concatenate(parts, axis=1)

    def reward(self, before: Snapshot, after: Snapshot, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reward_dist = -np.linalg.norm(self._to_target(after), axis=1) * self.dist_weight
        reward_ctrl = -np.square(action).sum(axis=1) * self.control_weight
        return reward_dist + reward_ctrl, np.zeros(len(action), dtype=bool)

    def sample_reset(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        qpos = rng.uniform(low=-0.1, high=0.1, size=self.model.nq) + self.init_qpos
        while True:
            goal = rng.uniform(low=-0.2, high=0.2, size=2)
            if np.linalg.norm(goal) < 0.2:
                break
        qpos[-2:] = goal
        qvel = self.init_qvel + rng.uniform(low=-0.005, high=0.005, size=self.model.nv)
        qvel[-2:] = 0
        return qpos, qvel


class _InvertedDoublePendulum(_Port):
    reads = ("site_xpos", "qfrc_constraint")

    def __init__(self, env: Any, options: dict[str, Any]) -> None:
        super().__init__(env, options)
        self.healthy_reward = options["healthy_reward"]
        self.noise = options["reset_noise_scale"]

    def observe(self, s: Snapshot) -> np.ndarray:
        qpos = s["qpos"]
        parts = (
            qpos[:, :1],
            np.sin(qpos[:, 1:]),
            np.cos(qpos[:, 1:]),
            np.clip(s["qvel"], -10, 10),
            np.clip(s["qfrc_constraint"][:, :1], -10, 10),
        )
        return np.concatenate(parts, axis=1)

    def reward(self, before: Snapshot, after: Snapshot, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = after["site_xpos"][:, 0, 0], after["site_xpos"][:, 0, 2]
        terminated = y <= 1
        v1, v2 = after["qvel"][:, 1], after["qvel"][:, 2]
        dist_penalty = 0.01 * x**2 + (y - 2) ** 2
        vel_penalty = 1e-3 * v1**2 + 5e-3 * v2**2
        alive_bonus = self.healthy_reward * ~terminated
        return alive_bonus - dist_penalty - vel_penalty, terminated

    def sample_reset(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        qpos = self.init_qpos + rng.uniform(low=-self.noise, high=self.noise, size=self.model.nq)
        qvel = self.init_qvel + rng.standard_normal(self.model.nv) * self.noise
        return qpos, qvel


class _Pusher(_Port):
    reads = ("xpos",)

    def __init__(self, env: Any, options: dict[str, Any]) -> None:
        super().__init__(env, options)
        self.near_weight = options["reward_near_weight"]
        self.dist_weight = options["reward_dist_weight"]
        self.control_weight = options["reward_control_weight"]
        self.tips = int(env.data.body("tips_arm").id)
        self.object = int(env.data.body("object").id)
        self.goal = int(env.data.body("goal").id)

    def observe(self, s: Snapshot) -> np.ndarray:
        xpos = s["xpos"]
        parts = (
            s["qpos"][:, :7],
            s["qvel"][:, :7],
            xpos[:, self.tips],
            xpos[:, self.object],
            xpos[:, self.goal],
        )
        return np.concatenate(parts, axis=1)

    def reward(self, before: Snapshot, after: Snapshot, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xpos = after["xpos"]
        near = -np.linalg.norm(xpos[:, self.object] - xpos[:, self.tips], axis=1) * self.near_weight
        dist = -np.linalg.norm(xpos[:, self.object] - xpos[:, self.goal], axis=1) * self.dist_weight
        ctrl = -np.square(action).sum(axis=1) * self.control_weight
        return dist + ctrl + near, np.zeros(len(action), dtype=bool)

    def sample_reset(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        qpos = self.init_qpos.copy()
        goal = np.zeros(2)
        while True:
            cylinder = np.concatenate(
                [rng.uniform(low=-0.3, high=0, size=1), rng.uniform(low=-0.2, high=0.2, size=1)]
            )
            if np.linalg.norm(cylinder - goal) > 0.17:
                break
        qpos[-4:-2] = cylinder
        qpos[-2:] = goal
        qvel = self.init_qvel + rng.uniform(low=-0.005, high=0.005, size=self.model.nv)
        qvel[-4:] = 0
        return qpos, qvel


class _GoalPort(_Port):
    """A port whose episodes carry a goal besides MjData (`extras`): `sample_state` draws qpos,
    qvel and the goal together, in gymnasium's order."""

    extras = ("goal",)

    @abstractmethod
    def sample_state(self, rng: np.random.Generator) -> Snapshot: ...

    def sample_reset(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        state = self.sample_state(rng)
        return state["qpos"], state["qvel"]


class _PointMaze(_GoalPort):
    """gymnasium-robotics' PointMaze (v3, any maze map): a ball pushed by a force along x and y
    toward a goal in a maze of walls. The dict observation is flattened in key order as
    `FlattenObservation` does: achieved_goal (the ball's x, y), desired_goal, observation (qpos,
    qvel). Actions are clamped to [-1, 1] by the actuators' ctrlrange (gymnasium clips them
    first: the same values); velocities are clipped to 5 before each step."""

    qvel_limit = 5.0
    SUCCESS = 0.45
    """Goal distance that counts as reached (gymnasium-robotics' compute_terminated)."""

    @staticmethod
    def physics(env: Any) -> Any:
        return env.point_env

    def __init__(self, env: Any, options: dict[str, Any]) -> None:
        super().__init__(env, options)
        maze = env.maze
        self.goals = np.array(maze.unique_goal_locations, dtype=np.float64).reshape(-1, 2)
        self.starts = np.array(maze.unique_reset_locations, dtype=np.float64).reshape(-1, 2)
        self.scaling = float(maze.maze_size_scaling)
        self.noise = float(env.position_noise_range)
        self.dense = env.reward_type == "dense"
        self.continuing = bool(env.continuing_task)
        self.reset_target = bool(env.reset_target) and self.continuing and len(self.goals) > 1

    def _noisy(self, xy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise_x = rng.uniform(low=-self.noise, high=self.noise) * self.scaling
        noise_y = rng.uniform(low=-self.noise, high=self.noise) * self.scaling
        return xy + np.array([noise_x, noise_y])

    def _goal(self, rng: np.random.Generator) -> np.ndarray:
        return self._noisy(self.goals[rng.integers(low=0, high=len(self.goals))], rng)

    def sample_state(self, rng: np.random.Generator) -> Snapshot:
        goal = self._goal(rng)
        start = goal.copy()
        while np.linalg.norm(start - goal) <= 0.5 * self.scaling:
            start = self.starts[rng.integers(low=0, high=len(self.starts))]
        qpos = self.init_qpos.copy()
        qpos[:2] = self._noisy(start, rng)
        return {"qpos": qpos, "qvel": self.init_qvel.copy(), "goal": goal}

    def distance(self, s: Snapshot) -> np.ndarray:
        return np.linalg.norm(s["qpos"][:, :2] - s["goal"], axis=1)

    def observe(self, s: Snapshot) -> np.ndarray:
        return np.concatenate((s["qpos"][:, :2], s["goal"], s["qpos"], s["qvel"]), axis=1)

    def reward(self, before: Snapshot, after: Snapshot, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        distance = self.distance(after)
        reached = distance <= self.SUCCESS
        reward = np.exp(-distance) if self.dense else reached.astype(np.float64)
        return reward, reached & (not self.continuing)

    def advance(self, s: Snapshot, rngs: Sequence[np.random.Generator]) -> Snapshot:
        """A continuing task with `reset_target` draws a new goal (until one is out of reach)
        wherever the ball reached its goal, as gymnasium-robotics' `update_goal`."""
        if not self.reset_target:
            return s
        reached = np.flatnonzero(self.distance(s) <= self.SUCCESS)
        if not len(reached):
            return s
        goal = s["goal"].copy()
        for i in reached.tolist():
            while np.linalg.norm(s["qpos"][i, :2] - goal[i]) <= self.SUCCESS:
                goal[i] = self._goal(rngs[i])
        return {**s, "goal": goal}


class _Fetch(_GoalPort):
    """gymnasium-robotics' Fetch tasks (FetchReach, FetchPush, and subclasses that only change
    the goal sampler or the block's range, `obj_range`): the gripper follows a mocap body moved
    5 cm per unit of action, `n_substeps` mj_steps per step, fingers held shut (`block_gripper`)
    by zeroing their joints and `mj_forward` after each step. The dict observation is flattened
    in key order: achieved_goal, desired_goal, observation. Goals are drawn by the environment's
    own `_sample_goal` with the port's generator, its state set to the drawn reset first, so a
    task's env.py override is honoured, one placing the goal from the block too."""

    reads = ("site_xpos", "site_xmat", "xpos", "xquat")
    ROTATION = np.array([1.0, 0.0, 1.0, 0.0])
    """Fixed end-effector quaternion delta added to the mocap's (gymnasium-robotics' rot_ctrl)."""

    @staticmethod
    def physics(env: Any) -> Any:
        return SimpleNamespace(
            model=env.model,
            init_qpos=env.initial_qpos,
            init_qvel=env.initial_qvel,
            dt=env.dt,
            frame_skip=env.n_substeps,
        )

    def __init__(self, env: Any, options: dict[str, Any]) -> None:
        super().__init__(env, options)
        self.env = env
        """Kept for its `_sample_goal` (called with the port's generators, one at a time)."""
        model = self.model
        if model.nmocap != 1 or model.nu != 0:
            raise ValueError("the Fetch port expects one mocap body and no actuators")
        weld = int(np.flatnonzero(model.eq_type == mujoco.mjtEq.mjEQ_WELD)[0])
        obj1, obj2 = int(model.eq_obj1id[weld]), int(model.eq_obj2id[weld])
        self.mocap_body, self.welded = (obj1, obj2) if model.body_mocapid[obj1] != -1 else (obj2, obj1)
        self.mocap = int(model.body_mocapid[self.mocap_body])
        self.block_gripper = bool(env.block_gripper)
        self.has_object = bool(env.has_object)
        self.reward_type = env.reward_type
        self.threshold = float(env.distance_threshold)
        self.obj_range = float(env.obj_range)
        self.initial_xy = env.initial_gripper_xpos[:2].copy()
        names = [n for n in env._model_names.joint_names if n.startswith("robot")]
        fingers = [model.joint(name) for name in names[-2:]]
        self.finger_qpos = [int(j.qposadr[0]) for j in fingers]
        self.finger_qvel = [int(j.dofadr[0]) for j in fingers]
        self.grip = int(model.site("robot0:grip").id)
        self.sites = [self.grip]
        if self.has_object:
            self.object = int(model.site("object0").id)
            self.sites.append(self.object)
            self.object_qpos = int(model.joint("object0:joint").qposadr[0])
        self.derived = 6 * len(self.sites)

    def action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        space = self.env.action_space
        return space.low.astype(np.float32), space.high.astype(np.float32)

    def control(self, data: Any, action: np.ndarray) -> None:
        # as gymnasium-robotics: the action clipped in float32, scaled in float32, added to the
        # welded body's pose (reset_mocap2body_xpos then mocap_set_action)
        pos = np.clip(action, -1.0, 1.0)[:3] * np.float32(0.05)
        data.mocap_pos[self.mocap] = data.xpos[self.welded] + pos.astype(np.float64)
        data.mocap_quat[self.mocap] = data.xquat[self.welded] + self.ROTATION

    def settle(self, data: Any) -> None:
        if self.block_gripper:
            data.qpos[self.finger_qpos] = 0.0
            mujoco.mj_forward(self.model, data)

    def derive(self, data: Any, out: np.ndarray) -> None:
        # each site's (linear, angular) velocity as jac @ qvel (gymnasium-robotics' get_site_xvel*)
        jacp, jacr = np.zeros((3, self.model.nv)), np.zeros((3, self.model.nv))
        for k, site in enumerate(self.sites):
            mujoco.mj_jacSite(self.model, data, jacp, jacr, site)
            out[6 * k : 6 * k + 3] = jacp @ data.qvel
            out[6 * k + 3 : 6 * k + 6] = jacr @ data.qvel

    def sample_state(self, rng: np.random.Generator) -> Snapshot:
        qpos = self.init_qpos.copy()
        if self.has_object:  # gymnasium-robotics' _reset_sim
            xy = self.initial_xy
            while np.linalg.norm(xy - self.initial_xy) < 0.1:
                xy = self.initial_xy + rng.uniform(-self.obj_range, self.obj_range, size=2)
            qpos[self.object_qpos : self.object_qpos + 2] = xy
        # the env's own state as after its _reset_sim, so that a goal sampler placing the goal
        # relative to the block (a task's env.py) sees the block where this reset put it
        data = self.env.data
        data.qpos[:], data.qvel[:] = qpos, self.init_qvel
        mujoco.mj_forward(self.model, data)
        self.env.np_random = rng
        goal = np.asarray(self.env._sample_goal(), dtype=np.float64).copy()
        return {"qpos": qpos, "qvel": self.init_qvel.copy(), "goal": goal}

    def achieved(self, s: Snapshot) -> np.ndarray:
        return s["site_xpos"][:, self.object if self.has_object else self.grip]

    def observe(self, s: Snapshot) -> np.ndarray:
        dt, sites = self.dt, s["site_xpos"]
        grip = sites[:, self.grip]
        grip_velp = s["derived"][:, 0:3] * dt
        parts = [self.achieved(s), s["goal"], grip]
        fingers = s["qpos"][:, self.finger_qpos]
        if self.has_object:
            from gymnasium_robotics.utils.rotations import mat2euler

            obj = sites[:, self.object]
            rot = mat2euler(s["site_xmat"][:, self.object].reshape(-1, 3, 3))
            velp = s["derived"][:, 6:9] * dt - grip_velp
            velr = s["derived"][:, 9:12] * dt
            parts += [obj, obj - grip, fingers, rot, velp, velr]
        else:
            parts.append(fingers)
        parts += [grip_velp, s["qvel"][:, self.finger_qvel] * dt]
        return np.concatenate(parts, axis=1)

    def reward(self, before: Snapshot, after: Snapshot, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = np.linalg.norm(self.achieved(after) - after["goal"], axis=-1)
        reward = -(d > self.threshold).astype(np.float32) if self.reward_type == "sparse" else -d
        return reward.astype(np.float64), np.zeros(len(d), dtype=bool)


FETCHES: tuple[str, ...] = ("FetchReach-v4", "FetchPush-v4")
"""gymnasium-robotics' Fetch ids ported (they need gymnasium-robotics installed)."""
_FETCH_KEPT = ("step", "_set_action", "_get_obs", "_step_callback", "_reset_sim", "compute_reward")
"""Methods a subclass of a ported Fetch env must not override for the port to stand for it."""


_MAZES = (
    "UMaze",
    *(
        f"{size}{variant}"
        for size in ("Open", "Medium", "Large")
        for variant in ("", "_Diverse_G", "_Diverse_GR")
    ),
)
POINT_MAZES: tuple[str, ...] = tuple(
    f"PointMaze_{maze}{reward}-v3" for maze in _MAZES for reward in ("", "Dense")
)
"""gymnasium-robotics' PointMaze ids (they need gymnasium-robotics installed)."""

_PORTS: dict[str, type[_Port]] = {
    "HalfCheetah-v5": _HalfCheetah,
    "Hopper-v5": _Hopper,
    "Walker2d-v5": _Walker2d,
    "Ant-v5": _Ant,
    "Reacher-v5": _Reacher,
    "InvertedDoublePendulum-v5": _InvertedDoublePendulum,
    "Pusher-v5": _Pusher,
    **dict.fromkeys(POINT_MAZES, _PointMaze),
    **dict.fromkeys(FETCHES, _Fetch),
}
SUPPORTED: tuple[str, ...] = tuple(_PORTS)
"""The gymnasium ids this backend ports."""


def port_of(env_id: str) -> type[_Port] | None:
    """The port of a gymnasium id: a supported id, or an id registered with a subclass of a
    ported Fetch env that changes none of `_FETCH_KEPT` (e.g. a task's env.py that only draws
    other goals); None if there is none."""
    if env_id in _PORTS:
        return _PORTS[env_id]
    spec = gym.registry.get(env_id)
    creator = spec.entry_point if spec is not None else None
    if not isinstance(creator, type) or not register_robotics():  # task folders register classes
        return None
    for fetch_id in FETCHES:
        base = gym.envs.registration.load_env_creator(str(gym.spec(fetch_id).entry_point))
        if issubclass(creator, base) and all(
            getattr(creator, name) is getattr(base, name) for name in _FETCH_KEPT
        ):
            return _PORTS[fetch_id]
    return None


def options_of(env: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Every constructor option of the gymnasium env: its defaults, overridden by `kwargs`."""
    params = inspect.signature(type(env).__init__).parameters.values()
    defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    return {**defaults, **kwargs}


def body_id(model: Any, env_id: str, name: str) -> int:
    """Index of the body `name` in the model's bodies (and so in `sim["xpos"]`)."""
    body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
    if body < 0:
        names = [model.body(i).name for i in range(model.nbody)]
        raise KeyError(f"{env_id} has no body '{name}'{did_you_mean(name, names)}")
    return int(body)


def _stack(states: Sequence[Snapshot]) -> Snapshot:
    """Per-environment states (`sample_state`'s) as one batch-first snapshot."""
    return {name: np.stack([s[name] for s in states]) for name in states[0]}


# ---------------------------------------------------------------- the thread pool


def _worker(inbox: queue.SimpleQueue[Any], done: queue.SimpleQueue[BaseException | None]) -> None:
    while True:
        task = inbox.get()
        if task is None:
            return
        fn, lo, hi = task
        try:
            fn(lo, hi)
            done.put(None)
        except BaseException as exc:
            done.put(exc)
        del task, fn  # hold no reference to the environment between steps


class _Pool:
    """`threads` contiguous slices of `range(n)`: the calling thread runs the first, persistent
    worker threads the others (mujoco releases the GIL while it steps)."""

    def __init__(self, n: int, threads: int) -> None:
        bounds = [round(k * n / threads) for k in range(threads + 1)]
        self.slices = [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]
        self._done: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self._inboxes: list[queue.SimpleQueue[Any]] = [queue.SimpleQueue() for _ in self.slices[1:]]
        self._threads = [
            threading.Thread(target=_worker, args=(inbox, self._done), daemon=True, name=f"mujoco-{k + 1}")
            for k, inbox in enumerate(self._inboxes)
        ]
        for thread in self._threads:
            thread.start()
        self.closed = False

    def run(self, fn: Callable[[int, int], None]) -> None:
        """`fn(lo, hi)` on every slice at once; re-raise the first error."""
        if self.closed:
            raise RuntimeError("the environment is closed")
        for inbox, (lo, hi) in zip(self._inboxes, self.slices[1:], strict=True):
            inbox.put((fn, lo, hi))
        error: BaseException | None = None
        try:
            fn(*self.slices[0])
        except BaseException as exc:
            error = exc
        for _ in self._inboxes:
            result = self._done.get()
            error = error or result
        if error is not None:
            raise error

    def close(self) -> None:
        self.closed = True
        for inbox in self._inboxes:
            inbox.put(None)
        for thread in self._threads:
            thread.join(timeout=5)


# ---------------------------------------------------------------- the batched environment


class MujocoBatch(BatchedEnv):
    """N copies of a gymnasium v5 MuJoCo environment (`SUPPORTED`): one MjModel, N MjData, stepped
    with `mj_step(nstep=frame_skip)` by `threads` threads (each owns a contiguous slice of the
    environments). Observation, reward, termination and reset noise are gymnasium's, computed
    over the batch in numpy; the physics runs on the CPU, the tensors live on `device`.

    Actions are not clipped (MuJoCo clamps ctrl to ctrlrange; the control cost sees the action
    as given), as in gymnasium. Environment i draws its reset noise (PointMaze: its goal and
    start) from `np.random.default_rng(seed + i)`, as gymnasium's env seeded `seed + i` does, so
    a reset with a seed gives the same states as gymnasium's vector env reset with that seed.

    `sim` (float64 tensors on `device`, batch first; after `step` the state the step reached,
    before finished environments were reset):

    - `qpos` `[N, nq]`, `qvel` `[N, nv]`: MjData's joint positions and velocities.
    - `xpos` `[N, nbody, 3]`: body frame positions (what gymnasium's `get_body_com` reads; index
      with `body_id(name)`).
    - `site_xpos` `[N, nsite, 3]`: site positions.
    - PointMaze also `goal` `[N, 2]`: the goal's x, y; Fetch `goal` `[N, 3]` (always there,
      whatever `sim_fields` says).

    After a step `xpos` and `site_xpos` are those gymnasium shows too: computed at the start of
    the last substep, with no extra `mj_forward`. `sim_fields` chooses what `sim` holds: any
    MjData array (e.g. `cfrc_ext`); fewer fields, less copying.
    """

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
        max_episode_steps: int | None = None,
        threads: int = 2,
        sim_fields: Sequence[str] = SIM_FIELDS,
        **kwargs: Any,
    ) -> None:
        """`kwargs` are the gymnasium constructor's (e.g. `ctrl_cost_weight`, PointMaze's
        `maze_map`); `max_episode_steps` None keeps gymnasium's limit (1000, Reacher 50);
        `threads` counts the calling thread."""
        if env_id not in gym.registry and not register_robotics():
            raise ValueError(f"{env_id} needs gymnasium-robotics: pip install 'eureka-rewards[robotics]'")
        port = port_of(env_id)
        if port is None:
            raise ValueError(
                f"no batched MuJoCo port of '{env_id}'{did_you_mean(env_id, SUPPORTED)}; "
                f"supported: {', '.join(SUPPORTED)}"
            )
        if "render_mode" in kwargs:
            raise ValueError("MujocoBatch does not render; leave out render_mode")
        if num_envs < 1 or threads < 1:
            raise ValueError(f"num_envs and threads must be at least 1, got {num_envs} and {threads}")
        made = gym_make(env_id, **kwargs)
        env: Any = made.unwrapped
        self.env_id = env_id
        self.port = port(env, options_of(env, kwargs))
        self.model = self.port.model
        self.frame_skip = self.port.frame_skip
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.obs_dim = self.port.obs_dim
        low, high = self.port.action_bounds()
        self.action = ActionSpec(
            discrete=None,
            dim=len(low),
            low=tuple(float(v) for v in low),
            high=tuple(float(v) for v in high),
        )
        limit = max_episode_steps or (made.spec.max_episode_steps if made.spec else None)
        self.max_episode_steps = int(limit or 1000)
        made.close()

        self._datas = [mujoco.MjData(self.model) for _ in range(num_envs)]
        self._sim_fields = tuple(sim_fields)
        self._reads = tuple(dict.fromkeys(("qpos", "qvel", *self.port.reads, *self._sim_fields)))
        for name in self._reads:
            array = getattr(self._datas[0], name, None)
            if not isinstance(array, np.ndarray) or array.dtype != np.float64:
                raise ValueError(
                    f"sim field '{name}' is not a float MjData array; e.g. {', '.join(SIM_FIELDS)}"
                )
        self._post_constraint = self.port.post_constraint or any(
            name in _POST_CONSTRAINT_FIELDS for name in self._reads
        )
        # Views into each MjData's memory, made once: reading them costs one copy per env and field.
        self._views = {name: [getattr(d, name) for d in self._datas] for name in self._reads}
        self._rngs = [np.random.default_rng(seed + i) for i in range(num_envs)]
        self._steps = np.zeros(num_envs, dtype=np.int64)
        self._action = np.zeros((num_envs, self.action.dim), dtype=np.float32)
        self._out: Snapshot = {}
        self._now: Snapshot = {}
        """The arrays of the state every environment is in now (after resets)."""
        self.sim: dict[str, torch.Tensor] = {}
        self.sim_next: dict[str, torch.Tensor] = {}
        self._pool = _Pool(num_envs, threads)
        self._finalizer = weakref.finalize(self, self._pool.close)

    # ------------------------------------------------------------ public

    def reset(self, seed: int | None = None) -> torch.Tensor:
        if seed is not None:
            self._rngs = [np.random.default_rng(seed + i) for i in range(self.num_envs)]
        drawn = _stack([self.port.sample_state(rng) for rng in self._rngs])
        return self.set_state(**drawn)

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray, **extras: np.ndarray) -> torch.Tensor:
        """Put every environment in the given state (`[N, nq]`, `[N, nv]`, and PointMaze's
        `goal` `[N, 2]` or Fetch's `[N, 3]`) as gymnasium's `set_state` after a reset does, start new episodes
        there, and return the observations."""
        n, model = self.num_envs, self.model
        if np.shape(qpos) != (n, model.nq) or np.shape(qvel) != (n, model.nv):
            raise ValueError(
                f"set_state takes qpos [{n}, {model.nq}] and qvel [{n}, {model.nv}], "
                f"got {list(np.shape(qpos))} and {list(np.shape(qvel))}"
            )
        if set(extras) != set(self.port.extras):
            want = ", ".join(self.port.extras) or "nothing"
            raise ValueError(f"set_state of {self.env_id} takes besides qpos and qvel: {want}")
        state = {name: np.asarray(value, np.float64) for name, value in extras.items()}
        bad = [name for name, value in state.items() if len(value) != n]
        if bad:
            raise ValueError(f"set_state: {', '.join(bad)} must have the batch ({n}) first")
        state.update(qpos=np.asarray(qpos, np.float64), qvel=np.asarray(qvel, np.float64))
        snapshot = self._load(np.arange(n), state)
        self._steps[:] = 0
        self._now = snapshot
        self.sim = self.sim_next = self._sim(snapshot)
        return self._tensor(self.port.observe(snapshot), torch.float32)

    def step(self, actions: torch.Tensor) -> Step:
        if not self._now:
            raise RuntimeError("call reset() before step()")
        action = np.ascontiguousarray(actions.detach().to("cpu", torch.float32).numpy())
        if action.shape != (self.num_envs, self.action.dim):
            raise ValueError(
                f"actions must be [{self.num_envs}, {self.action.dim}], got {list(action.shape)}"
            )
        self._action = action
        self._out = self._empty(self.num_envs)
        self._pool.run(self._step_slice)
        after, self._out = self._out, {}
        after.update((name, self._now[name]) for name in self.port.extras)
        reward, terminated = self.port.reward(self._now, after, action)
        obs = self.port.observe(after)
        self._steps += 1
        truncated = (self._steps >= self.max_episode_steps) & ~terminated
        done = terminated | truncated
        self.sim = self._sim(after)
        final_obs = self._tensor(obs, torch.float32)
        following = self.port.advance(after, self._rngs)
        if done.any():
            idx = np.flatnonzero(done)
            fresh = self._load(idx, _stack([self.port.sample_state(self._rngs[i]) for i in idx]))
            # `sim` keeps the pre-reset arrays
            following = {name: array.copy() for name, array in following.items()}
            for name, array in following.items():
                array[idx] = fresh[name]
            obs = obs.copy()
            obs[idx] = self.port.observe(fresh)
            self._steps[idx] = 0
        self.sim_next = self.sim if following is after else self._sim(following)
        self._now = following
        return Step(
            obs=self._tensor(obs, torch.float32),
            reward=self._tensor(reward, torch.float32),
            terminated=self._tensor(terminated, torch.bool),
            truncated=self._tensor(truncated, torch.bool),
            final_obs=final_obs,
        )

    def body_id(self, name: str) -> int:
        """Index of a body in `sim["xpos"]`."""
        return body_id(self.model, self.env_id, name)

    def close(self) -> None:
        self._finalizer()

    # ------------------------------------------------------------ internals

    def _step_slice(self, lo: int, hi: int) -> None:
        """Apply the actions to environments lo..hi-1, step them, read their arrays into `_out`."""
        model, nstep, post = self.model, self.frame_skip, self._post_constraint
        datas, action, limit, port = self._datas, self._action, self.port.qvel_limit, self.port
        copies = [(self._out[name], views) for name, views in self._views.items()]
        derived = self._out.get("derived")
        for i in range(lo, hi):
            data = datas[i]
            if limit is not None:
                np.clip(data.qvel, -limit, limit, out=data.qvel)
            port.control(data, action[i])
            mujoco.mj_step(model, data, nstep=nstep)
            if post:
                mujoco.mj_rnePostConstraint(model, data)
            port.settle(data)
            for out, views in copies:
                out[i] = views[i]
            if derived is not None:
                port.derive(data, derived[i])

    def _load(self, idx: np.ndarray, state: Snapshot) -> Snapshot:
        """Reset environments `idx` to `state` (qpos, qvel, `extras`; batch first) as gymnasium
        does (mj_resetData, set, mj_forward); return their arrays."""
        snapshot = self._empty(len(idx))
        snapshot.update((name, state[name].copy()) for name in self.port.extras)
        for j, i in enumerate(idx):
            data = self._datas[i]
            mujoco.mj_resetData(self.model, data)
            data.qpos[:] = state["qpos"][j]
            data.qvel[:] = state["qvel"][j]
            mujoco.mj_forward(self.model, data)
            for name, views in self._views.items():
                snapshot[name][j] = views[i]
            if self.port.derived:
                self.port.derive(data, snapshot["derived"][j])
        return snapshot

    def _empty(self, n: int) -> Snapshot:
        """Uninitialised arrays for `n` environments' reads (and the port's `derived`)."""
        empty = {name: np.empty((n, *views[0].shape)) for name, views in self._views.items()}
        if self.port.derived:
            empty["derived"] = np.empty((n, self.port.derived))
        return empty

    def _sim(self, snapshot: Snapshot) -> dict[str, torch.Tensor]:
        names = dict.fromkeys((*self._sim_fields, *self.port.extras))
        return {name: self._tensor(snapshot[name], torch.float64) for name in names}

    def _tensor(self, array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        return torch.from_numpy(array).to(device=self.device, dtype=dtype)
