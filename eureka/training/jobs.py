"""Runs a training job in the sandbox worker and turns whatever happened into a TrainResult."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import eureka
import sandbox
from eureka import tasks
from eureka.errors import Interrupted
from eureka.reward import checks
from eureka.training.files import (
    JOB_FILE,
    LOG_FILE,
    METRICS_FILE,
    PROGRESS_FILE,
    SMOKE_FILE,
    SMOKE_PROGRESS_FILE,
)
from eureka.types import Status, TrainJob, TrainResult, write_whole

INPUTS_DIR = "inputs"
"""Where a job's reward files and checkpoint are copied when they live outside its directory."""


class _SmokeOverdue(Exception):
    """A `smoke_first` job's smoke test has not passed within its own limit."""


LOG_HEAD = 1 << 20
LOG_TAIL = 3 << 20
"""Bytes of a job's train.log kept from its start and from its end: a reward that prints in a
loop fills it up to the sandbox's file-size limit (512 MiB), for every candidate of a run."""


def trim_log(path: Path) -> None:
    """Cut the middle out of a log longer than LOG_HEAD + LOG_TAIL, saying how much went."""
    with contextlib.suppress(OSError):
        size = path.stat().st_size
        if size <= LOG_HEAD + LOG_TAIL:
            return
        with path.open("rb") as fh:
            head = fh.read(LOG_HEAD)
            fh.seek(size - LOG_TAIL)
            tail = fh.read()
        cut = f"\n[... {size - len(head) - len(tail):,} bytes of this log cut by eureka ...]\n".encode()
        tmp = path.with_name(path.name + ".trim")
        tmp.write_bytes(head + cut + tail)
        tmp.replace(path)


def _last_lines(text: str, n: int = 3) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[-400:]


def report_progress(path: Path, on_progress: Callable[[dict[str, Any]], None] | None) -> None:
    """`on_progress` given the worker's progress.json at `path`, if there is one (a half-written
    one is skipped: the next read gets it)."""
    if on_progress is not None and path.is_file():
        with contextlib.suppress(OSError, ValueError):
            on_progress(json.loads(path.read_text()))


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
    prepared = prepare(job)
    if isinstance(prepared, TrainResult):
        return prepared
    job = prepared
    job_file = job.out_dir / JOB_FILE
    limit = timeout or job_limit(job)
    policy = worker_policy(job, limit)
    progress_file = job.out_dir / PROGRESS_FILE
    smoke_file = job.out_dir / SMOKE_FILE
    smoke_file.unlink(missing_ok=True)
    (job.out_dir / SMOKE_PROGRESS_FILE).unlink(missing_ok=True)  # an earlier attempt's
    smoke_limit = job.smoke_timeout if job.smoke_first else None
    started, began = time.monotonic(), time.time()
    overdue_at: list[float] = []  # when the smoke test's limit passed (wall clock)

    def tick() -> None:
        if cancel is not None and cancel.is_set():
            raise Interrupted("interrupted")  # sandbox.run kills the worker's group on the way out
        report_progress(progress_file, on_progress)
        if smoke_limit is not None and time.monotonic() - started > smoke_limit and not smoke_file.exists():
            overdue_at.append(time.time())
            raise _SmokeOverdue  # the worker is killed as for Ctrl-C; the limit is the smoke test's

    try:
        outcome = sandbox.run(
            [sys.executable, "-m", "eureka.training.worker", str(job_file)],
            job.out_dir,
            job.out_dir / LOG_FILE,
            policy,
            on_tick=tick,
        )
    except _SmokeOverdue:
        outcome = None
    else:  # the last progress, whether or not a tick came after the worker wrote it
        report_progress(progress_file, on_progress)
    shutil.rmtree(job.out_dir / "tmp", ignore_errors=True)  # the worker's scratch space
    trim_log(job.out_dir / LOG_FILE)
    if outcome is None:
        assert smoke_limit is not None
        result = TrainResult(
            status=Status.TIMEOUT,
            message=smoke_overdue(smoke_limit, *_smoke_progress(job.out_dir, overdue_at[0])),
            wall_time=time.monotonic() - started,
        )
        _write(job.out_dir, result)
        return result
    result = judge(job, outcome, limit, began + limit)
    if job.smoke_first:
        # the worker wrote it (or the reward forged it: then it only escapes the smoke test's
        # limit, not the job's, and its own candidate's repair round)
        smoke = sandbox.read_text(smoke_file, max_bytes=1000)
        result = result.model_copy(update={"smoke": smoke.strip()[:500] if smoke else None})
    return result


STALE_PROGRESS = 5.0
"""Seconds without a new smoke_progress.json (rewritten each second) that mean its writer's thread
could not run: a call held Python's interpreter lock."""


def _smoke_progress(out_dir: Path, killed_at: float) -> tuple[str | None, float]:
    """What the smoke test's SmokeWatch last wrote, and how long before the kill (`killed_at`,
    wall clock; the teardown after it does not count)."""
    path = out_dir / SMOKE_PROGRESS_FILE
    text = sandbox.read_text(path, 1000)
    try:
        written = path.lstat().st_mtime if text is not None else None
    except OSError:
        written = None
    return text, max(killed_at - written, 0.0) if written is not None else 0.0


