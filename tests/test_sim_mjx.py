"""MuJoCo on the GPU through MJX against the threaded CPU backend: the same states, actions and
step count give observations, rewards and body positions within stated tolerances (float32 MJX
against float64 MuJoCo); resets; how the registry picks MJX. The MJX tests need jax and
mujoco-mjx (`pip install 'eureka-rewards[mjx]'`) and skip without them; on a machine with CUDA
they also run on the GPU with 256 environments."""

from __future__ import annotations

import pytest
import torch

from eureka import tasks
from eureka.errors import TaskError
from eureka.training.sim import mjx
from eureka.training.sim.mujoco import MujocoBatch
from eureka.training.sim.registry import make_batched

HORIZON = 10
"""Steps (50 MuJoCo substeps) over which the two engines are compared state for state; beyond
about 20 steps float32 rounding grows through contacts into different, equally valid, gaits."""
FIRST_STEP_TOL = {"qpos": 1e-4, "obs": 1e-3, "reward": 1e-4, "xpos": 1e-4}
"""Largest absolute difference after one step (measured: H200, 4096 envs, qpos 2e-6, obs 2e-4,
reward 2e-6; CPU JAX, 8 envs, obs 2e-5)."""
TOL = {"qpos": 1e-3, "obs": 1e-2, "reward": 1e-3, "xpos": 1e-3}
"""Absolute difference that 99% of the elements keep over HORIZON steps (measured after 10
steps: CPU JAX, 8 envs: every element, obs 5e-4 at most; H200, 256 envs: all but 2 of 4352 obs
elements, 0.016 at most, a few environments whose contacts diverge first)."""
MEAN_REWARD_TOL = 1e-3
"""The batch's mean reward at every step of HORIZON (measured on the H200: 1e-4)."""
RESET_TOL = 1e-5
"""set_state then a forward pass: only float32 rounding of the same numbers."""


def _mostly_close(mine: torch.Tensor, theirs: torch.Tensor, atol: float, share: float = 0.99) -> None:
    assert torch.isfinite(mine).all()
    within = ((mine.cpu().to(torch.float64) - theirs.to(torch.float64)).abs() <= atol).double().mean()
    assert within >= share, f"only {within:.2%} of the elements within {atol}"


needs_mjx = pytest.mark.skipif(not mjx.available(), reason=mjx.INSTALL_HINT)
DEVICES = [("cpu", 8)] + ([("cuda", 256)] if torch.cuda.is_available() else [])


@needs_mjx
@pytest.mark.slow
@pytest.mark.parametrize(("device", "n"), DEVICES)
def test_mjx_follows_the_cpu_physics_over_a_horizon(device: str, n: int) -> None:
    gpu = mjx.MjxBatch("HalfCheetah-v5", n, device, seed=0)
    cpu = MujocoBatch("HalfCheetah-v5", n, "cpu", seed=0, threads=2)
    cpu.reset(3)
    start_q, start_v = cpu.sim["qpos"].clone(), cpu.sim["qvel"].clone()
    mine = gpu.set_state(start_q, start_v)
    theirs = cpu.set_state(start_q.numpy(), start_v.numpy())
    assert mine.device.type == device
    torch.testing.assert_close(mine.cpu(), theirs, atol=RESET_TOL, rtol=0)
    torch.testing.assert_close(gpu.sim["xpos"].cpu(), cpu.sim["xpos"], atol=RESET_TOL, rtol=0)
    generator = torch.Generator().manual_seed(1)
    for t in range(HORIZON):
        actions = torch.rand((n, 6), generator=generator) * 2 - 1
        a, b = gpu.step(actions.to(device)), cpu.step(actions)
        pairs = {
            "obs": (a.obs, b.obs),
            "reward": (a.reward, b.reward),
            "qpos": (gpu.sim["qpos"], cpu.sim["qpos"]),
            "xpos": (gpu.sim["xpos"], cpu.sim["xpos"]),
        }
        for name, (mine, theirs) in pairs.items():
            if t == 0:
                torch.testing.assert_close(
                    mine.cpu(), theirs.to(mine.dtype), atol=FIRST_STEP_TOL[name], rtol=0
                )
            _mostly_close(mine, theirs, TOL[name])
        assert abs(float(a.reward.mean()) - float(b.reward.mean())) <= MEAN_REWARD_TOL
        assert not a.terminated.any() and not a.truncated.any()
    assert gpu.sim["qpos"].dtype == torch.float64 and gpu.sim["qpos"].device.type == device


@needs_mjx
@pytest.mark.slow
def test_mjx_resets_finished_episodes_and_keeps_their_final_state() -> None:
    env = mjx.MjxBatch("HalfCheetah-v5", 8, "cpu", seed=0, max_episode_steps=3)  # compiled above
    env.reset(5)
    zeros = torch.zeros(8, 6)
    for t in range(1, 5):
        step = env.step(zeros)
        if t == 3:
            assert step.truncated.all() and not step.terminated.any()
            assert not torch.equal(step.obs, step.final_obs)
            assert not torch.equal(env.sim["qpos"], env.sim_next["qpos"])
            # a fresh episode starts near the initial pose (reset noise 0.1)
            assert env.sim_next["qpos"][:, 1:].abs().max() <= 0.1 + 1e-6
        else:
            assert not step.truncated.any()
            torch.testing.assert_close(step.obs, step.final_obs)
    with pytest.raises(ValueError, match=r"actions must be \[8, 6\], got \[8, 5\]"):
        env.step(torch.zeros(8, 5))


def test_registry_picks_the_physics() -> None:
    cheetah, hopper = tasks.load("half_cheetah"), tasks.load("hopper")
    cpu = torch.device("cpu")
    assert isinstance(make_batched(cheetah, 2, cpu), MujocoBatch)  # auto on a CPU device: threads
    assert isinstance(make_batched(cheetah, 2, cpu, physics="cpu"), MujocoBatch)
    with pytest.raises(TaskError) as error:
        make_batched(hopper, 2, cpu, physics="mjx")
    assert str(error.value) == (
        "task hopper: physics 'mjx' has no port of Hopper-v5 (MJX ports: HalfCheetah-v5)"
    )


@pytest.mark.skipif(mjx.available(), reason="jax and mujoco-mjx are installed here")
def test_mjx_without_jax_says_what_to_install() -> None:
    with pytest.raises(
        ImportError, match=r"MJX needs jax and mujoco-mjx: pip install 'eureka-rewards\[mjx\]'"
    ):
        mjx.MjxBatch("HalfCheetah-v5", 2, "cpu")


@needs_mjx
def test_evaluation_after_mjx_training_steps_on_the_cpu_engine() -> None:
    from eureka.training.batched import evaluation_physics

    env = mjx.MjxBatch("HalfCheetah-v5", 2, "cpu", seed=0)  # compiles lazily: nothing stepped here
    assert evaluation_physics(env, "auto") == "cpu"
    cpu = MujocoBatch("HalfCheetah-v5", 2, "cpu", seed=0, threads=1)
    assert evaluation_physics(cpu, "auto") == "auto"
    cpu.close()
