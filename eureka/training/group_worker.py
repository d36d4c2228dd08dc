"""Entry point of a group's sandbox worker: `python -m eureka.training.group_worker group.json`
trains several batched jobs in one process, in turn, one rollout and policy update each.

Each job keeps its own environment, policy, optimiser, reward, recorder and files, and its own
random number generators (saved and restored around its turn), so it ends with the result it
would have had alone (tests/test_groups.py). A job that fails ends with its own status, one
past its wall-clock limit (counted over its own turns) `timeout`; the others go on. Each job's
metrics.json is written as soon as it ends.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel

from eureka import tasks
from eureka.training.batched import BatchedTraining
from eureka.training.files import LOG_FILE
from eureka.training.session import device_name, seed_everything
from eureka.training.train import setup_process
from eureka.training.worker import defer_dynamo, failed, write_result
from eureka.types import Status, Task, TrainJob, TrainResult


class GroupFile(BaseModel):
    """What the host hands a group's worker: the jobs, each with its own folder."""

    jobs: list[TrainJob]
    names: list[str] = []
    """Each job's name in its log lines (its folder where it ends up); default: its index."""
    limits: list[float] = []
    """Each job's wall-clock limit in seconds, counted over its own turns; default: none."""


class RandomState:
    """The process's random number generators (Python's, NumPy's, torch's on the CPU and on the
    job's CUDA device) as one job left them: `resume` puts them back before its turn, `pause`
    keeps them after it."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device if device.type == "cuda" else None
        self.pause()

    def pause(self) -> None:
        self.python = random.getstate()
        self.numpy = np.random.get_state()
        self.torch = torch.get_rng_state()
        self.device = torch.cuda.get_rng_state(self.cuda) if self.cuda is not None else None

    def resume(self) -> None:
        random.setstate(self.python)
        np.random.set_state(self.numpy)
        torch.set_rng_state(self.torch)
        if self.cuda is not None and self.device is not None:
            torch.cuda.set_rng_state(self.device, self.cuda)


class _Overdue(BaseException):
    """A job's turns have used up its wall-clock limit (not an Exception: the reward's own
    `except Exception` does not stop it)."""


@contextlib.contextmanager
def _within(seconds: float | None) -> Iterator[None]:
    """Raise _Overdue here once `seconds` have passed (no limit: None, or not the main thread)."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    if seconds <= 0:
        raise _Overdue

    def ring(signum: int, frame: Any) -> None:
        raise _Overdue

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _Member:
    """One job of the group: its training, generators, log and the time its turns took."""

    def __init__(self, job: TrainJob, limit: float | None) -> None:
        self.job = job
        self.limit = limit
        self.spent = 0.0
        self.training: BatchedTraining | None = None
        self.rng: RandomState | None = None

    def begin(self, task: Task, device: torch.device, start: float) -> TrainResult | None:
        """Set up its training (environment, rewards smoke-tested, PPO); its result when the job
        ended there."""
        result = self._turn(lambda: self._setup(task, device, start))
        if result is None:
            self.rng = RandomState(device)
        return result

    def _setup(self, task: Task, device: torch.device, start: float) -> TrainResult | None:
        self.training = BatchedTraining(self.job, task, device, start)
        return self.training.result

    def advance(self) -> TrainResult | None:
        """One rollout and policy update, with its own generators; the result once it ended."""
        assert self.training is not None and self.rng is not None
        training = self.training
        self.rng.resume()
        try:
            return self._turn(lambda: training.finish() if training.advance() else None)
        finally:
            self.rng.pause()

    def _turn(self, work: Any) -> TrainResult | None:
        """`work` with its own log (train.log in its folder) for what it prints, within what is
        left of its limit; what raised becomes its result."""
        begun = time.monotonic()
        left = None if self.limit is None else self.limit - self.spent
        try:
            with (self.job.out_dir / LOG_FILE).open("a") as log, contextlib.redirect_stdout(log):
                try:
                    with _within(left):
                        result: TrainResult | None = work()
                        return result
                except Exception as exc:
                    return failed(exc)
        except _Overdue:
            return TrainResult(
                status=Status.TIMEOUT,
                message=f"training exceeded the wall-clock limit of {self.limit:.0f} s (its own turns "
                "in a group) and was stopped",
                wall_time=self.spent + time.monotonic() - begun,
            )
        finally:
            self.spent += time.monotonic() - begun

    def close(self) -> None:
        if self.training is not None:
            self.training.close()


def train_group(
    jobs: list[TrainJob], names: list[str] | None = None, limits: list[float] | None = None
) -> list[TrainResult]:
    """Train `jobs` (one task, device and thread count; the batched path) in this process, in
    turn; each result is written to its job's folder as soon as the job ends (and a line naming
    it printed). A job past its limit (`limits`, over its own turns) ends `timeout`."""
    labels = names if names and len(names) == len(jobs) else [str(k) for k in range(len(jobs))]
    start = time.monotonic()
    task = tasks.load(str(jobs[0].task_folder))
    device = setup_process(jobs[0])
    results: dict[int, TrainResult] = {}
    members: dict[int, _Member] = {}
    for k, job in enumerate(jobs):
        job.out_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(job.seed)
        member = _Member(job, limits[k] if limits and len(limits) == len(jobs) else None)
        result = member.begin(task, device, start)
        if result is None:
            members[k] = member
        else:
            member.close()
            results[k] = _ended(job, result, labels[k])
    while members:
        for k, member in list(members.items()):
            result = member.advance()
            if result is not None:
                member.close()
                del members[k]
                results[k] = _ended(member.job, result, labels[k])
    return [results[k] for k in range(len(jobs))]


def _ended(job: TrainJob, result: TrainResult, label: str) -> TrainResult:
    result = result.model_copy(update={"device": device_name(result.device)})
    write_result(job.out_dir, result)
    print(f"{label}: {result.status.value} {result.message}", flush=True)
    return result


def main(group_file: str) -> int:
    # as the single worker does (worker.py): MJX's compiled programs stay in the scratch folder
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(tempfile.gettempdir()) / "jax"))
    group = GroupFile.model_validate_json(Path(group_file).read_text())
    task = tasks.load(str(group.jobs[0].task_folder))
    if any(tasks.training_path(task, job.backend) != "batched" for job in group.jobs):
        print("a group trains on the batched path only", file=sys.stderr)
        return 2
    train_group(group.jobs, group.names, group.limits)
    return 0


if __name__ == "__main__":
    defer_dynamo()  # as the single worker's process does (worker.py)
    sys.exit(main(sys.argv[1]))
