"""Building the bubblewrap (bwrap) command line, and finding out once whether bwrap works here.

The filesystem the sandboxed command sees: `/` read-only; fresh `/proc` (its own PID namespace)
and a minimal `/dev` (plus GPU device nodes when present); a small tmpfs on `/tmp`; empty
read-only tmpfs over the places where people keep secrets (`/home`, `/root`, `/run`, `/var`,
`/mnt`, `/media`, `/srv`, the caller's home, `/etc/ssh`, ...); the paths the command needs to
read (the interpreter, the venv, PYTHONPATH, explicit extra paths) put back read-only on top of
those; and the working directory, the only writable place that outlives the run.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

HIDDEN_DIRS = ("/tmp", "/var", "/home", "/root", "/run", "/mnt", "/media", "/srv")
"""Trees replaced by an empty tmpfs; anything needed below them is bound back read-only."""
HIDDEN_ETC_DIRS = ("/etc/ssh", "/etc/ssl/private")
HIDDEN_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers")
"""Files replaced by an empty file."""
GPU_DEVICES = ("/dev/nvidia*", "/dev/nvidia-caps", "/dev/dri")
TMP_SIZE = 256 << 20
"""Size of the scratch tmpfs on /tmp (TMPDIR points into the working directory anyway)."""
MASK_SIZE = 1 << 20

SANDBOX_UID = 65534
"""`nobody`: the uid the command runs as when the orchestrator is root, so that RLIMIT_NPROC
applies (it never does to root) and root-only files stay unreadable."""


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def privileged() -> bool:
    """Root runs bwrap without a user namespace and drops to `nobody` inside (the launcher);
    anyone else gets bwrap's unprivileged mode (a user namespace mapping their own uid)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def namespace_args() -> list[str]:
    if privileged():
        return [
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--cap-drop",
            "ALL",
            # only so the launcher can switch to SANDBOX_UID; gone once it has
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
        ]
    return ["--unshare-all", "--unshare-user", "--disable-userns"]


_probe_lock = threading.Lock()
_probe_result: tuple[bool, str] | None = None


def probe() -> tuple[bool, str]:
    """(works, reason): bwrap is installed and can start a trivial sandbox here. Run once."""
    global _probe_result
    with _probe_lock:
        if _probe_result is None:
            _probe_result = _probe()
        return _probe_result


def _probe() -> tuple[bool, str]:
    if not sys.platform.startswith("linux"):
        return False, f"bubblewrap needs Linux (this is {sys.platform})"
    exe = bwrap_path()
    if exe is None:
        return False, "the `bwrap` executable (package bubblewrap) is not installed"
    true = shutil.which("true") or "/bin/true"
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
        str(TMP_SIZE),
        "--tmpfs",
        "/tmp",
        "--clearenv",
        true,
    ]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`bwrap` could not start: {exc}"
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        return False, f"`bwrap` fails here ({err[-1] if err else f'exit code {done.returncode}'})"
    return True, "ok"


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _hidden_roots() -> list[str]:
    roots = [d for d in HIDDEN_DIRS if os.path.isdir(d) and not os.path.islink(d)]
    home = os.environ.get("HOME", "")
    if home and os.path.isabs(home):
        home = os.path.realpath(home)
        if home.count("/") >= 2 and os.path.isdir(home) and not any(_under(home, r) for r in roots):
            roots.append(home)
    roots += [d for d in HIDDEN_ETC_DIRS if os.path.isdir(d) and not os.path.islink(d)]
    return roots


def _dirs_between(root: str, path: str) -> list[str]:
    """The directories strictly between `root` and `path` (which bwrap must create)."""
    rel = os.path.relpath(path, root)
    parts = rel.split("/")[:-1]
    out, cur = [], root
    for part in parts:
        cur = os.path.join(cur, part)
        out.append(cur)
    return out


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
    args += ["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
    for pattern in GPU_DEVICES:
        for dev in sorted(glob.glob(pattern)):
            args += ["--dev-bind-try", dev, dev]
    roots = _hidden_roots()
    for root in roots:
        if root == "/tmp":
            args += ["--perms", "1777", "--size", str(TMP_SIZE), "--tmpfs", root]
        else:
            args += ["--perms", "0755", "--size", str(MASK_SIZE), "--tmpfs", root]
    for file in HIDDEN_FILES:
        if os.path.isfile(file):
            args += ["--ro-bind", "/dev/null", file]

    created: set[str] = set()
    exposed: list[str] = []

    def expose(path: str, flag: str) -> None:
        root = next((r for r in sorted(roots, key=len, reverse=True) if _under(path, r)), None)
        inside = any(_under(path, e) for e in exposed)
        if root is None or path == root or inside:
            if flag == "--bind":  # visible but read-only: bind it writable on itself
                args.extend([flag, path, path])
            return
        for d in _dirs_between(root, path):
            if d not in created:
                created.add(d)
                args.extend(["--perms", "0755", "--dir", d])
        exposed.append(path)
        args.extend([flag, path, path])

    wanted: set[str] = set()
    for p in read_paths:
        if not p or not os.path.isabs(p):
            continue
        for candidate in {os.path.abspath(p), os.path.realpath(p)}:
            if os.path.exists(candidate):
                wanted.add(candidate)
    # outer paths first, so that a path inside another one is bound on top of it
    for path in sorted(wanted, key=lambda s: (s.count("/"), s)):
        expose(path, "--ro-bind")
    work = str(workdir)
    for candidate in dict.fromkeys([os.path.abspath(work), os.path.realpath(work)]):
        expose(candidate, "--bind")
    for root in roots:
        if root != "/tmp":
            args += ["--remount-ro", root]
    args += ["--chdir", os.path.realpath(work), "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args
