"""Successive halving: the schedule's logic with a fake trainer, then for real in the loop
(rungs resume from checkpoints of the batched path)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import REPO, QueuedBackend, fenced

from eureka.llm.client import LLM
from eureka.loop import Loop, save_config
from eureka.training.halving import rung_budgets, successive_halving
from eureka.types import SolveConfig, Status, TrainResult


def test_budgets_double_up_to_the_full_budget() -> None:
    assert rung_budgets(8000, 3) == [2000, 4000, 8000]
    assert rung_budgets(1000, 1) == [1000]
    assert rung_budgets(10, 4) == [2, 3, 5, 10]


def test_the_better_half_goes_on_and_failures_stop() -> None:
    calls: list[tuple[str, int, int]] = []
    lock = threading.Lock()
    quality = {"a": 1.0, "b": 4.0, "c": 3.0, "d": 2.0, "e": 5.0}

    def train(name: str, rung: int, total: int) -> TrainResult:
        with lock:
            calls.append((name, rung, total))
        if name == "e" and rung == 1:
            return TrainResult(status=Status.DIVERGED, message="blew up", env_steps=total)
        return TrainResult(status=Status.OK, fitness=quality[name] * total, env_steps=total)

    results, report = successive_halving(list(quality), 4000, 3, train, workers=2)
    assert report.rungs == [1000, 2000, 4000]
    assert report.survivors == [["a", "b", "c", "d", "e"], ["b", "c", "e"], ["b", "c"]]
    assert sorted(c for c in calls if c[1] == 2) == [("b", 2, 4000), ("c", 2, 4000)]
    assert results["e"].status == Status.DIVERGED and results["a"].env_steps == 1000
    assert report.env_steps == 1000 * 2 + 2000 + 4000 * 2 and report.full_steps == 5 * 4000
    assert report.saved == 1 - 12000 / 20000


@pytest.mark.slow
def test_halving_in_the_loop_resumes_rungs_from_checkpoints(tmp_path: Path) -> None:
    human = (REPO / "tasks/cartpole/human_reward.py").read_text()
    variants = [human.replace("0.5 * upright", f"{w} * upright") for w in ("0.1", "0.5", "1.0", "2.0")]
    backend = QueuedBackend([fenced(v) for v in variants])
    config = SolveConfig(
        task="cartpole",
        model="queued-fake",
        iterations=1,
        samples=4,
        workers=2,
        timesteps=16384,
        eval_seeds=0,
        video=False,
        halving=3,
        backend="batched",
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_config(run_dir, config)
    summary = Loop(config, run_dir, LLM(backend), lambda e: None).run()
    assert summary.status == "ok", summary.message
    (iteration,) = summary.iterations
    report = iteration.halving
    assert report is not None and report.rungs == [4096, 8192, 16384]
    assert [len(s) for s in report.survivors] == [4, 2, 1]
    assert report.saved > 0.4
    survivor = report.survivors[-1][0]
    cand = next(c for c in iteration.candidates if c.name == survivor)
    assert cand.env_steps >= 16384  # trained to the full budget across three rungs
    rung_logs = [(run_dir / survivor / f"rung_{r}" / "train.log").read_text() for r in range(3)]
    assert (
        "resuming at" not in rung_logs[0] and "resuming at" in rung_logs[1] and "resuming at" in rung_logs[2]
    )
    cut = [c for c in iteration.candidates if c.name not in report.survivors[1]]
    assert len(cut) == 2 and all(c.env_steps < 8192 for c in cut)
    assert summary.best is not None and summary.best.name in report.survivors[-1]


def test_halving_needs_the_batched_path(tmp_path: Path) -> None:
    import pytest

    from eureka.errors import EurekaError

    config = SolveConfig(task="cartpole", model="m", halving=3, backend="sb3")
    with pytest.raises(EurekaError, match="add --backend batched"):
        Loop(config, tmp_path, LLM(QueuedBackend()), lambda e: None)
