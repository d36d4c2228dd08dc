"""Run directories: `runs/<task>/<YYYYmmdd-HHMMSS>[-label]/`, written as a run goes."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Any

import yaml

from eureka.errors import ConfigError


def runs_root(override: Path | None = None) -> Path:
    """`--runs-dir`, else $EUREKA_RUNS_DIR, else ./runs."""
    if override is not None:
        return override
    return Path(os.environ.get("EUREKA_RUNS_DIR", "runs"))


def new_run_dir(task: str, root: Path | None = None, label: str = "") -> Path:
    """Create a fresh run directory for `task`; never reuses an existing one, also when other
    processes create theirs in the same second (each takes the next free suffix)."""
    base = runs_root(root) / task
    try:
        base.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file where a folder must go
        raise ConfigError(f"cannot make run directories under {base}: a part of that path is a file") from None
    except PermissionError:
        raise ConfigError(f"cannot make run directories under {base}: permission denied") from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}-{label}" if label else stamp
    path, suffix = base / name, 1
    while True:
        try:
            path.mkdir()  # atomic: of two processes asking for one name, one gets FileExistsError
            return path.resolve()
        except FileExistsError:
            path = base / f"{name}.{suffix}"
            suffix += 1


def write_config(run_dir: Path, config: dict[str, Any]) -> Path:
    """Save the merged configuration of a run as config.yaml."""
    path = run_dir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


OWNER_FILE = "owner"
"""`<host> <pid>` of the process running a solve in its run directory, removed when it ends: a
run whose summary says `running` and whose process is gone was killed."""


def claim(run_dir: Path) -> None:
    (run_dir / OWNER_FILE).write_text(f"{socket.gethostname()} {os.getpid()}\n")


def release(run_dir: Path) -> None:
    (run_dir / OWNER_FILE).unlink(missing_ok=True)


def owner_alive(run_dir: Path) -> bool | None:
    """Whether the process that runs `run_dir` is alive: False where none claims it or its
    process is gone, None where it runs on another machine (unknown from here)."""
    try:
        host, pid = (run_dir / OWNER_FILE).read_text().split()
    except (OSError, ValueError):
        return False
    if host != socket.gethostname():
        return None
    with contextlib.suppress(PermissionError):  # another user's live process
        try:
            os.kill(int(pid), 0)
        except (ProcessLookupError, ValueError):
            return False
    return True
