"""Several candidates trained in one sandboxed process (`--group K`, opt-in; the task's own
rewards of the final evaluation unasked, `plan_trusted`): which jobs go
together, running a group's worker (eureka.training.group_worker), and handing each job its
own folder and result back, as if it had trained alone.

Trust: the K candidates of a group run in one sandbox, isolated from the host as any worker
is, not from each other: one candidate's code can read or change another's state and files.
A job whose group's process died before it ended (a crash, a limit, the timeout) is trained
again alone, so one candidate cannot take the others' results with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import sandbox
from eureka import tasks
from eureka.errors import Interrupted
from eureka.training import jobs
from eureka.training.files import JOB_FILE, LOG_FILE, METRICS_FILE, PROGRESS_FILE
from eureka.types import TrainJob, TrainResult

GROUP_FILE = "group.json"
"""The jobs of a group, in its scratch folder (a GroupFile)."""
GROUP_LOG = "group.log"
"""The group worker's own output, copied into each of its jobs' folders."""
WORKER = [sys.executable, "-m", "eureka.training.group_worker"]
"""The command of a group's worker, given the group file."""

OnProgress = Callable[[dict[str, Any]], None]
Alone = Callable[..., TrainResult]
"""Trains one job alone in its own sandbox (jobs.run_training's signature)."""


class GroupFile(BaseModel):
    """What the host hands a group's worker (eureka.training.group_worker): the jobs, each with
    its own folder."""

    jobs: list[TrainJob]
    names: list[str] = []
    """Each job's name in its log lines (its folder where it ends up); default: its index."""
    limits: list[float] = []
    """Each job's wall-clock limit in seconds, counted over its own turns; default: none."""


def groupable(job: TrainJob) -> bool:
    """A job that may share a process: a training (not a smoke test) on the batched path."""
    if job.check_only or job.smoke_first:
        return False
    return tasks.training_path(tasks.load(str(job.task_folder)), job.backend) == "batched"


def plan(batch: list[TrainJob], size: int) -> list[list[int]]:
    """`batch`'s indices in groups of at most `size`: jobs of one task, device and thread count
    together, split evenly (5 jobs by 4: 3 and 2); the others alone."""
    by_key: dict[tuple[Any, ...], list[int]] = {}
    alone: list[list[int]] = []
    for i, job in enumerate(batch):
        if size <= 1 or not groupable(job):
            alone.append([i])
            continue
        key = (job.task_folder.resolve(), job.device, job.threads, job.sim_threads, job.backend)
        by_key.setdefault(key, []).append(i)
    groups: list[list[int]] = []
    for indices in by_key.values():
        count = math.ceil(len(indices) / size)
        base, extra = divmod(len(indices), count)
        at = 0
        for g in range(count):
            n = base + (1 if g < extra else 0)
            groups.append(indices[at : at + n])
            at += n
    return groups + alone


def on_a_cpu(device: str) -> bool:
    """Whether jobs for `device` train on a CPU here (a group on a GPU shares one job's slot)."""
    from eureka.training.session import resolve_device

    return resolve_device(device).type == "cpu"


def can_group(executor: Any) -> bool:
    """Whether `executor` trains a group in one process (`run_group`; Ray's does not). A
    wrapper (executors.Watched) says so by its `can_group`."""
    return bool(getattr(executor, "can_group", callable(getattr(executor, "run_group", None))))


TRUSTED_GROUP = 4
"""The most jobs of the task's own rewards that share a process unasked (more with --group): a
group holds all its jobs in memory and hands their results back together, so a bigger one
costs memory and, when the run is killed, more lost trainings."""
START = 0.25
"""A process's start (sandbox, torch import) in trainings, for comparing plans."""


