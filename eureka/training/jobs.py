"""Runs a training job in the sandbox worker and turns whatever happened into a TrainResult."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import eureka
import sandbox
from eureka import tasks
from eureka.errors import Interrupted
from eureka.reward import checks
from eureka.training.files import JOB_FILE, LOG_FILE, METRICS_FILE, PROGRESS_FILE
from eureka.types import Status, TrainJob, TrainResult

INPUTS_DIR = "inputs"
"""Where a job's reward files and checkpoint are copied when they live outside its directory."""


def _last_lines(text: str, n: int = 3) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[-400:]


def run_training(
    job: TrainJob,
    timeout: float | None = None,
    on_progress: Callable[[dict[str, float]], None] | None = None,
    cancel: threading.Event | None = None,
) -> TrainResult:
    """Check the reward statically, then train in a sandboxed worker; never raises for
    anything the reward does. Once `cancel` is set the worker's process group is killed
    within a tick (half a second) and Interrupted is raised; nothing is written for the job."""
    if cancel is not None and cancel.is_set():
        raise Interrupted("interrupted")
    job = job.model_copy(
        update={
            "task_folder": job.task_folder.resolve(),
            "out_dir": job.out_dir.resolve(),
            "reward_file": job.reward_file.resolve() if job.reward_file else None,
            "reference_reward": job.reference_reward.resolve() if job.reference_reward else None,
        }
    )
    task = tasks.load(str(job.task_folder))
    if job.reward_file is not None:
        problems = checks.check_source(
            job.reward_file.read_text(), list(task.spec.state), job.reward_file.name
        )
        if problems:
            result = TrainResult(status=Status.CHECK_FAILED, message="; ".join(problems))
            _write(job.out_dir, result)
            return result
    job.out_dir.mkdir(parents=True, exist_ok=True)
    job = _with_inputs_inside(job)
    job_file = job.out_dir / JOB_FILE
    job_file.write_text(job.model_dump_json(indent=2))
    limit = timeout or job.timeout or task.spec.training.timeout
    package_root = str(Path(eureka.__file__).resolve().parent.parent)
    policy = sandbox.Policy(
        timeout_s=limit,
        threads=job.threads,
        extra_env={"PYTHONPATH": package_root},
        read_paths=(str(job.task_folder),),
    )
    progress_file = job.out_dir / PROGRESS_FILE

    def tick() -> None:
        if cancel is not None and cancel.is_set():
            raise Interrupted("interrupted")  # sandbox.run kills the worker's group on the way out
        if on_progress is not None and progress_file.is_file():
            with contextlib.suppress(OSError, ValueError):  # half-written: the next tick reads it
                on_progress(json.loads(progress_file.read_text()))

    outcome = sandbox.run(
        [sys.executable, "-m", "eureka.training.worker", str(job_file)],
        job.out_dir,
        job.out_dir / LOG_FILE,
        policy,
        on_tick=tick,
    )
    shutil.rmtree(job.out_dir / "tmp", ignore_errors=True)  # the worker's scratch space
    written = sandbox.read_text(job.out_dir / METRICS_FILE)
    if written is not None and not outcome.timed_out and outcome.limit is None:
        try:
            return TrainResult.model_validate_json(written)
        except ValueError:
            pass  # not what the worker writes: the reward tampered with it; judged below
    if outcome.timed_out:
        result = TrainResult(
            status=Status.TIMEOUT,
            message=f"{'the smoke test' if job.check_only else 'training'} exceeded the wall-clock limit "
            f"of {limit:.0f} s and was killed",
            wall_time=outcome.wall_time,
        )
    elif outcome.limit is not None:
        result = TrainResult(
            status=Status.KILLED_RESOURCE, message=outcome.limit, wall_time=outcome.wall_time
        )
    else:
        result = TrainResult(
            status=Status.CRASHED,
            message=f"the worker exited with code {outcome.returncode}: {_last_lines(outcome.output_tail)}",
            wall_time=outcome.wall_time,
        )
    _write(job.out_dir, result)
    return result


def _with_inputs_inside(job: TrainJob) -> TrainJob:
    """The job with its reward files and checkpoint copied into its own directory when they
    live elsewhere: the sandbox shows the worker its directory, not the caller's files. Each
    keeps its file name (messages quote it: `reward.py line 5`), in a folder named for its role."""
    inputs = job.out_dir / INPUTS_DIR
    update: dict[str, Path] = {}
    for key in ("reward_file", "reference_reward", "resume_from"):
        path: Path | None = getattr(job, key)
        if path is None or path.is_relative_to(job.out_dir):
            continue
        target = inputs / key / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        update[key] = target
    return job.model_copy(update=update) if update else job


def _write(out_dir: Path, result: TrainResult) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / METRICS_FILE).write_text(result.model_dump_json(indent=2))
