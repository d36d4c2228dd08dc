"""Entry point of the sandbox worker: `python -m eureka.training.worker job.json` runs one training job.

Whatever happens, it writes metrics.json with a status and a one-line message.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from pathlib import Path

from eureka.training.files import METRICS_FILE
from eureka.types import Status, TrainJob, TrainResult


def _last_frame(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {Path(f.filename).name} line {f.lineno})"


def main(job_file: str) -> int:
    job = TrainJob.model_validate_json(Path(job_file).read_text())
    # (MUJOCO_GL is set by `import eureka` and by the sandbox's environment.) MJX's compiled
    # programs stay in the job's scratch folder, removed after the job: a cache shared between
    # candidates would let one candidate's code plant programs another loads
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(tempfile.gettempdir()) / "jax"))
    from eureka.training import train  # imported late: torch and gymnasium load after the env is set

    try:
        result = train.train(job)
    except Exception as exc:
        result = failed(exc)
    write_result(job.out_dir, result)
    print(f"status: {result.status.value} {result.message}", flush=True)
    return 0


def failed(exc: Exception) -> TrainResult:
    """The result of a training that raised `exc` (its traceback printed to the log)."""
    if isinstance(exc, MemoryError):
        return TrainResult(status=Status.KILLED_RESOURCE, message="training ran out of memory")
    traceback.print_exc()
    return TrainResult(
        status=Status.CRASHED,
        message=f"training raised {type(exc).__name__}: {exc}{_last_frame(exc)}".strip()[:500],
    )


def write_result(out_dir: Path, result: TrainResult) -> None:
    """metrics.json in `out_dir`, written whole or not at all."""
    out = out_dir / METRICS_FILE
    tmp = out.with_suffix(".tmp")
    tmp.write_text(result.model_dump_json(indent=2))
    tmp.replace(out)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
