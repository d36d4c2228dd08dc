"""Same seed, same machine, same thread counts: the same training, to the last digit. The
simulator's thread count does not change a batched MuJoCo training (each environment steps
alone); torch's thread count may change float sums, so solve fixes it per job (SolveConfig)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eureka import tasks
from eureka.training.train import train
from eureka.types import TrainJob, TrainResult


def _train(task: str, out: Path, backend: str, steps: int, sim_threads: int = 1) -> TrainResult:
    folder = tasks.load(task).folder
    job = TrainJob(
        task_folder=folder,
        reward_file=folder / tasks.HUMAN_REWARD_FILE,
        out_dir=out,
        seed=3,
        timesteps=steps,
        video=False,
        threads=1,
        sim_threads=sim_threads,
        backend=backend,  # type: ignore[arg-type]
    )
    return train(job)


def _same(a: TrainResult, b: TrainResult) -> None:
    assert a.status == b.status == "ok", (a.message, b.message)
    assert a.eval_fitness == b.eval_fitness
    assert a.fitness_curve == b.fitness_curve
    assert a.reward_curve == b.reward_curve
    assert a.components == b.components


@pytest.mark.parametrize(("backend", "steps"), [("batched", 6000), ("sb3", 2000)])
@pytest.mark.slow
def test_the_same_seed_trains_the_same_policy(tmp_path: Path, backend: str, steps: int) -> None:
    _same(
        _train("cartpole", tmp_path / "a", backend, steps), _train("cartpole", tmp_path / "b", backend, steps)
    )


@pytest.mark.slow
def test_mujoco_simulator_threads_do_not_change_the_result(tmp_path: Path) -> None:
    _same(
        _train("inverted_double_pendulum", tmp_path / "one", "batched", 4096, sim_threads=1),
        _train("inverted_double_pendulum", tmp_path / "two", "batched", 4096, sim_threads=2),
    )
