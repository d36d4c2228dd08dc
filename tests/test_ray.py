"""Candidates on a real Ray cluster on 127.0.0.1 (a head and one more worker node, no dashboard,
no usage stats): a solve with recorded replies through it, a worker killed mid-job ending its
candidate `crashed` (or retried), artifacts landing in the driver's run directory, and resume
across executors."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO

from eureka.llm.client import LLM, ReplayBackend
from eureka.loop import Loop, save_config
from eureka.types import SolveConfig, Status, Summary

ray = pytest.importorskip("ray", reason="needs the 'ray' extra")
PORT = 46379
RAY = str(Path(sys.executable).parent / "ray")
RECORDED = REPO / "examples/batch/cartpole"


def _ray(*args: str) -> None:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([RAY, *args], env=env, check=True, capture_output=True, timeout=180)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    _ray("stop", "--force")
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    _ray("start", "--head", f"--port={PORT}", "--include-dashboard=false", *common)
    _ray("start", f"--address=127.0.0.1:{PORT}", *common)  # a second node on this machine
    try:
        yield f"127.0.0.1:{PORT}"
    finally:
        if ray.is_initialized():
            ray.shutdown()
        _ray("stop", "--force")


def _ray_tasks() -> list[int]:
    """PIDs of Ray worker processes now running a training job."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if cmdline.startswith("ray::train_remote"):
                found.append(int(entry.name))
    return found


def _kill_first_job(killed: list[int], stop: threading.Event) -> None:
    while not stop.is_set() and not killed:
        pids = _ray_tasks()
        if pids:
            time.sleep(1.0)  # let it start the sandboxed worker
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
        time.sleep(0.2)


def _solve(run_dir: Path, address: str, retries: int, killer: bool) -> tuple[Summary, list[int]]:
    config = SolveConfig(
        task="cartpole",
        model=f"replay:{RECORDED}",
        iterations=1,
        samples=2,
        workers=2,
        timesteps=3000,
        eval_seeds=0,
        video=False,
        # the killer may hit a candidate's smoke test (it runs on the cluster too): then that
        # candidate ends crashed at the critic, with no repair round the recording lacks
        repair_rounds=0,
        executor="ray",
        ray_address=address,
        ray_retries=retries,
    )
    run_dir.mkdir(parents=True)
    save_config(run_dir, config)
    killed: list[int] = []
    stop = threading.Event()
    thread = threading.Thread(target=_kill_first_job, args=(killed, stop), daemon=True)
    if killer:
        thread.start()
    try:
        llm = LLM(ReplayBackend(RECORDED), transcript=run_dir / "transcript.jsonl")
        summary = Loop(config, run_dir, llm, lambda e: None).run()
    finally:
        stop.set()
    return summary, killed


@pytest.mark.slow
def test_a_killed_worker_ends_its_candidate_crashed_and_the_run_goes_on(cluster: str, tmp_path: Path) -> None:
    summary, killed = _solve(tmp_path / "run", cluster, retries=0, killer=True)
    assert len(killed) == 1
    candidates = summary.iterations[0].candidates
    assert sorted(c.status.value for c in candidates) == ["crashed", "ok"], candidates
    crashed = next(c for c in candidates if c.status == Status.CRASHED)
    assert crashed.message.startswith("the Ray worker running this job died (")
    assert "after 1 try" in crashed.message
    ok = next(c for c in candidates if c.status == Status.OK)
    out = tmp_path / "run" / ok.name
    for artifact in ("metrics.json", "train.log", "job.json"):
        assert (out / artifact).is_file(), artifact  # trained on a worker, landed on the driver
    assert summary.status == "ok" and summary.best is not None and summary.best.name == ok.name
    assert (tmp_path / "run/report.html").is_file()


@pytest.mark.slow
def test_a_retried_job_survives_a_dead_worker(cluster: str, tmp_path: Path) -> None:
    summary, killed = _solve(tmp_path / "run", cluster, retries=1, killer=True)
    assert len(killed) == 1
    assert [c.status for c in summary.iterations[0].candidates] == [Status.OK, Status.OK]


@pytest.mark.slow
def test_resume_across_executors(cluster: str, tmp_path: Path) -> None:
    """A run trained on the cluster resumes locally without retraining anything."""
    summary, _ = _solve(tmp_path / "run", cluster, retries=0, killer=False)
    assert summary.status == "ok"
    metrics = {
        c.name: (tmp_path / "run" / c.name / "metrics.json").stat().st_mtime
        for c in summary.iterations[0].candidates
    }
    shutil.copytree(tmp_path / "run", tmp_path / "again")
    (tmp_path / "again/summary.json").unlink()
    config = SolveConfig.model_validate(_local_config(tmp_path / "again"))
    llm = LLM(ReplayBackend(RECORDED), transcript=tmp_path / "again/transcript.jsonl")
    resumed = Loop(config, tmp_path / "again", llm, lambda e: None).run()
    assert [c.fitness for c in resumed.iterations[0].candidates] == [
        c.fitness for c in summary.iterations[0].candidates
    ]
    for name, mtime in metrics.items():
        assert (tmp_path / "again" / name / "metrics.json").stat().st_mtime == mtime  # copied, not retrained


def _local_config(run_dir: Path) -> dict[str, object]:
    from eureka.loop import load_config

    config = load_config(run_dir)
    return {**config.model_dump(), "executor": "local"}
