"""The training stage's entry point: one job, on the learner its task's path names."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from eureka import tasks
from eureka.types import Task, TrainJob, TrainResult

if TYPE_CHECKING:
    import torch
# torch and the training session are imported where used: the orchestrator imports this module
# for `path_note` only, and starts without torch


def train(job: TrainJob) -> TrainResult:
    """Train a policy for the job's task against its reward and measure F on the result."""
    from eureka.training.session import device_name, seed_everything

    start = time.monotonic()
    task = tasks.load(str(job.task_folder))
    device = setup_process(job)
    seed_everything(job.seed)
    job.out_dir.mkdir(parents=True, exist_ok=True)
    if tasks.training_path(task, job.backend) == "batched":
        from eureka.training.batched import train_batched

        result = train_batched(job, task, device, start)
    else:
        from eureka.training.sb3 import train_sb3

        result = train_sb3(job, task, device, start)
    return result.model_copy(update={"device": device_name(result.device)})


def setup_process(job: TrainJob) -> torch.device:
    """The worker process set up for `job` (its torch threads, its share of the GPU's memory);
    the device it trains on."""
    import torch

    from eureka.training.session import resolve_device

    torch.set_num_threads(max(1, job.threads))
    device = resolve_device(job.device)
    if device.type == "cuda" and job.gpu_memory_fraction is not None:
        torch.cuda.set_per_process_memory_fraction(job.gpu_memory_fraction, device)
        os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{job.gpu_memory_fraction:.3f}")  # MJX
    return device


def path_note(task: Task, override: str | None = None) -> str:
    """Which training path a job of `task` takes and why, in words (`eureka train` prints it,
    `eureka tasks check` notes it)."""
    training = task.spec.training
    if tasks.training_path(task, override) == "sb3":
        if override == "sb3":
            why = "--backend sb3"
        elif training.backend == "sb3":
            why = "training.backend: sb3 in task.yaml"
        else:
            why = "no training.batched section in task.yaml"
        return f"training path: SB3 {training.algorithm} ({why})"
    from eureka.training.sim.registry import native_available

    native, why = native_available(task)
    if native and task.spec.env.batched:
        own = task.spec.env.batched
        return f"training path: batched PPO on the task's own batched port (env.batched: {own})"
    if native:
        return f"training path: batched PPO on a native batched port of {task.spec.env.id}"
    return f"training path: batched PPO on the gymnasium fallback: {why}"
