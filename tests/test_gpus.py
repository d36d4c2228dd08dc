"""Choosing and sharing the device: --device checks, GPU slots of the local executor (how many
jobs a GPU holds from the task's `training.gpus`, which GPU a job gets, waiting when all are
full), and on a machine with CUDA, a sandboxed training job on a GPU share."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from eureka import tasks
from eureka.cli import app
from eureka.errors import ConfigError
from eureka.training import jobs
from eureka.training.gpus import GpuSlots, jobs_per_gpu
from eureka.training.session import check_device
from eureka.types import Status, TrainJob


def _job(tmp_path: Path, device: str = "auto") -> TrainJob:
    return TrainJob(
        task_folder=tasks.load("cartpole").folder, reward_file=None, out_dir=tmp_path, device=device
    )


def test_jobs_per_gpu_follow_the_share() -> None:
    assert [jobs_per_gpu(s) for s in (1.0, 2.0, 0.5, 0.3, 0.25, 1 / 16)] == [1, 1, 2, 3, 4, 16]
    with pytest.raises(ValueError, match="a GPU share must be positive, got 0"):
        jobs_per_gpu(0)


def test_slots_spread_jobs_over_gpus_and_wait_when_full(tmp_path: Path) -> None:
    slots = GpuSlots(0.5, count=2)
    assert slots.capacity == 4
    placed: list[str] = []
    with slots.claim(_job(tmp_path)) as a, slots.claim(_job(tmp_path, "cuda")) as b:
        with slots.claim(_job(tmp_path)) as c, slots.claim(_job(tmp_path)) as d:
            placed = [j.device for j in (a, b, c, d)]
            assert {j.gpu_memory_fraction for j in (a, b, c, d)} == {0.5}
            assert slots.busy == [2, 2]
            got: list[str] = []
            waiter = threading.Thread(target=lambda: got.append(_claim_once(slots, tmp_path)))
            waiter.start()
            time.sleep(0.2)
            assert got == []  # every slot is taken: the fifth job waits
        waiter.join(timeout=5)
        assert got and got[0] in ("cuda:0", "cuda:1")
    assert sorted(placed) == ["cuda:0", "cuda:0", "cuda:1", "cuda:1"]
    assert slots.busy == [0, 0]
    with slots.claim(_job(tmp_path, "cpu")) as cpu:  # a CPU job takes no slot
        assert cpu.device == "cpu" and cpu.gpu_memory_fraction is None and slots.busy == [0, 0]


def _claim_once(slots: GpuSlots, tmp_path: Path) -> str:
    with slots.claim(_job(tmp_path)) as job:
        return job.device


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_device_checks_name_what_to_give() -> None:
    assert check_device("cpu") == "cpu" and check_device("auto") == "auto"
    with pytest.raises(ConfigError) as wrong:
        check_device("tpu")
    assert str(wrong.value) == "--device 'tpu': use auto, cpu, cuda or cuda:N"
    with pytest.raises(ConfigError) as missing:
        check_device("cuda")
    assert str(missing.value).startswith("--device cuda: torch ") and "sees no CUDA device here" in str(
        missing.value
    )
    result = CliRunner().invoke(app, ["train", "cartpole", "--device", "cuda", "--json"])
    assert result.exit_code != 0
    assert "sees no CUDA device here; use --device cpu (or auto)" in result.output


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sandboxed_training_on_a_gpu_share(tmp_path: Path) -> None:
    reward = tmp_path / "reward.py"
    reward.write_text((tasks.load("cartpole").folder / "human_reward.py").read_text())
    job = _job(tmp_path / "out", "cuda:0").model_copy(
        update={"reward_file": reward, "timesteps": 20_000, "video": False, "gpu_memory_fraction": 0.25}
    )
    result = jobs.run_training(job)
    assert result.status == Status.OK, result.message
    assert result.device == f"cuda:0 ({torch.cuda.get_device_name(0)})"
    assert result.env_steps >= 20_000
