"""Entry point of a group's sandbox worker: `python -m eureka.training.group_worker group.json`
trains several batched jobs in one process, in turn, one rollout and policy update each.

Each job keeps its own environment, policy, optimiser, reward, recorder and files, and its own
random number generators (saved and restored around its turn), so it ends with the result it
would have had alone (tests/test_groups.py). A job that fails ends with its own status; the
others go on. Each job's metrics.json is written as soon as it ends.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel

from eureka import tasks
from eureka.training.batched import BatchedTraining
from eureka.training.files import LOG_FILE
from eureka.training.session import device_name, seed_everything
from eureka.training.train import setup_process
from eureka.training.worker import failed, write_result
from eureka.types import Task, TrainJob, TrainResult


class GroupFile(BaseModel):
    """What the host hands a group's worker: the jobs, each with its own folder."""

    jobs: list[TrainJob]
    names: list[str] = []
    """Each job's name in its log lines (its folder where it ends up); default: its index."""


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


class _Member:
    """One job of the group while it trains."""

    def __init__(self, job: TrainJob, training: BatchedTraining, rng: RandomState) -> None:
        self.job = job
        self.training = training
        self.rng = rng

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Its generators, and its own log (train.log in its folder) for what it prints."""
        self.rng.resume()
        try:
            with (self.job.out_dir / LOG_FILE).open("a") as log, contextlib.redirect_stdout(log):
                yield
        finally:
            self.rng.pause()


def train_group(jobs: list[TrainJob], names: list[str] | None = None) -> list[TrainResult]:
    """Train `jobs` (one task, device and thread count; the batched path) in this process, in
    turn; each result is written to its job's folder as soon as the job ends (and a line naming
    it printed)."""
    labels = names if names and len(names) == len(jobs) else [str(k) for k in range(len(jobs))]
    start = time.monotonic()
    task = tasks.load(str(jobs[0].task_folder))
    device = setup_process(jobs[0])
    results: dict[int, TrainResult] = {}
    members: dict[int, _Member] = {}
    for k, job in enumerate(jobs):
        job.out_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(job.seed)
        member = _begin(job, task, device, start)
        if isinstance(member, _Member):
            members[k] = member
        else:
            results[k] = _ended(job, member, labels[k])
    while members:
        for k, member in list(members.items()):
            with member.turn():
                try:
                    over = member.training.advance()
                    result = member.training.finish() if over else None
                except Exception as exc:
                    result = failed(exc)
            if result is not None:
                member.training.close()
                del members[k]
                results[k] = _ended(member.job, result, labels[k])
    return [results[k] for k in range(len(jobs))]


def _begin(job: TrainJob, task: Task, device: torch.device, start: float) -> _Member | TrainResult:
    """The job's training set up (environment, rewards smoke-tested, PPO), or its result when it
    ended there."""
    with (job.out_dir / LOG_FILE).open("a") as log, contextlib.redirect_stdout(log):
        try:
            training = BatchedTraining(job, task, device, start)
        except Exception as exc:
            return failed(exc)
    if training.result is not None:
        training.close()
        return training.result
    return _Member(job, training, RandomState(device))


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
    train_group(group.jobs, group.names)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
