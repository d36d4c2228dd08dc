"""Resource limits, applied inside the sandbox by a tiny launcher just before the real command.

The launcher (`python -I -S -c LAUNCHER config -- argv`) switches to the sandbox uid when asked,
sets the rlimits and execs the command, so the limits cover exactly the untrusted process and
its children. It runs in the child, not as a `preexec_fn`, so it is safe in a threaded caller.

Without a namespace (isolation `none`) nothing else would end the command when the orchestrator
dies (it runs in its own session), so there the launcher stays as a small supervisor: it forks
the command and waits for it or for the `life` pipe's end of file (the orchestrator is gone),
then kills its whole process group; it exits with the command's status (128 + N for a signal, as
the namespaces' inits do).
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
life = cfg.get("life_fd", -1)
if life < 0 or not hasattr(os, "pidfd_open"):
    os.execvp(argv[0], argv)
import select, signal
child = os.fork()
if child == 0:
    os.close(life)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        sys.stderr.write("sandbox: cannot run %s: %s\n" % (argv[0], exc.strerror))
        os._exit(127)
try:
    done = [os.pidfd_open(child)]
except OSError:  # kernel < 5.3 or a seccomp profile without it: poll for the child instead
    done = []
while True:
    ready, _, _ = select.select([life] + done, [], [], None if done else 0.2)
    if life in ready:  # the orchestrator is gone: so is everything this run started
        os.killpg(0, signal.SIGKILL)
    pid, status = os.waitpid(child, 0 if done and done[0] in ready else os.WNOHANG)
    if pid:
        code = os.waitstatus_to_exitcode(status)
        os._exit(128 - code if code < 0 else code)
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
    life_fd: int = -1,
) -> list[str]:
    """The launcher's command line; with `life_fd` (a pipe's read end that only the orchestrator
    holds the other end of) it supervises the command and ends it when the orchestrator dies."""
    config = json.dumps({"limits": limits, "uid": uid, "gid": gid, "life_fd": life_fd}, separators=(",", ":"))
    return [python, "-I", "-S", "-c", LAUNCHER, config, "--", *argv]
