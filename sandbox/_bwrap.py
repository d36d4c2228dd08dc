"""Isolation by bubblewrap (bwrap): its command line, and finding out once whether it works here.

The filesystem is `_fs.plan`, rendered as bwrap's flags; bwrap makes the namespaces, runs an
init as PID 1 and the command as PID 2.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from sandbox import _fs, _limits
from sandbox._probe import Once, true_path, try_command


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def namespace_args() -> list[str]:
    """Root runs bwrap without a user namespace and drops to a uid of the pool inside (the launcher);
    anyone else gets bwrap's unprivileged mode (a user namespace mapping their own uid)."""
    if _limits.privileged():
        return [
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--cap-drop",
            "ALL",
            # only so the launcher can switch to a pool uid; gone once it has
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
        ]
    return ["--unshare-all", "--unshare-user", "--disable-userns"]


def _find() -> tuple[bool, str]:
    """(works, reason): bwrap is installed and can start a trivial sandbox here."""
    if not sys.platform.startswith("linux"):
        return False, f"bubblewrap needs Linux (this is {sys.platform})"
    exe = bwrap_path()
    if exe is None:
        return False, "the `bwrap` executable (package bubblewrap) is not installed"
    true = true_path()
    argv = [
        exe,
        *namespace_args(),
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--size",
        str(_fs.TMP_SIZE),
        "--tmpfs",
        "/tmp",
        "--clearenv",
        true,
    ]
    return try_command("bwrap", argv)


probe = Once(_find)
"""(works, reason) for bwrap, found out once."""


def _flags(op: _fs.Op) -> list[str]:
    kind, path, *rest = op
    if kind == "tmpfs":
        perms, size = rest
        return ["--perms", perms, "--size", size, "--tmpfs", path]
    if kind == "dir":
        return ["--perms", rest[0], "--dir", path]
    if kind in ("proc", "dev", "remount-ro"):
        return [f"--{kind}", path]
    return [f"--{kind}", path, rest[0]]  # ro-bind, bind, dev-bind-try: source, destination


def build_args(
    workdir: Path,
    env: dict[str, str],
    read_paths: Iterable[str],
    info_fd: int | None = None,
) -> list[str]:
    """bwrap's arguments (without the command) for a run in `workdir` with environment `env`;
    bwrap writes `{"child-pid": N}` (its PID namespace's init, as the host sees it) to `info_fd`."""
    exe = bwrap_path()
    assert exe is not None
    args = [exe, *namespace_args(), "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    for op in _fs.plan(workdir, read_paths):
        args += _flags(op)
    args += ["--chdir", str(workdir.resolve()), "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args
