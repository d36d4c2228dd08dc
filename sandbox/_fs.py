"""The filesystem a sandboxed command sees, as one list of mount operations that both
isolation mechanisms apply (bubblewrap renders them as its flags, `unshare` runs them itself).

`/` read-only; a fresh `/proc` (its own PID namespace) and a minimal `/dev` (plus GPU device
nodes when present); a small tmpfs on `/tmp`; empty read-only tmpfs over the places where people
keep secrets (`/home`, `/root`, `/run`, `/var`, `/mnt`, `/media`, `/srv`, the caller's home,
`/etc/ssh`, ...); the paths the command needs to read (the interpreter, the venv, PYTHONPATH,
explicit extra paths) put back read-only on top of those; and the working directory, the only
writable place that outlives the run.
"""

from __future__ import annotations

import glob
import os
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

Op = tuple[str, ...]
"""One mount operation, named after bubblewrap's flag: ("ro-bind", src, dst), ("bind", src, dst),
("dev-bind-try", src, dst), ("proc", dst), ("dev", dst), ("tmpfs", dst, perms, size),
("dir", dst, perms), ("remount-ro", dst). `("ro-bind", "/", "/")` comes first: the whole tree,
read-only."""


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
    """The directories strictly between `root` and `path` (which must be created)."""
    rel = os.path.relpath(path, root)
    parts = rel.split("/")[:-1]
    out, cur = [], root
    for part in parts:
        cur = os.path.join(cur, part)
        out.append(cur)
    return out


def plan(workdir: Path, read_paths: Iterable[str]) -> list[Op]:
    """The mount operations, in order, for a run in `workdir` that reads `read_paths`."""
    ops: list[Op] = [("ro-bind", "/", "/"), ("proc", "/proc"), ("dev", "/dev")]
    for pattern in GPU_DEVICES:
        for dev in sorted(glob.glob(pattern)):
            ops.append(("dev-bind-try", dev, dev))
    roots = _hidden_roots()
    for root in roots:
        if root == "/tmp":
            ops.append(("tmpfs", root, "1777", str(TMP_SIZE)))
        else:
            ops.append(("tmpfs", root, "0755", str(MASK_SIZE)))
    for file in HIDDEN_FILES:
        if os.path.isfile(file):
            ops.append(("ro-bind", "/dev/null", file))

    created: set[str] = set()
    exposed: list[str] = []

    def expose(path: str, kind: str) -> None:
        root = next((r for r in sorted(roots, key=len, reverse=True) if _under(path, r)), None)
        inside = any(_under(path, e) for e in exposed)
        if root is None or path == root or inside:
            if kind == "bind":  # visible but read-only: bind it writable on itself
                ops.append((kind, path, path))
            return
        for d in _dirs_between(root, path):
            if d not in created:
                created.add(d)
                ops.append(("dir", d, "0755"))
        exposed.append(path)
        ops.append((kind, path, path))

    wanted: set[str] = set()
    for p in read_paths:
        if not p or not os.path.isabs(p):
            continue
        for candidate in {os.path.abspath(p), os.path.realpath(p)}:
            if os.path.exists(candidate):
                wanted.add(candidate)
    # outer paths first, so that a path inside another one is bound on top of it
    for path in sorted(wanted, key=lambda s: (s.count("/"), s)):
        expose(path, "ro-bind")
    work = str(workdir)
    for candidate in dict.fromkeys([os.path.abspath(work), os.path.realpath(work)]):
        expose(candidate, "bind")
    for root in roots:
        if root != "/tmp":
            ops.append(("remount-ro", root))
    return ops
