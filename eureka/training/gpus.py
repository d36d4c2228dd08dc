"""Sharing GPUs among local training jobs: a task's `training.gpus` is the share of one GPU a
job takes, so one GPU holds `floor(1 / gpus)` jobs at once; each job gets a GPU with a free
slot and keeps to that share of its memory."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from eureka.types import TrainJob


def jobs_per_gpu(share: float) -> int:
    """How many jobs of this GPU share run on one GPU at once (a share of 1 or more: one)."""
    if share <= 0:
        raise ValueError(f"a GPU share must be positive, got {share}")
    return max(1, math.floor(1 / share + 1e-9))


class GpuSlots:
    """`jobs_per_gpu(share)` slots on each of `count` GPUs. `claim(job)` waits for a free slot
    and yields the job placed on that GPU (`cuda:i`, with the memory share); jobs that train on
    the CPU pass through untouched."""

    def __init__(self, share: float, count: int) -> None:
        self.share = min(share, 1.0)
        self.per_gpu = jobs_per_gpu(share)
        self.busy = [0] * count
        self._free = threading.Condition()

    @property
    def capacity(self) -> int:
        """Jobs that run at once over all GPUs."""
        return self.per_gpu * len(self.busy)

    @contextmanager
    def claim(self, job: TrainJob) -> Iterator[TrainJob]:
        if not self.busy or job.device not in ("auto", "cuda"):
            yield job
            return
        with self._free:
            self._free.wait_for(lambda: min(self.busy) < self.per_gpu)
            gpu = self.busy.index(min(self.busy))
            self.busy[gpu] += 1
        try:
            yield job.model_copy(update={"device": f"cuda:{gpu}", "gpu_memory_fraction": self.share})
        finally:
            with self._free:
                self.busy[gpu] -= 1
                self._free.notify()


def local_slots(share: float) -> GpuSlots | None:
    """Slots over this machine's GPUs for jobs asking `share` of one (None: no GPU, or share 0)."""
    if share <= 0:
        return None
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return GpuSlots(share, count) if count else None
