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
from eureka.training.batched import BatchedTraining, train_batched
from eureka.training.fitness import BatchedEpisodes
from eureka.training.session import smoke_steps
from eureka.types import BatchedSpec, TrainJob, TrainResult


def _episodes(interval: int, flush_every: int) -> list[tuple[int, int, dict[str, object]]]:
    """Random ends over 4 environments with episodes of up to 5 steps kept (longer ones wrap
    the ring), flushed every `flush_every` steps (or by `tick` itself, every `interval`)."""
    gen = torch.Generator().manual_seed(0)
    tracker = BatchedEpisodes(4, 5, True, torch.device("cpu"), interval)
    found = []
    for t in range(60):
        ends = torch.rand(2, 4, generator=gen) < torch.tensor([[0.1], [0.05]])
        state = {"x": torch.full((4, 2), float(t))}
        tracker.tick()
        tracker.write(torch.arange(4) + 10.0 * t, ends[0], ends[1], torch.rand(4, generator=gen), state)
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
    assert _episodes(3, 8) == every_step  # flushed by `tick` when the caller waits too long


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
    # the smoke test's calls (and its one call on half a batch), then bad_step rollout steps
    job.reward_file.write_text(NAN_LATE.format(limit=smoke_steps(job) + 1 + bad_step))
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


def _training(
    tmp_path: Path, name: str, device: str, reward: str | None = None, **batched_set: object
) -> BatchedTraining:
    """A BatchedTraining of `name`'s human reward (or `reward`) for 4 rollouts under the task's
    settings for `device`, with `batched_set` changed."""
    task = tasks.load(name)
    spec = task.spec.training.batched or BatchedSpec()
    if batched_set:
        training = task.spec.training.model_copy(update={"batched": spec.model_copy(update=batched_set)})
        task = task.model_copy(update={"spec": task.spec.model_copy(update={"training": training})})
    config = (task.spec.training.batched or BatchedSpec()).on(device)
    reward_file = task.folder / "human_reward.py"
    if reward is not None:
        reward_file = tmp_path / "reward.py"
        reward_file.write_text(reward)
    job = TrainJob(
        task_folder=task.folder,
        reward_file=reward_file,
        out_dir=tmp_path / name,
        seed=0,
        timesteps=config.num_envs * config.num_steps * 4,
        video=False,
        backend="batched",
        device=device,
    )
    job.out_dir.mkdir(parents=True)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return BatchedTraining(job, task, torch.device(device), time.monotonic())


def test_a_step_keeps_its_tensors_in_place_and_its_host_counters_untouched(tmp_path: Path) -> None:
    """What a CUDA graph would capture (`_step`) writes every tensor that outlives the step in
    place and leaves the host's counters to the caller (point_mass: its reward reads prev_ fields)."""
    training = _training(tmp_path, "point_mass", "cpu")
    training.advance()  # one rollout and update: every lazily made tensor exists
    rollout, ppo, tracker, env = training.rollout, training.ppo, training.tracker, training.env
    assert rollout.uses_prev

    def tensors() -> list[torch.Tensor]:
        assert ppo.model.obs_rms is not None and ppo.model.obs_rms._scale is not None
        unchecked = training.reward._unchecked
        assert unchecked is not None
        return [
            rollout.obs,
            *rollout.prev.values(),
            ppo._discounted,
            ppo._row,
            *ppo.model.obs_rms._scale,
            tracker._row,
            env._state,
            env._elapsed,
            unchecked.found,
            unchecked.calls,
        ]

    before = [t.data_ptr() for t in tensors()]
    counters = (ppo.step, tracker.t)
    obs = rollout.obs.clone()
    for _ in range(3):
        training._step()
    assert [t.data_ptr() for t in tensors()] == before
    assert (ppo.step, tracker.t) == counters
    assert not torch.equal(rollout.obs, obs)
    assert int(ppo._row) == ppo.step + 3 and int(tracker._row) == (tracker.t + 3) % tracker.size