def plan_trusted(
    batch: list[TrainJob], trusted: list[bool], size: int, workers: int, on_cpu: bool = True
) -> list[list[int]]:
    """`batch`'s indices in groups: the `trusted` jobs (rewards of the task's own, not a model's:
    the human and sparse rewards of the final evaluation) share processes among themselves,
    whatever `size` where `on_cpu`, up to TRUSTED_GROUP (`size` if larger) to a process; the
    others in groups of `size` (`plan`), never with a trusted one (a model's code could change
    the figures it is compared with). Of the group sizes allowed, the plan that ends first on
    `workers` slots for jobs of equal length (then the one with fewest processes); the units
    longest first, a model's reward's first among equals (its trainings may be the longer)."""
    mine = [i for i, t in enumerate(trusted) if bool(t)]
    others = [i for i, t in enumerate(trusted) if not bool(t)]

    def units(indices: list[int], group_size: int) -> list[list[int]]:
        return [[indices[k] for k in unit] for unit in plan([batch[i] for i in indices], group_size)]

    most = max(size, TRUSTED_GROUP if on_cpu else 1)
    options = [units(mine, s) + units(others, t) for s in range(1, most + 1) for t in range(1, size + 1)]
    best = min(options, key=lambda option: (_makespan(option, workers), len(option)))
    return sorted(best, key=lambda unit: (-len(unit), bool(trusted[unit[0]])))


def _makespan(units: list[list[int]], workers: int) -> float:
    """When `units` end on `workers` slots, longest first to the least busy, each taking its
    jobs' number of trainings plus a process start (START)."""
    busy = [0.0] * max(1, workers)
    for unit in sorted(units, key=len, reverse=True):
        k = busy.index(min(busy))
        busy[k] += len(unit) + START
    return max(busy)


def run_groups(executor: Any, batch: list[TrainJob], size: int, workers: int) -> list[TrainResult]:
    """Every job of `batch` trained through `executor`, in groups of at most `size` (`plan`),
    `workers` groups at once; where the executor cannot group (Ray), `workers` jobs at once."""
    return run_units(executor, batch, plan(batch, size if can_group(executor) else 1), workers)


def run_units(
    executor: Any, batch: list[TrainJob], units: list[list[int]], workers: int
) -> list[TrainResult]:
    """Every job of `batch` trained through `executor`, each unit of `units` (indices, every job
    in one) in one process, `workers` units at once; where the executor cannot group (Ray), each
    job alone."""
    if not can_group(executor):
        units = [[i] for unit in units for i in unit]
    results: list[TrainResult | None] = [None] * len(batch)

    def one(indices: list[int]) -> None:
        chosen = [batch[i] for i in indices]
        done = executor.run_group(chosen) if len(chosen) > 1 else [executor.run(chosen[0])]
        for i, result in zip(indices, done, strict=True):
            results[i] = result

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, units))
    done = [r for r in results if r is not None]
    assert len(done) == len(batch), "every job is in one unit of the plan"
    return done


def run_group(
    batch: list[TrainJob],
    on_progress: list[OnProgress | None] | None = None,
    cancel: threading.Event | None = None,
    alone: Alone = jobs.run_training,
) -> list[TrainResult]:
    """Train `batch` (groupable jobs of one task, device and thread count) in one sandboxed
    worker; each job's files and metrics.json land in its own folder. Its wall-clock limit is
    the sum of the jobs' own. Jobs the worker did not finish are trained again alone."""
    progress = on_progress or [None] * len(batch)
    if len(batch) == 1:
        return [alone(batch[0], on_progress=progress[0], cancel=cancel)]
    if cancel is not None and cancel.is_set():
        raise Interrupted("interrupted")
    scratch = Path(tempfile.mkdtemp(prefix=".group-", dir=_mkdir(batch[0].out_dir.resolve().parent)))
    scratch.chmod(0o755)  # as a job's own folder: the sandbox enters it before it drops to its user
    try:
        results, members = _prepare(batch, scratch)
        if members:
            outcome = _run_worker(batch, members, scratch, progress, cancel)
            for k, sub in members.items():
                results[k] = _collect(batch[k], sub, scratch, outcome)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)  # Ctrl-C: nothing is written for the jobs
        raise
    shutil.rmtree(scratch, ignore_errors=True)
    return [
        result if result is not None else alone(batch[k], on_progress=progress[k], cancel=cancel)
        for k, result in enumerate(results)
    ]


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _prepare(batch: list[TrainJob], scratch: Path) -> tuple[list[TrainResult | None], dict[int, TrainJob]]:
    """Each job as the group's worker reads it (in its own folder under `scratch`), or its
    result when its reward fails the static checks (moved to its folder)."""
    results: list[TrainResult | None] = [None] * len(batch)
    members: dict[int, TrainJob] = {}
    for k, job in enumerate(batch):
        prepared = jobs.prepare(job.model_copy(update={"out_dir": scratch / str(k)}))
        if isinstance(prepared, TrainResult):
            _move(scratch / str(k), job.out_dir)
            results[k] = prepared
        else:
            members[k] = prepared
    return results, members


