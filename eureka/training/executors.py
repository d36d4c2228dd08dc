"""Where training jobs run: local sandboxed processes by default, a Ray cluster when one
machine is not enough. The loop only calls `run(job)`; nothing in it depends on which
executor ran a job (results and artifacts land in the job's out_dir either way)."""

from __future__ import annotations

import io
import tarfile
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from eureka import tasks
from eureka.errors import ConfigError, Interrupted
from eureka.training import groups, jobs
from eureka.training.gpus import local_slots
from eureka.types import (
    METRICS_FILE,
    SolveConfig,
    Status,
    TrainingProgress,
    TrainJob,
    TrainResult,
    write_whole,
)

OnProgress = Callable[[dict[str, Any]], None]
"""Called about once a second with a running job's progress file (training/files.py)."""

MAX_ARTIFACTS = 512 << 20
"""A job's out_dir larger than this is not shipped back from a Ray worker (only its metrics)."""


class Executor(Protocol):
    """Runs one training job to its end (called from several threads at once)."""

    name: str

    def run(self, job: TrainJob, on_progress: OnProgress | None = None) -> TrainResult:
        """The job's result; `on_progress` is fed its progress while it runs, where the
        executor can see it (local jobs; a Ray job's folder is on another machine)."""
        ...

    def cancel(self) -> None:
        """End every running job and refuse new ones: `run` raises Interrupted (Ctrl-C)."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """A sandboxed worker process on this machine per job. With `gpus` (the task's
    `training.gpus`, a share of one GPU), jobs that train on cuda are spread over this
    machine's GPUs, `floor(1 / gpus)` at once on each, each kept to that share of its memory."""

    name = "local"

    def __init__(self, gpus: float = 0.0) -> None:
        self.slots = local_slots(gpus)
        self.stop = threading.Event()

    def run(self, job: TrainJob, on_progress: OnProgress | None = None) -> TrainResult:
        if self.slots is None:
            return jobs.run_training(job, on_progress=on_progress, cancel=self.stop)
        with self.slots.claim(job) as placed:
            return jobs.run_training(placed, on_progress=on_progress, cancel=self.stop)

    def run_group(
        self, batch: list[TrainJob], on_progress: list[OnProgress | None] | None = None
    ) -> list[TrainResult]:
        """Train `batch` in one sandboxed process (eureka.training.groups), which takes one
        GPU slot: its jobs share that slot's GPU and memory share."""
        if self.slots is None:
            return groups.run_group(batch, on_progress, self.stop)
        with self.slots.claim(batch[0]) as placed:
            update = {"device": placed.device, "gpu_memory_fraction": placed.gpu_memory_fraction}
            batch = [job.model_copy(update=update) for job in batch]
            return groups.run_group(batch, on_progress, self.stop)

    def cancel(self) -> None:
        self.stop.set()

    def close(self) -> None:
        return None


# ---------------------------------------------------------------- Ray


def _pack(folder: Path, skip: tuple[str, ...] = ("__pycache__",)) -> bytes:
    """A folder as gzip'd tar bytes (regular files and folders only)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if any(part in skip for part in path.relative_to(folder).parts) or path.is_symlink():
                continue
            if path.is_file() or path.is_dir():
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def _unpack(data: bytes, into: Path) -> None:
    """Files and folders only, none outside `into`: tarfile's "data" filter where this Python
    has it (3.11.4, 3.10.12 and later), else the same rule checked here (Debian 12's Python
    3.11.2 has no `filter` argument: every Ray job crashed with a TypeError there)."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
            return
        root = into.resolve()
        members = tar.getmembers()
        for member in members:
            inside = (root / member.name).resolve().is_relative_to(root)
            if not (member.isfile() or member.isdir()) or not inside:
                raise tarfile.TarError(f"{member.name!r}: not a file or folder inside the archive's root")
        tar.extractall(into, members=members)  # each member checked above


def train_remote(job_json: str, task_tar: bytes, inputs: dict[str, bytes]) -> tuple[str, bytes]:
    """Runs on a Ray worker: rebuild the job's task folder and inputs in a scratch directory,
    train in the sandbox there exactly as locally, and return (metrics json, out_dir as tar)."""
    job = TrainJob.model_validate_json(job_json)
    with tempfile.TemporaryDirectory(prefix="eureka-ray-") as tmp:
        root = Path(tmp)
        task_folder = root / "task" / job.task_folder.name
        _unpack(task_tar, task_folder)
        out_dir = root / "out"
        out_dir.mkdir()
        update: dict[str, Any] = {"task_folder": task_folder, "out_dir": out_dir}
        for key, data in inputs.items():
            path = root / "inputs" / f"{key}.{'pt' if key == 'resume_from' else 'py'}"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            update[key] = path
        result = jobs.run_training(job.model_copy(update=update))
        size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
        artifacts = _pack(out_dir) if size <= MAX_ARTIFACTS else b""
        return result.model_dump_json(), artifacts


