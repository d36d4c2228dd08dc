"""MuJoCo on the GPU through MJX (JAX): gymnasium's v5 MuJoCo environments as one batched MJX
state stepped by a compiled function, exchanging arrays with torch through DLPack (no copies).

Optional: needs `jax` and `mujoco-mjx` (`pip install 'eureka-rewards[mjx]'`). The physics is
MuJoCo's own, in float32 on the device of the torch tensors (a cuda device, or JAX's CPU
backend for a CPU device). Observation, reward, termination and reset distribution are those
of gymnasium's v5 environment (and of the threaded CPU backend, `sim/mujoco.py`), computed in
torch on the device; `tests/test_sim_mjx.py` states how close the dynamics stay to the CPU path.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from eureka.errors import did_you_mean
from eureka.training.envs import gym_make
from eureka.training.sim.base import ActionSpec, BatchedEnv, Step
from eureka.training.sim.mujoco import SIM_FIELDS, body_id, options_of

INSTALL_HINT = "MJX needs jax and mujoco-mjx: pip install 'eureka-rewards[mjx]'"


def available() -> bool:
    """jax and mujoco.mjx import here."""
    try:
        _import()
    except ImportError:
        return False
    return True


def _import() -> tuple[Any, Any]:
    # JAX takes 75% of a GPU's memory at its first use unless told otherwise: torch shares it.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    try:
        import jax
        from mujoco import mjx
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    _persistent_cache(jax)
    return jax, mjx


def _persistent_cache(jax: Any) -> None:
    """Keep compiled step functions on disk (JAX_COMPILATION_CACHE_DIR, default
    ~/.cache/eureka/jax): compiling a model's batched step takes 15-20 s on a GPU, once per
    task, batch size and device; the candidates trained after the first load it in about a second."""
    if jax.config.jax_compilation_cache_dir:
        return
    folder = os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "eureka", "jax"
    )
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return  # a read-only home (a sandbox): compile in memory
    jax.config.update("jax_compilation_cache_dir", folder)


# ---------------------------------------------------------------- per-environment ports (torch)


class _Port(ABC):
    """One gymnasium v5 environment's observation, reward, termination and reset noise, for a
    batch of torch tensors (float64) read after a step."""

    def __init__(self, env: Any, options: dict[str, Any], device: torch.device) -> None:
        self.nq, self.nv = int(env.model.nq), int(env.model.nv)
        self.init_qpos = torch.as_tensor(env.init_qpos, dtype=torch.float64, device=device)
        self.init_qvel = torch.as_tensor(env.init_qvel, dtype=torch.float64, device=device)
        self.dt = float(env.dt)
        self.options = options

    @abstractmethod
    def observe(self, s: dict[str, torch.Tensor]) -> torch.Tensor:
        """Observations `[N, obs_dim]` (float64)."""

    @abstractmethod
    def reward(
        self, before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(reward `[N]` float64, terminated `[N]` bool) of a step from `before` to `after`."""

    @abstractmethod
    def sample_reset(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(qpos `[n, nq]`, qvel `[n, nv]`) of new episodes, drawn as gymnasium draws them."""


class _HalfCheetah(_Port):
    def __init__(self, env: Any, options: dict[str, Any], device: torch.device) -> None:
        super().__init__(env, options, device)
        self.forward_weight = options["forward_reward_weight"]
        self.ctrl_weight = options["ctrl_cost_weight"]
        self.noise = options["reset_noise_scale"]
        self.skip = 1 if options["exclude_current_positions_from_observation"] else 0

    def observe(self, s: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat((s["qpos"][:, self.skip :], s["qvel"]), dim=1)

    def reward(
        self, before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x_velocity = (after["qpos"][:, 0] - before["qpos"][:, 0]) / self.dt
        ctrl_cost = self.ctrl_weight * action.to(torch.float64).square().sum(dim=1)
        terminated = torch.zeros(len(action), dtype=torch.bool, device=action.device)
        return self.forward_weight * x_velocity - ctrl_cost, terminated

    def sample_reset(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        device, f64 = self.init_qpos.device, torch.float64
        u = torch.rand((n, self.nq), generator=generator, dtype=f64, device=device)
        qpos = self.init_qpos + (2 * u - 1) * self.noise
        qvel = self.init_qvel + self.noise * torch.randn(
            (n, self.nv), generator=generator, dtype=f64, device=device
        )
        return qpos, qvel


_PORTS: dict[str, type[_Port]] = {"HalfCheetah-v5": _HalfCheetah}
SUPPORTED: tuple[str, ...] = tuple(_PORTS)
"""The gymnasium ids this backend ports."""


# ---------------------------------------------------------------- the batched environment


class MjxBatch(BatchedEnv):
    """N copies of a gymnasium v5 MuJoCo environment (`SUPPORTED`) as one batched MJX state.

    One compiled function applies the actions and runs `frame_skip` MJX steps for the whole
    batch; another resets the environments whose episode ended (as gymnasium: the model's
    initial data, the drawn qpos and qvel, then a forward pass). Actions go to JAX and the
    state comes back to torch through DLPack, on the same device. Reset noise comes from a
    `torch.Generator` seeded by `seed` (same distribution as gymnasium, other numbers).

    `sim` holds float64 tensors on `device`, as the CPU backend's: `qpos` `[N, nq]`,
    `qvel` `[N, nv]`, `xpos` `[N, nbody, 3]`, `site_xpos` `[N, nsite, 3]` (after a step, the
    state the step reached, before finished environments were reset; `xpos` and `site_xpos`
    from the start of the last substep, as gymnasium shows them).
    """

    compiled: ClassVar[dict[tuple[Any, ...], tuple[Any, Any, Any]]] = {}
    """Compiled (step, reset, blank batch) functions by (env id, batch size, device, solver
    iterations), shared by instances."""

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
        max_episode_steps: int | None = None,
        sim_fields: Sequence[str] = SIM_FIELDS,
        solver_iterations: tuple[int, int] | None = None,
        **kwargs: Any,
    ) -> None:
        """`solver_iterations`: (iterations, line-search iterations) of the constraint solver in
        place of the model's (100, 50): fewer are faster on a GPU, where every environment waits
        for the slowest to converge, and move the dynamics away from the CPU engine's."""
        if env_id not in _PORTS:
            raise ValueError(
                f"no MJX port of '{env_id}'{did_you_mean(env_id, SUPPORTED)}; "
                f"supported: {', '.join(SUPPORTED)}"
            )
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        jax, mjx = _import()
        self._jax = jax
        made = gym_make(env_id, **kwargs)
        env: Any = made.unwrapped
        self.env_id = env_id
        self.model = env.model
        if solver_iterations is not None:
            self.model.opt.iterations, self.model.opt.ls_iterations = solver_iterations
        self.frame_skip = int(env.frame_skip)
        self.num_envs = num_envs
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.port = _PORTS[env_id](env, options_of(env, kwargs), self.device)
        self.obs_dim = int(env.observation_space.shape[0])
        low, high = self.model.actuator_ctrlrange.astype(np.float32).T
        self.action = ActionSpec(
            discrete=None, dim=int(self.model.nu), low=tuple(map(float, low)), high=tuple(map(float, high))
        )
        limit = max_episode_steps or (made.spec.max_episode_steps if made.spec else None)
        self.max_episode_steps = int(limit or 1000)
        made.close()
        self._fields = tuple(dict.fromkeys(("qpos", "qvel", *sim_fields)))
        self._sim_fields = tuple(sim_fields)
        platform = "cuda" if self.device.type == "cuda" else "cpu"
        self._jax_device = jax.devices(platform)[self.device.index or 0]
        key = (env_id, num_envs, str(self._jax_device), solver_iterations)
        if key not in self.compiled:
            self.compiled[key] = self._compile(mjx)
        self._step_fn, self._reset_fn, self._blank = self.compiled[key]
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(seed)
        self._steps = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self._data: Any = None
        self._now: dict[str, torch.Tensor] = {}
        self.sim: dict[str, torch.Tensor] = {}
        self.sim_next: dict[str, torch.Tensor] = {}

    def _compile(self, mjx: Any) -> tuple[Any, Any, Any]:
        jax, frame_skip = self._jax, self.frame_skip
        with jax.default_device(self._jax_device):
            mx = mjx.put_model(self.model, device=self._jax_device)
            blank = mjx.make_data(mx)

        # Full float32 products: on a GPU JAX's default lets matrix products round their inputs
        # to tf32, which moves velocities by 1e-2 in one step (against 1e-4 in float32).
        def step_one(data: Any, ctrl: Any) -> Any:
            data = data.replace(ctrl=ctrl)

            def substep(d: Any, _: Any) -> tuple[Any, None]:
                return mjx.step(mx, d), None

            with jax.default_matmul_precision("highest"):
                return jax.lax.scan(substep, data, None, length=frame_skip)[0]

        def reset_one(data: Any, qpos: Any, qvel: Any, done: Any) -> Any:
            with jax.default_matmul_precision("highest"):
                fresh = mjx.forward(mx, blank.replace(qpos=qpos, qvel=qvel))
            return jax.tree_util.tree_map(lambda new, old: jax.numpy.where(done, new, old), fresh, data)

        def batch_of_blank(qpos: Any) -> Any:
            return jax.tree_util.tree_map(
                lambda a: jax.numpy.broadcast_to(a, (qpos.shape[0], *a.shape)), blank
            )

        return jax.jit(jax.vmap(step_one)), jax.jit(jax.vmap(reset_one)), jax.jit(batch_of_blank)

    # ------------------------------------------------------------ public

    def reset(self, seed: int | None = None) -> torch.Tensor:
        if seed is not None:
            self._generator.manual_seed(seed)
        qpos, qvel = self.port.sample_reset(self.num_envs, self._generator)
        return self.set_state(qpos, qvel)

    def set_state(self, qpos: torch.Tensor | np.ndarray, qvel: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Put every environment in the given state (`[N, nq]`, `[N, nv]`), as gymnasium's
        `set_state` after a reset does, start new episodes there, and return the observations."""
        n, model = self.num_envs, self.model
        if tuple(np.shape(qpos)) != (n, model.nq) or tuple(np.shape(qvel)) != (n, model.nv):
            raise ValueError(
                f"set_state takes qpos [{n}, {model.nq}] and qvel [{n}, {model.nv}], "
                f"got {list(np.shape(qpos))} and {list(np.shape(qvel))}"
            )
        q = torch.as_tensor(qpos, dtype=torch.float32, device=self.device)
        v = torch.as_tensor(qvel, dtype=torch.float32, device=self.device)
        everyone = torch.ones(n, dtype=torch.bool, device=self.device)
        blank = self._blank(self._to_jax(q))
        self._data = self._reset_fn(blank, self._to_jax(q), self._to_jax(v), self._to_jax(everyone))
        self._steps.zero_()
        self._now = self._read(self._data)
        self.sim = self.sim_next = {name: self._now[name] for name in self._sim_fields}
        return self.port.observe(self._now).to(torch.float32)

    def step(self, actions: torch.Tensor) -> Step:
        if self._data is None:
            raise RuntimeError("call reset() before step()")
        if tuple(actions.shape) != (self.num_envs, self.model.nu):
            raise ValueError(f"actions must be [{self.num_envs}, {self.model.nu}], got {list(actions.shape)}")
        action = actions.detach().to(self.device, torch.float32).contiguous()
        self._data = self._step_fn(self._data, self._to_jax(action))
        after = self._read(self._data)
        reward, terminated = self.port.reward(self._now, after, action)
        obs = self.port.observe(after).to(torch.float32)
        self._steps += 1
        truncated = (self._steps >= self.max_episode_steps) & ~terminated
        done = terminated | truncated
        self.sim = {name: after[name] for name in self._sim_fields}
        final_obs = obs
        if bool(done.any()):
            qpos, qvel = self.port.sample_reset(self.num_envs, self._generator)
            self._data = self._reset_fn(
                self._data,
                self._to_jax(qpos.to(torch.float32).contiguous()),
                self._to_jax(qvel.to(torch.float32).contiguous()),
                self._to_jax(done.contiguous()),
            )
            after = self._read(self._data)
            obs = self.port.observe(after).to(torch.float32)
            self._steps[done] = 0
            self.sim_next = {name: after[name] for name in self._sim_fields}
        else:
            self.sim_next = self.sim
        self._now = after
        return Step(
            obs=obs,
            reward=reward.to(torch.float32),
            terminated=terminated,
            truncated=truncated,
            final_obs=final_obs,
        )

    def body_id(self, name: str) -> int:
        """Index of a body in `sim["xpos"]`."""
        return body_id(self.model, self.env_id, name)

    # ------------------------------------------------------------ DLPack

    def _to_jax(self, tensor: torch.Tensor) -> Any:
        if tensor.device.type == "cuda":
            torch.cuda.current_stream(tensor.device).synchronize()  # JAX reads on its own stream
        return self._jax.dlpack.from_dlpack(tensor)

    def _read(self, data: Any) -> dict[str, torch.Tensor]:
        """The fields of `sim` (and qpos, qvel) as float64 torch tensors on `device`."""
        arrays = {name: getattr(data, name) for name in self._fields}
        self._jax.block_until_ready(arrays)
        return {name: torch.from_dlpack(a).to(torch.float64) for name, a in arrays.items()}
