"""The training stage's entry point: one job, on the learner its task's path names."""

from __future__ import annotations

import time

import torch

from eureka import tasks
from eureka.training.session import resolve_device, seed_everything
from eureka.types import TrainJob, TrainResult


def train(job: TrainJob) -> TrainResult:
    """Train a policy for the job's task against its reward and measure F on the result."""
    start = time.monotonic()
    task = tasks.load(str(job.task_folder))
    torch.set_num_threads(max(1, job.threads))
    device = resolve_device(job.device)
    seed_everything(job.seed)
    job.out_dir.mkdir(parents=True, exist_ok=True)
    if tasks.training_path(task, job.backend) == "batched":
        from eureka.training.batched import train_batched

        return train_batched(job, task, device, start)
    from eureka.training.sb3 import train_sb3

    return train_sb3(job, task, device, start)