def _run_worker(
    batch: list[TrainJob],
    members: dict[int, TrainJob],
    scratch: Path,
    progress: list[OnProgress | None],
    cancel: threading.Event | None,
) -> sandbox.Outcome:
    group_file = scratch / GROUP_FILE
    names = [batch[k].out_dir.name for k in members]
    limits = [jobs.job_limit(batch[k]) for k in members]
    group = GroupFile(jobs=list(members.values()), names=names, limits=limits)
    group_file.write_text(group.model_dump_json(indent=2))
    limit = sum(limits)
    policy = _scaled(jobs.worker_policy(next(iter(members.values())), limit), len(members))

    def report() -> None:
        for k, sub in members.items():
            jobs.report_progress(sub.out_dir / PROGRESS_FILE, progress[k])

    def tick() -> None:
        if cancel is not None and cancel.is_set():
            raise Interrupted("interrupted")  # sandbox.run kills the worker's group on the way out
        report()

    outcome = sandbox.run(
        [*WORKER, str(group_file)],
        scratch,
        scratch / LOG_FILE,
        policy,
        on_tick=tick,
    )
    report()  # the last progress, whether or not a tick came after the worker wrote it
    return outcome


def _scaled(policy: sandbox.Policy, size: int) -> sandbox.Policy:
    """One job's sandbox `policy` for a group of `size`: its heap and disk limits times `size`
    (its time limit is already the sum of its jobs')."""
    memory, disk = policy.memory_bytes, policy.disk_bytes
    return dataclasses.replace(
        policy,
        memory_bytes=memory * size if memory is not None else None,
        disk_bytes=disk * size if disk is not None else None,
    )


def _collect(job: TrainJob, sub: TrainJob, scratch: Path, outcome: sandbox.Outcome) -> TrainResult | None:
    """The job's result as its worker wrote it, its files moved to its folder; None when the
    worker ended before writing it (then it trains again alone)."""
    written = sandbox.read_text(sub.out_dir / METRICS_FILE)
    result = None
    if written is not None:
        with contextlib.suppress(ValueError):  # not what the worker writes: trained again alone
            result = TrainResult.model_validate_json(written)
    out_dir = job.out_dir.resolve()
    log = scratch / LOG_FILE
    if result is None:
        out_dir.mkdir(parents=True, exist_ok=True)
        if log.is_file():
            note = f"\n(no result from the group worker: exit {outcome.returncode}, "
            note += f"{outcome.limit or 'no limit hit'}{', timed out' if outcome.timed_out else ''}; "
            note += "this job trains again alone)\n"
            (out_dir / GROUP_LOG).write_text(log.read_text(errors="replace")[-20_000:] + note)
        return None
    _move(sub.out_dir, out_dir, last=False)
    if log.is_file():
        shutil.copyfile(log, out_dir / GROUP_LOG)
    update = {
        key: out_dir / path.relative_to(sub.out_dir)
        for key in ("reward_file", "reference_reward", "resume_from")
        if (path := getattr(sub, key)) is not None and path.is_relative_to(sub.out_dir)
    }
    (out_dir / JOB_FILE).write_text(
        sub.model_copy(update={**update, "out_dir": out_dir}).model_dump_json(indent=2)
    )
    _move(sub.out_dir, out_dir)  # metrics.json, last: a job with a result has all its files
    return result


def _move(source: Path, target: Path, last: bool = True) -> None:
    """Everything in `source` into `target`, replacing what has the same name there; its
    metrics.json last (not at all unless `last`), so that a job with a result has all its
    files (its policy)."""
    target.mkdir(parents=True, exist_ok=True)
    if not source.is_dir():
        return
    for item in sorted(source.iterdir(), key=lambda item: item.name == METRICS_FILE):
        if item.name == METRICS_FILE and not last:
            continue
        if item.is_symlink():  # a candidate's doing: not followed, not kept
            continue
        there = target / item.name
        if there.is_dir() and not there.is_symlink():
            shutil.rmtree(there)
        elif there.exists() or there.is_symlink():
            there.unlink()
        item.rename(there)
