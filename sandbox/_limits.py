"""Resource limits, applied inside the sandbox by a tiny launcher just before the real command.

The launcher (`python -I -S -c LAUNCHER config -- argv`) switches to the sandbox uid when asked,
sets the rlimits and execs the command, so the limits cover exactly the untrusted process and
its children. It runs in the child, not as a `preexec_fn`, so it is safe in a threaded caller.
"""

from __future__ import annotations

import json
import os

SANDBOX_UID = 65534
"""`nobody`: the uid the command runs as when the orchestrator is root, so that RLIMIT_NPROC
applies (it never does to root) and root-only files stay unreadable."""


def privileged() -> bool:
    """The orchestrator is root: namespaces need no user namespace, and the launcher drops the
    command to SANDBOX_UID."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


LAUNCHER = r"""
import json, os, resource, sys
cfg = json.loads(sys.argv[1])
argv = sys.argv[3:]
if cfg.get("uid") is not None:
    os.setgroups([])
    os.setresgid(cfg["gid"], cfg["gid"], cfg["gid"])
    os.setresuid(cfg["uid"], cfg["uid"], cfg["uid"])
for name, (soft, hard) in cfg["limits"].items():
    which = getattr(resource, name, None)
    if which is None:
        continue
    _, cur = resource.getrlimit(which)
    if cur != resource.RLIM_INFINITY:
        hard = min(hard, cur)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))
os.execvp(argv[0], argv)
"""


def task_count(uid: int) -> int:
    """Processes and threads owned by `uid` on this machine (what RLIMIT_NPROC counts)."""
    count = 0
    try:
        entries = os.scandir("/proc")
    except OSError:
        return 0
    with entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return count


def launcher_argv(
    python: str,
    argv: list[str],
    limits: dict[str, tuple[int, int]],
    uid: int | None = None,
    gid: int | None = None,
) -> list[str]:
    config = json.dumps({"limits": limits, "uid": uid, "gid": gid}, separators=(",", ":"))
    return [python, "-I", "-S", "-c", LAUNCHER, config, "--", *argv]