def test_only_environments_stepped_on_the_device_are_graphable() -> None:
    from eureka.training.sim import classic
    from eureka.training.sim.base import BatchedEnv
    from eureka.training.sim.gym_vector import GymVector
    from eureka.training.sim.mujoco import MujocoBatch

    ports = [classic.CartPole, classic.Pendulum, classic.MountainCarContinuous, classic.Acrobot]
    assert all(port.graphable for port in ports)
    assert not MujocoBatch.graphable and not GymVector.graphable
    assert not BatchedEnv.graphable


def test_a_cuda_graph_asked_for_on_a_cpu_is_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """MuJoCo on CPU threads (not graphable) with `cuda_graph: true` on a CPU: no graph, no line,
    one rollout trains."""
    training = _training(tmp_path, "inverted_double_pendulum", "cpu", cuda_graph=True)
    try:
        assert not training.env.graphable and training.step_graph is None
        assert not training.advance() and training.result is None
        assert training.steps == training.config.num_envs * training.config.num_steps
    finally:
        training.close()
    assert "cuda graph:" not in capsys.readouterr().out


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
def test_a_step_replayed_as_a_cuda_graph_trains_like_an_eager_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cartpole for 4 rollouts with and without the graph: the graph draws other random numbers,
    so the runs agree in what random play earns (the first window's mean reward within 3%), not
    bitwise; the counts of steps and checkpoints are the same."""
    results = []
    for graph in (False, True):
        training = _training(tmp_path / str(graph), "cartpole", "cuda", cuda_graph=graph)
        while not training.advance():
            pass
        results.append(training.finish())
        if graph:
            out, step_graph = capsys.readouterr().out, training.step_graph
            assert step_graph is not None
            why = [line for line in out.splitlines() if "cuda graph" in line]
            assert step_graph.graph is not None, why
            assert "cuda graph:" not in out
    eager, graphed = results
    assert eager.status == graphed.status == "ok"
    assert eager.env_steps == graphed.env_steps
    assert eager.checkpoint_steps == graphed.checkpoint_steps
    assert graphed.reward_curve[0] == pytest.approx(eager.reward_curve[0], rel=0.03)
    assert graphed.fitness is not None and np.isfinite(graphed.fitness)


def test_only_reports_of_a_wait_keep_a_step_from_its_cuda_graph() -> None:
    """torch's sync debug mode warns once per process that it is a prototype: no wait, so no
    reason to train eagerly (on the H200 it made every process's first graph training eager);
    a real wait is reported, and any other warning is passed on."""
    import warnings

    def message(text: str) -> warnings.WarningMessage:
        return warnings.WarningMessage(UserWarning(text), UserWarning, "reward.py", 3)

    notice = message(
        "Synchronization debug mode is a prototype feature and does not yet detect all "
        "synchronizing operations (Triggered internally at /pytorch/torch/csrc/cuda/Module.cpp:906.)"
    )
    wait = message("called a synchronizing CUDA operation (Triggered internally at CUDAFunctions.cpp:155.)")
    other = message("the reward's own warning")
    with warnings.catch_warnings(record=True) as passed:
        warnings.simplefilter("always")
        assert batched.device_waits([notice]) == []
        assert batched.device_waits([notice, wait, other]) == [wait]
    assert [str(w.message) for w in passed] == ["the reward's own warning"]


SYNCS = """
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    worst = float(pole_angle.abs().max())  # a read back to the host: cannot be captured
    upright = 1.0 - pole_angle.abs() / max(worst, 1e-6)
    return upright, {"upright": upright}
"""


@needs_cuda
def test_a_reward_that_cannot_be_captured_trains_eagerly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    training = _training(tmp_path, "cartpole", "cuda", reward=SYNCS, cuda_graph=True)
    while not training.advance():
        pass
    result = training.finish()
    assert result.status == "ok"
    step_graph = training.step_graph
    assert step_graph is not None and step_graph.failed and step_graph.graph is None
    assert step_graph.eager == step_graph.WARMUP  # found by the sync check: capture never began
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("cuda graph:")]
    assert len(lines) == 1 and lines[0].startswith("cuda graph: the step waits for the device")
    assert lines[0].endswith("training eagerly")
