"""Entry point of the sandbox worker: `python -m eureka.training.worker job.json` runs one training job.

Whatever happens, it writes metrics.json with a status and a one-line message. A job that
trains does so in a forked child; this process measures F on the saved policy
(`eureka.training.scoring`).
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import traceback
import types
from pathlib import Path
from typing import Any

from eureka.errors import EurekaError
from eureka.training import scoring
from eureka.training.files import METRICS_FILE
from eureka.types import Status, TrainJob, TrainResult, write_whole


def _last_frame(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {Path(f.filename).name} line {f.lineno})"


class _DynamoOnDemand(types.ModuleType):
    """Stands in `sys.modules` for `torch._dynamo` until something needs more of it than the two
    calls eager PyTorch makes: torch.optim imports torch._dynamo (as costly as torch's own
    import) on an optimiser's first use only to call `graph_break()` and `disable(fn)`, which do
    nothing outside `torch.compile`. Any other attribute (a compile, a submodule) imports the
    real module in its place; functions marked before then stay unmarked (a process that
    compiles would trace into them)."""

    def graph_break(self) -> None:
        return None

    def disable(self, fn: Any = None, recursive: bool = True, **_: Any) -> Any:
        if fn is None:  # used as `@disable(recursive=...)`
            return lambda f: f
        return fn

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name != "__path__":  # probes (inspect's `__file__`) need no import
            raise AttributeError(name)
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def defer_dynamo() -> None:
    """Spare this process torch._dynamo's import until it compiles something (see
    `_DynamoOnDemand`); a no-op once torch._dynamo is loaded. Called by the worker's process
    only, which never compiles: its start-up is what every candidate pays."""
    import torch  # noqa: F401  (torch's own import must not meet the stand-in)

    sys.modules.setdefault("torch._dynamo", _DynamoOnDemand("torch._dynamo"))


def scratch_compile_cache() -> None:
    """MJX's compiled programs kept in the job's scratch folder, removed after the job (a cache
    shared between candidates would let one candidate's code plant programs another loads).
    MUJOCO_GL is set by `import eureka` and by the sandbox's environment."""
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(tempfile.gettempdir()) / "jax"))


def main(job_file: str, defer: bool = False, separate: bool = False) -> int:
    """Run the job in `job_file`; `defer`: with `defer_dynamo`; `separate`: train in a forked
    child and measure F here (`scoring`). Both are for the worker's own process (in a test's
    process, a fork would copy the test runner's threads)."""
    job = TrainJob.model_validate_json(Path(job_file).read_text())
    scratch_compile_cache()
    from eureka.training import train  # imported late: torch and gymnasium load after the env is set

    if defer:
        defer_dynamo()

    def run(job: TrainJob) -> TrainResult:
        try:
            return train.train(job)
        except Exception as exc:
            return failed(exc)

    result = scoring.train_then_score(job, run) if separate and scoring.separable(job) else run(job)
    write_result(job.out_dir, result)
    print(f"status: {result.status.value} {result.message}", flush=True)
    return 0


def failed(exc: Exception) -> TrainResult:
    """The result of a training that raised `exc` (its traceback printed to the log)."""
    if isinstance(exc, MemoryError):
        return TrainResult(status=Status.KILLED_RESOURCE, message="training ran out of memory")
    traceback.print_exc()
    if isinstance(exc, EurekaError):  # the task's own code, named by the message: no frame of eureka's
        return TrainResult(status=Status.CRASHED, message=str(exc)[:500])
    return TrainResult(
        status=Status.CRASHED,
        message=f"training raised {type(exc).__name__}: {exc}{_last_frame(exc)}".strip()[:500],
    )


def write_result(out_dir: Path, result: TrainResult) -> None:
    """metrics.json in `out_dir`, written whole or not at all."""
    write_whole(out_dir / METRICS_FILE, result.model_dump_json(indent=2))


if __name__ == "__main__":
    code = main(sys.argv[1], defer=True, separate=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the result is written: no teardown (of a GL context, of threads) can end it otherwise
