"""The only place untrusted code is executed: a worker process with isolation and limits.

Small on purpose and importable without the rest of eureka. `run` starts a command in its own
process group with a clean environment (no API keys or tokens), waits for it under a
wall-clock timeout and kills the whole group when it is over.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Outcome", "Policy", "clean_environment", "run"]

PASSED_VARIABLES = ("PATH", "LANG", "LC_ALL", "TZ", "MUJOCO_GL", "PYOPENGL_PLATFORM", "CUDA_VISIBLE_DEVICES")
"""Variables copied from the parent; everything else (API keys, tokens) is dropped."""


@dataclass(frozen=True)
class Policy:
    """Limits of one sandboxed run."""

    timeout_s: float = 3600.0
    """Wall-clock limit; past it the whole process group is killed."""
    threads: int = 1
    """Threads for BLAS/OpenMP inside the worker."""
    extra_env: dict[str, str] = field(default_factory=dict)
    """Non-secret variables the worker needs (set by the caller)."""


@dataclass(frozen=True)
class Outcome:
    """How a sandboxed run ended."""

    returncode: int | None
    """Exit status; negative for a signal; None when it was killed at the timeout."""
    timed_out: bool
    wall_time: float
    output_tail: str
    """The last lines the command printed (stdout and stderr)."""


def clean_environment(workdir: Path, policy: Policy) -> dict[str, str]:
    """The worker's environment: a short allow-list, never the caller's secrets."""
    env = {k: os.environ[k] for k in PASSED_VARIABLES if k in os.environ}
    env.setdefault("PATH", "/usr/bin:/bin")
    env.setdefault("MUJOCO_GL", "egl")
    threads = str(policy.threads)
    tmp = workdir / "tmp"
    tmp.mkdir(mode=0o700, exist_ok=True)
    env.update(
        HOME=str(workdir),
        TMPDIR=str(tmp),
        XDG_RUNTIME_DIR=str(tmp),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        OMP_NUM_THREADS=threads,
        MKL_NUM_THREADS=threads,
        OPENBLAS_NUM_THREADS=threads,
    )
    env.update(policy.extra_env)
    return env


def _tail(path: Path, max_chars: int = 4000) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_chars))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def run(
    argv: list[str],
    workdir: Path,
    log_path: Path,
    policy: Policy,
    on_tick: Callable[[], None] | None = None,
) -> Outcome:
    """Run `argv` in `workdir`, output appended to `log_path`, under `policy`; `on_tick` is
    called about twice a second while it runs (progress display)."""
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env=clean_environment(workdir, policy),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        timed_out = False
        returncode: int | None = None
        deadline = start + policy.timeout_s
        try:
            while returncode is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                try:
                    returncode = proc.wait(timeout=min(0.5, remaining))
                except subprocess.TimeoutExpired:
                    if on_tick is not None:
                        on_tick()
        except BaseException:  # Ctrl-C in the orchestrator: never leave a worker behind
            _kill_group(proc.pid)
            proc.wait()
            raise
        _kill_group(proc.pid)  # whatever the worker left running dies with it
        proc.wait()
    return Outcome(returncode, timed_out, time.monotonic() - start, _tail(log_path))


def python() -> str:
    """The interpreter workers run with (the orchestrator's own)."""
    return sys.executable
