"""The batched trainer reads values back from the device once per rollout, not at every step:
its episode records and its reward checks then match those made at every step."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from eureka import tasks
from eureka.reward.contract import compile_reward
from eureka.training import batched
from eureka.training.batched import train_batched
from eureka.training.fitness import BatchedEpisodes
from eureka.training.session import smoke_steps
from eureka.types import BatchedSpec, TrainJob, TrainResult


def _episodes(interval: int, flush_every: int) -> list[tuple[int, int, dict[str, object]]]:
    """Random ends over 4 environments with episodes of up to 5 steps kept (longer ones wrap
    the ring), flushed every `flush_every` steps (or by `record` itself, every `interval`)."""
    gen = torch.Generator().manual_seed(0)
    tracker = BatchedEpisodes(4, 5, True, torch.device("cpu"), interval)
    found = []
    for t in range(60):
        ends = torch.rand(2, 4, generator=gen) < torch.tensor([[0.1], [0.05]])
        state = {"x": torch.full((4, 2), float(t))}
        tracker.record(torch.arange(4) + 10.0 * t, ends[0], ends[1], torch.rand(4, generator=gen), state)
        if (t + 1) % flush_every == 0 or t == 59:
            for step, i, ep in tracker.flush():
                assert ep.signal is not None
                found.append(
                    (
                        step,
                        i,
                        {
                            "length": ep.length,
                            "terminated": ep.terminated,
                            "rewards": ep.env_rewards.tolist(),
                            "signal": ep.signal.tolist(),
                            "x": ep.states["x"].tolist(),
                        },
                    )
                )
    return found


def test_episodes_flushed_once_per_rollout_are_those_flushed_at_every_step() -> None:
    every_step = _episodes(1, 1)
    assert len(every_step) > 10 and any(e["length"] > 6 for _, _, e in every_step)  # some wrap
    assert all(len(e["rewards"]) == min(e["length"], 6) for _, _, e in every_step)
    assert _episodes(8, 8) == every_step
    assert _episodes(8, 3) == every_step
    assert _episodes(3, 8) == every_step  # flushed by `record` when the caller waits too long


NAN_LATE = """
import torch

calls = [0]


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    calls[0] += 1
    bad = torch.zeros_like(pole_angle)
    if calls[0] > {limit}:
        bad[::3] = float("nan")
    upright = 1.0 - pole_angle.abs()
    return upright + bad, {{"upright": upright, "bad": bad}}
"""


def _settings(device: str) -> tuple[int, int]:
    """Cartpole's environments and the step at which the reward turns NaN: the third rollout's
    11th (after checkpoints closed), with the task's settings for `device`."""
    config = (tasks.load("cartpole").spec.training.batched or BatchedSpec()).on(torch.device(device).type)
    return config.num_envs, 2 * config.num_steps + 10


def _nan_late(tmp_path: Path, name: str, device: str) -> TrainResult:
    """Cartpole trained for 6 rollouts by a reward that turns NaN mid-rollout."""
    task = tasks.load("cartpole")
    n, bad_step = _settings(device)
    job = TrainJob(
        task_folder=task.folder,
        reward_file=tmp_path / "reward.py",
        out_dir=tmp_path / name,
        seed=0,
        timesteps=n * (bad_step - 10) * 3,
        video=False,
        backend="batched",
        device=device,
    )
    job.reward_file.write_text(NAN_LATE.format(limit=smoke_steps(job) + bad_step))
    job.out_dir.mkdir()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return train_batched(job, task, torch.device(device), time.monotonic())


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no cuda device")
        ),
    ],
)
def test_a_reward_that_turns_nan_mid_rollout_ends_as_a_check_at_every_step_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, device: str
) -> None:
    deferred = _nan_late(tmp_path, "deferred", device)
    monkeypatch.setattr(batched.Rollout, "defer_checks", lambda self, on=True: None)
    at_once = _nan_late(tmp_path, "at_once", device)
    n, bad_step = _settings(device)
    assert deferred.status == at_once.status == "diverged"
    message = f"compute_reward returned NaN or infinite values for {-(-n // 3)} of {n} environments"
    assert deferred.message == at_once.message == f"{message} (non-finite components: bad)"
    assert deferred.env_steps == at_once.env_steps == bad_step * n
    assert deferred.checkpoint_steps == at_once.checkpoint_steps != []  # nothing gathered is lost
    assert np.isfinite(deferred.reward_curve).all()
    if device == "cpu":  # the same numbers; cuda's scattered gradients may differ in the last digit
        assert deferred.reward_curve == at_once.reward_curve
        assert deferred.fitness_curve == at_once.fitness_curve


REUSES_ITS_BUFFER = """
import torch

BUFFER = []


def compute_reward(pole_angle: torch.Tensor):
    if not BUFFER:  # the first call's output is NaN; every later call overwrites it with ones
        BUFFER.append(torch.full_like(pole_angle, float("nan")))
    else:
        BUFFER[0].fill_(1.0)
    return BUFFER[0], {"kept": BUFFER[0]}
"""


def test_the_deferred_check_sees_a_nan_the_reward_later_overwrote() -> None:
    reward = compile_reward(REUSES_ITS_BUFFER, "reward.py", ["pole_angle"])
    reward.defer_finite_check()
    batch = {"pole_angle": torch.zeros(4)}
    for _ in range(3):
        reward(batch, 4)
    found = reward.first_nonfinite()
    assert found is not None and found[0] == 0
    assert found[1].message == (
        "compute_reward returned NaN or infinite values for 4 of 4 environments (non-finite components: kept)"
    )
    assert reward.first_nonfinite() is None  # looked at: forgotten
