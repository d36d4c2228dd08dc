"""Where training jobs run: local sandboxed processes by default, a Ray cluster when one
machine is not enough. The loop only calls `run(job)`; nothing in it depends on which
executor ran a job (results and artifacts land in the job's out_dir either way)."""

from __future__ import annotations

from typing import Protocol

from eureka import jobs
from eureka.types import TrainJob, TrainResult


class Executor(Protocol):
    """Runs one training job to its end (called from several threads at once)."""

    name: str

    def run(self, job: TrainJob) -> TrainResult: ...

    def close(self) -> None: ...


class LocalExecutor:
    """A sandboxed worker process on this machine per job."""

    name = "local"

    def run(self, job: TrainJob) -> TrainResult:
        return jobs.run_training(job)

    def close(self) -> None:
        return None
