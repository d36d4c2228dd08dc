"""Entry point of a group's sandbox worker: `python -m eureka.training.group_worker group.json`
trains several batched jobs in one process, in turn, one rollout and policy update each.

Each job keeps its own environment, policy, optimiser, reward, recorder and files, and its own
random number generators and torch settings (saved and restored around its turn), so it ends
with the result it would have had alone (tests/test_groups.py). A job that fails ends with its
own status, one past its wall-clock limit (counted over its own turns) `timeout`; the others go
on. Each job's metrics.json is written as soon as it ends. A job that ran out of memory, which
its group shares, gets none: the host trains it again alone (eureka.training.groups).

The limit is a SIGALRM, which Python handles between bytecodes: a reward stuck inside one C
call (a huge tensor operation) overruns it until the call returns; the group's own timeout, the
sum of its jobs' limits, still ends the process.
"""

from __future__ import annotations

import contextlib
import gc
import random
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eureka import tasks
from eureka.reward.contract import Stop
from eureka.training.batched import BatchedTraining
from eureka.training.files import LOG_FILE
from eureka.training.groups import GroupFile
from eureka.training.session import device_name, seed_everything
from eureka.training.train import setup_process
from eureka.training.worker import defer_dynamo, failed, scratch_compile_cache, write_result
from eureka.types import Status, Task, TrainJob, TrainResult


class ProcessState:
    """What one job's turn may change in the process and a job alone would keep to itself: the
    random number generators (Python's, NumPy's, torch's on the CPU and on the job's CUDA
    device) and torch's default dtype, thread count and grad mode (a reward may set them when
    it is imported). `resume` puts them back as the job left them, `pause` keeps them after."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device if device.type == "cuda" else None
        self.pause()

    def pause(self) -> None:
        self.python = random.getstate()
        self.numpy = np.random.get_state()
        self.torch = torch.get_rng_state()
        self.device = torch.cuda.get_rng_state(self.cuda) if self.cuda is not None else None
        self.dtype = torch.get_default_dtype()
        self.threads = torch.get_num_threads()
        self.grad = torch.is_grad_enabled()

    def resume(self) -> None:
        random.setstate(self.python)
        np.random.set_state(self.numpy)
        torch.set_rng_state(self.torch)
        if self.cuda is not None and self.device is not None:
            torch.cuda.set_rng_state(self.device, self.cuda)
        if torch.get_default_dtype() != self.dtype:
            torch.set_default_dtype(self.dtype)
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        torch.set_grad_enabled(self.grad)


class _Overdue(Stop):
    """A job's turns have used up its wall-clock limit (a contract.Stop: neither the reward's own
    `except Exception` nor the contract's report of what the reward raised stops it)."""


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
        self.state: ProcessState | None = None
        self.out_of_memory = False
        """Set when a turn ran out of memory: the job ends with no result (trained again alone)."""

    def begin(self, task: Task, device: torch.device, start: float) -> TrainResult | None:
        """Set up its training (environment, rewards smoke-tested, PPO) from the process's state
        as it was set up; its result when the job ended there."""
        result = self._turn(lambda: self._setup(task, device, start))
        if result is None:
            self.state = ProcessState(device)
        return result

    def _setup(self, task: Task, device: torch.device, start: float) -> TrainResult | None:
        self.training = BatchedTraining(self.job, task, device, start)
        return self.training.result

    def advance(self) -> TrainResult | None:
        """One rollout and policy update, with its own generators; the result once it ended."""
        assert self.training is not None and self.state is not None
        training = self.training
        self.state.resume()
        try:
            return self._turn(lambda: training.finish() if training.advance() else None)
        finally:
            self.state.pause()

    def _turn(self, work: Any) -> TrainResult | None:
        """`work` with its own log (train.log in its folder) for what it prints, within what is
        left of its limit; what raised becomes its result, but for running out of memory (then
        `out_of_memory` is set and there is no result)."""
        begun = time.monotonic()
        left = None if self.limit is None else self.limit - self.spent
        try:
            with (
                (self.job.out_dir / LOG_FILE).open("a") as log,
                contextlib.redirect_stdout(log),
                contextlib.redirect_stderr(log),
            ):
                try:
                    with _within(left):
                        result: TrainResult | None = work()
                except Exception as exc:
                    result = failed(exc)
                    self.out_of_memory = _out_of_memory(exc)
                if result is not None and result.status == Status.CRASHED:  # the reward's own
                    self.out_of_memory = self.out_of_memory or bool(OUT_OF_MEMORY.search(result.message))
                if self.out_of_memory:
                    print("ran out of memory in its group: the host trains it again alone", flush=True)
                    return None
                return result
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
        self.training = None


OUT_OF_MEMORY = re.compile(r"\b(MemoryError|OutOfMemoryError)\b|can't allocate memory|CUDA out of memory")
"""A message that says the process ran out of memory (torch's allocators, Python's)."""


def _out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` (or what it was raised from) says the process ran out of memory."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (MemoryError, torch.OutOfMemoryError)) or OUT_OF_MEMORY.search(str(seen)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def train_group(
    jobs: list[TrainJob], names: list[str] | None = None, limits: list[float] | None = None
) -> list[TrainResult | None]:
    """Train `jobs` (one task, device and thread count; the batched path) in this process, in
    turn; each result is written to its job's folder as soon as the job ends (and a line naming
    it printed). A job past its limit (`limits`, over its own turns) ends `timeout`; one that
    ran out of memory ends with no result (None, nothing written)."""
    labels = names if names and len(names) == len(jobs) else [str(k) for k in range(len(jobs))]
    start = time.monotonic()
    task = tasks.load(str(jobs[0].task_folder))
    device = setup_process(jobs[0])
    initial = ProcessState(device)
    results: dict[int, TrainResult | None] = {}
    members: dict[int, _Member] = {}
    for k, job in enumerate(jobs):
        job.out_dir.mkdir(parents=True, exist_ok=True)
        initial.resume()
        seed_everything(job.seed)
        member = _Member(job, limits[k] if limits and len(limits) == len(jobs) else None)
        result = member.begin(task, device, start)
        if result is None and not member.out_of_memory:
            members[k] = member
        else:
            results[k] = _ended(member, result, labels[k])
    while members:
        for k, member in list(members.items()):
            result = member.advance()
            if result is not None or member.out_of_memory:
                del members[k]
                results[k] = _ended(member, result, labels[k])
    initial.resume()
    return [results[k] for k in range(len(jobs))]


def _ended(member: _Member, result: TrainResult | None, label: str) -> TrainResult | None:
    """The job's result written to its folder (none when it ran out of memory: its memory freed)."""
    member.close()
    if result is None:
        gc.collect()
        if torch.cuda.is_initialized():
            torch.cuda.empty_cache()
        print(f"{label}: out of memory, left to train again alone", flush=True)
        return None
    result = result.model_copy(update={"device": device_name(result.device)})
    write_result(member.job.out_dir, result)
    print(f"{label}: {result.status.value} {result.message}", flush=True)
    return result


def main(group_file: str) -> int:
    scratch_compile_cache()
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
