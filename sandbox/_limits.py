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

import contextlib
import grp
import json
import os
import pwd
import random
import socket
from collections.abc import Iterator
from pathlib import Path

SANDBOX_UID = 65534
"""`nobody`: the uid a command runs as when the orchestrator is root and every uid of UID_POOL
is taken (or not mapped in this user namespace)."""
UID_POOL = range(65280, 65534)
"""The uids commands run as when the orchestrator is root, one per concurrent run, machine-wide:
RLIMIT_NPROC binds only below root and counts every task of a uid on the machine, so runs that
shared one uid would share one budget, and a candidate's fork bomb would starve the candidates
training beside it of threads. Debian reserves 65000-65533; a uid with tasks, a passwd or group
entry (systemd's DynamicUser range overlaps) is skipped. "Machine-wide" holds within one network
namespace (the abstract sockets that hold the uids live there): orchestrators in containers that
share the host's uids but not its network start their search at random places in the pool."""


def privileged() -> bool:
    """The orchestrator is root: namespaces need no user namespace, and the launcher drops the
    command to a uid of UID_POOL (`run_uid`)."""
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


def _mapped(uid: int) -> bool:
    """`uid` exists as a uid and as a gid in this process's user namespace (the launcher's
    setresuid and setresgid to it would work)."""
    for which in ("uid_map", "gid_map"):
        try:
            lines = Path(f"/proc/self/{which}").read_text().splitlines()
        except OSError:
            return uid == SANDBOX_UID
        ranges = [[int(field) for field in line.split()] for line in lines]
        if not any(inside <= uid < inside + count for inside, _, count in ranges):
            return False
    return True


def _unused(uid: int) -> bool:
    """No passwd or group entry names `uid`, and it has no tasks here."""
    for lookup in (pwd.getpwuid, grp.getgrgid):
        with contextlib.suppress(KeyError):
            lookup(uid)
            return False
    return _mapped(uid) and not task_count(uid)


@contextlib.contextmanager
def run_uid() -> Iterator[int]:
    """A uid of UID_POOL that no other run on this machine holds while the block runs (held by
    binding an abstract unix socket named after it, which the kernel releases when the holder
    exits, however it ends), with no tasks of its own; SANDBOX_UID when none is free."""
    start = random.randrange(len(UID_POOL))
    for uid in [*UID_POOL[start:], *UID_POOL[:start]]:
        hold = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            hold.bind(f"\0eureka-sandbox-uid-{uid}")
        except OSError:
            hold.close()
            continue
        if not _unused(uid):
            hold.close()
            continue
        try:
            yield uid
        finally:
            hold.close()
        return
    yield SANDBOX_UID


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