def smoke_overdue(limit: float, progress: str | None, age: float = 0.0) -> str:
    """The message of a smoke test killed at its wall-clock `limit`, from what its SmokeWatch
    last wrote (`progress`, the file's text, written `age` seconds before the kill; None: it
    never began stepping)."""
    head = f"the smoke test exceeded the wall-clock limit of {limit:.0f} s and was killed"
    try:
        seen = json.loads(progress or "null")
        done, steps = int(seen["steps"]), int(seen["of"])
        seconds, in_reward, call = (float(seen[k]) for k in ("seconds", "reward_seconds", "call_seconds"))
    except (ValueError, TypeError, KeyError, OverflowError):  # no file (never began stepping), or not ours
        return (
            f"{head} before its first step: the worker was still starting (importing, loading the "
            "reward's module, building the task's environment)"
        )
    if not all(math.isfinite(x) and x >= 0 for x in (seconds, in_reward, call, age)):
        return head
    where = f"{head} after {done} of its {steps} random-action steps"
    if age >= STALE_PROGRESS:  # the watch's thread never ran again: one call held the interpreter
        return (
            f"{where}: nothing ran for its last {age:.0f} s: one call, the reward's or the environment's, "
            "held the interpreter without returning (a huge integer computation, a C loop?)"
        )
    if call >= max(seconds / 2, 1.0):
        return (
            f"{where}: one call of the reward had run for {call:.1f} s without returning (a loop that "
            "never ends, or work that grows without bound?); the reward must return at once"
        )
    startup = max(limit - seconds - age, 0.0)
    if startup >= seconds:
        return (
            f"{where}: starting took about {startup:.0f} s of it (importing, loading the reward's module, "
            "building the task's environment)"
        )
    outside = max(seconds - in_reward - call, 0.0)
    if in_reward + call >= outside:
        per_call = (in_reward + call) / max(done, 1)
        return (
            f"{where}: the reward took {in_reward + call:.0f} of its {seconds:.0f} s ({per_call:.2g} s a "
            "call); make it cheaper: whole-batch tensor operations, no Python loops over environments"
        )
    per_step = outside / max(done, 1)
    return (
        f"{where}: the task's environment took {outside:.0f} of its {seconds:.0f} s ({per_step:.2g} s a "
        f"step), the reward {in_reward:.1f} s: the environment, not the reward, is too slow for this "
        "limit (a task's environment must step in well under a second)"
    )


def prepare(job: TrainJob) -> TrainJob | TrainResult:
    """The job as its worker reads it (JOB_FILE in its folder): paths absolute, its reward files
    and checkpoint copied into its folder; or, when the reward fails the static checks, its
    result (written)."""
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
    (job.out_dir / JOB_FILE).write_text(job.model_dump_json(indent=2))
    return job


def job_limit(job: TrainJob) -> float:
    """The job's wall-clock limit in seconds: its own, else its task's."""
    return job.timeout or tasks.load(str(job.task_folder)).spec.training.timeout


def worker_policy(job: TrainJob, limit: float) -> sandbox.Policy:
    """The sandbox a worker training `job` runs in (a group's worker: its first job's)."""
    package_root = str(Path(eureka.__file__).resolve().parent.parent)
    return sandbox.Policy(
        timeout_s=limit,
        threads=job.threads,
        extra_env={"PYTHONPATH": package_root},
        read_paths=(str(job.task_folder),),
    )


def judge(job: TrainJob, outcome: sandbox.Outcome, limit: float, killed_at: float) -> TrainResult:
    """The job's result: what the worker wrote, else what the sandbox saw (also written).
    `killed_at`: when the limit passed (wall clock), for what a killed smoke test says."""
    written = sandbox.read_text(job.out_dir / METRICS_FILE)
    if written is not None and outcome.returncode == 0 and outcome.limit is None:
        # the worker writes its result and exits 0; else metrics.json is the reward's (`scoring`)
        try:
            return TrainResult.model_validate_json(written)
        except ValueError:
            pass  # not what the worker writes: the reward tampered with it; judged below
    if outcome.timed_out:
        in_smoke = job.check_only or (job.smoke_first and not (job.out_dir / SMOKE_FILE).exists())
        result = TrainResult(
            status=Status.TIMEOUT,
            message=smoke_overdue(limit, *_smoke_progress(job.out_dir, killed_at))
            if in_smoke
            else f"training exceeded the wall-clock limit of {limit:.0f} s and was killed",
            wall_time=outcome.wall_time,
        )
    elif outcome.limit is not None:
        result = TrainResult(
            status=Status.KILLED_RESOURCE, message=outcome.limit, wall_time=outcome.wall_time
        )
    else:
        result = TrainResult(
            status=Status.CRASHED,
            message=f"the worker exited with code {outcome.returncode}"
            + (
                f": {tail}"
                if (tail := _last_lines(outcome.output_tail))
                else " before it wrote its result, saying nothing"
            )
            + (
                " (the reward's code may have ended the process: os._exit, sys.exit)"
                if outcome.returncode == 0
                else ""
            ),
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
    write_whole(out_dir / METRICS_FILE, result.model_dump_json(indent=2))