class RayExecutor:
    """Jobs as Ray tasks on an existing cluster; the sandbox applies on the worker nodes (eureka
    must be installed there); reward code, task folder and results travel as data, artifacts
    land in the run directory on the driver. A worker that dies ends its candidate `crashed`
    after `retries` more tries."""

    name = "ray"

    def __init__(
        self, address: str | None = "auto", retries: int = 1, cpus: float = 1.0, gpus: float = 0.0
    ) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "--executor ray needs Ray: pip install 'eureka-rewards[ray]' (and a cluster to connect to)"
            ) from None
        self.ray = ray
        if not ray.is_initialized():
            try:
                ray.init(
                    address=address or "auto",
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                    runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}},
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ConfigError(
                    f"could not connect to the Ray cluster at {address or 'auto'}: {first} "
                    "(start one with `ray start --head`, or give --ray-address HOST:PORT)"
                ) from None
        self.retries = retries
        self.stop = threading.Event()
        self._running: set[Any] = set()
        self._lock = threading.Lock()
        self.remote = ray.remote(train_remote).options(num_cpus=cpus, num_gpus=gpus, max_retries=retries)
        self._task_tars: dict[Path, bytes] = {}

    def _task_tar(self, folder: Path) -> bytes:
        if folder not in self._task_tars:
            self._task_tars[folder] = _pack(folder)
        return self._task_tars[folder]

    def run(self, job: TrainJob, on_progress: OnProgress | None = None) -> TrainResult:
        job = job.model_copy(
            update={"out_dir": job.out_dir.resolve(), "task_folder": job.task_folder.resolve()}
        )
        inputs = {
            key: path.read_bytes()
            for key in ("reward_file", "reference_reward", "resume_from")
            if (path := getattr(job, key)) is not None
        }
        with self._lock:
            if self.stop.is_set():
                raise Interrupted("interrupted")
            ref = self.remote.remote(job.model_dump_json(), self._task_tar(job.task_folder), inputs)
            self._running.add(ref)
        try:
            result_json, artifacts = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            if self.stop.is_set():
                raise Interrupted("interrupted") from None
            kind = type(exc).__name__
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else kind
            tries = self.retries + 1
            attempts = f"{tries} tr{'y' if tries == 1 else 'ies'}"
            result = TrainResult(
                status=Status.CRASHED,
                message=f"the Ray worker running this job died ({kind}) after {attempts}: {first}",
            )
            job.out_dir.mkdir(parents=True, exist_ok=True)
            write_whole(job.out_dir / METRICS_FILE, result.model_dump_json(indent=2))
            return result
        finally:
            with self._lock:
                self._running.discard(ref)
        if artifacts:
            _unpack(artifacts, job.out_dir)
        return TrainResult.model_validate_json(result_json)

    def cancel(self) -> None:
        with self._lock:
            self.stop.set()
            running = list(self._running)
        for ref in running:  # KeyboardInterrupt in the task: sandbox.run kills the worker's group
            self.ray.cancel(ref)

    def close(self) -> None:
        return None


class Watched:
    """An executor seen from a run: each training's progress goes to `report` as a
    TrainingProgress named by its folder under `root`, and the env steps of the trainings
    that finished are counted (`env_steps`). Smoke tests (check_only jobs) pass through."""

    def __init__(self, inner: Executor, root: Path, report: Callable[[TrainingProgress], None]) -> None:
        self.inner = inner
        self.name = inner.name
        self._run_group = getattr(inner, "run_group", None)
        self.can_group = self._run_group is not None
        """Whether `run_group` trains a group in one process (groups.run_groups asks)."""
        self.root = root.resolve()
        self.report = report
        self.env_steps = 0
        self._lock = threading.Lock()

    def run(self, job: TrainJob, on_progress: OnProgress | None = None) -> TrainResult:
        if job.check_only:
            return self.inner.run(job, on_progress)
        watch = _Watch(self, job, on_progress)
        return watch.ended(self.inner.run(job, watch.seen))

    def run_group(
        self, batch: list[TrainJob], on_progress: list[OnProgress | None] | None = None
    ) -> list[TrainResult]:
        """`batch` in one process (`groups.run_group`); only where `can_group`."""
        assert self._run_group is not None, "groups.run_groups plans groups of one for this executor"
        given = on_progress or [None] * len(batch)
        watches = [_Watch(self, job, report) for job, report in zip(batch, given, strict=True)]
        results = self._run_group(batch, [w.seen for w in watches])
        return [w.ended(r) for w, r in zip(watches, results, strict=True)]

    def cancel(self) -> None:
        self.inner.cancel()

    def close(self) -> None:
        self.inner.close()


class _Watch:
    """One training seen through `Watched`: its progress reported, its steps counted at the end."""

    def __init__(self, owner: Watched, job: TrainJob, on_progress: OnProgress | None) -> None:
        out = job.out_dir.resolve()
        self.owner = owner
        self.name = str(out.relative_to(owner.root)) if out.is_relative_to(owner.root) else str(out)
        self.on_progress = on_progress
        self.last = TrainingProgress(
            name=self.name, env_steps=0, total=job.timesteps or 0, fitness=None, elapsed=0.0
        )

    def seen(self, raw: dict[str, Any]) -> None:
        if self.on_progress is not None:
            self.on_progress(raw)
        self.last = TrainingProgress(
            name=self.name,
            env_steps=int(raw.get("env_steps", 0)),
            total=int(raw.get("total", 0)),
            fitness=raw.get("fitness"),
            elapsed=float(raw.get("elapsed", 0.0)),
        )
        self.owner.report(self.last)

    def ended(self, result: TrainResult) -> TrainResult:
        with self.owner._lock:
            self.owner.env_steps += result.env_steps
        steps = max(result.env_steps, self.last.env_steps)
        total = self.last.total or steps
        self.owner.report(
            TrainingProgress(self.name, steps, total, result.fitness, result.wall_time, status=result.status)
        )
        return result


def make_executor(config: SolveConfig) -> Executor:
    """The executor a solve configuration asks for."""
    training = tasks.load(config.task).spec.training
    if config.executor == "local":
        return LocalExecutor(training.gpus)
    return RayExecutor(config.ray_address, config.ray_retries, training.cpus, training.gpus)
