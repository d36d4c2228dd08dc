"""Finding out once whether an isolation mechanism works here: start a trivial sandbox with it."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path


class Once:
    """A mechanism's (works, reason), found by `find` on the first call and kept for the
    process (tests set `result` to play a machine where it is missing)."""

    def __init__(self, find: Callable[[], tuple[bool, str]]) -> None:
        self._find = find
        self._lock = threading.Lock()
        self.result: tuple[bool, str] | None = None

    def __call__(self) -> tuple[bool, str]:
        with self._lock:
            if self.result is None:
                self.result = self._find()
            return self.result


def true_path() -> str:
    """`true` by a path that works inside a sandbox, where a PATH folder may be hidden: links are
    followed while they keep the name `true`, not into a multi-call binary (single-binary
    coreutils, busybox), which picks its command by the name it was called by."""
    path = shutil.which("true") or "/bin/true"
    while os.path.islink(path):
        target = os.path.join(os.path.dirname(path), os.readlink(path))
        if os.path.basename(target) != os.path.basename(path):
            break
        path = target
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def try_command(name: str, argv: list[str], cwd: Path | None = None) -> tuple[bool, str]:
    """(works, reason): `argv`, a trivial sandbox started by the `name` executable, exits 0."""
    try:
        done = subprocess.run(
            argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`{name}` could not start: {exc}"
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        return False, f"`{name}` fails here ({err[-1] if err else f'exit code {done.returncode}'})"
    return True, "ok"
