"""The only place untrusted code is executed: a worker process with isolation and limits.

Small on purpose and importable without the rest of eureka. `run` starts a command

- in namespaces (`isolation="bwrap"`, bubblewrap, the default where it works; or
  `isolation="unshare"`, util-linux's `unshare`, where bwrap is missing): its own PID, network,
  IPC and UTS namespaces, no network at all, `/` read-only, the usual places of secrets
  (`/home`, `/root`, `/run`, `/var`, `/tmp`, ...) hidden, the working directory the only
  writable path that outlives the run (`_fs.plan`, the same for both); as an unprivileged uid
  of its own (`_limits.UID_POOL`) when the caller is root, else in a user namespace;
- with a clean environment (an allow-list: no API keys or tokens);
- under resource limits set in the child just before the command (CPU time, memory, file size,
  open files, processes, no core files) plus a cap on what it writes into its directory;
- in its own process group, killed as a whole at the wall-clock timeout.

`isolation="auto"` takes bwrap, else unshare, whichever works first here (each probed once);
where neither does (`"auto"` then warns loudly, or `isolation="none"`) only the environment,
the limits and the process group remain.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sandbox import _bwrap, _limits, _unshare

__all__ = [
    "INSTALL_HINTS",
    "MECHANISMS",
    "Isolation",
    "Outcome",
    "Policy",
    "SandboxUnavailable",
    "clean_environment",
    "isolation_status",
    "read_text",
    "resolve_isolation",
    "run",
]

Isolation = Literal["auto", "bwrap", "unshare", "none"]
MECHANISMS = ("bwrap", "unshare")
"""The isolating mechanisms, in the order `auto` tries them."""
_PROBES = {"bwrap": _bwrap.probe, "unshare": _unshare.probe}
INSTALL_HINTS = {
    "bwrap": "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)",
    "unshare": "install util-linux and allow user namespaces (sysctl kernel.unprivileged_userns_clone=1)",
}

PASSED_VARIABLES = ("PATH", "LANG", "LC_ALL", "TZ", "MUJOCO_GL", "PYOPENGL_PLATFORM", "CUDA_VISIBLE_DEVICES")
"""Variables copied from the parent; everything else (API keys, tokens) is dropped."""
ISOLATION_VARIABLE = "EUREKA_SANDBOX"
"""`auto` | `bwrap` | `unshare` | `none`: overrides a Policy's `auto` (how a user asks for `none`
explicitly, and how tests force a mechanism)."""
PID_NAMESPACE_VARIABLE = "EUREKA_PID_NAMESPACE"
"""Set to 1 in the environment of a command that runs in a PID namespace of its own (bwrap,
unshare): where `end_other_processes` may act."""
GiB = 1 << 30
MiB = 1 << 20


class SandboxUnavailable(RuntimeError):
    """An isolation mechanism was required but cannot be used on this machine."""


@dataclass(frozen=True)
class Policy:
    """Limits of one sandboxed run."""

    timeout_s: float = 3600.0
    """Wall-clock limit; past it the whole process group is killed."""
    threads: int = 1
    """Threads for BLAS/OpenMP inside the worker."""
    extra_env: dict[str, str] = field(default_factory=dict)
    """Non-secret variables the worker needs (set by the caller)."""
    isolation: Isolation = "auto"
    """`bwrap` or `unshare` (fail when unavailable), `none` (no namespaces; must be asked for),
    or `auto` (bwrap where it works, else unshare, else `none` with a warning; the
    EUREKA_SANDBOX variable overrides)."""
    read_paths: tuple[str, ...] = ()
    """Extra paths the command must be able to read (a task folder outside the repository);
    the interpreter, its venv and PYTHONPATH entries are always readable."""
    cpu_s: float | None = None
    """CPU-time limit of each process (RLIMIT_CPU); None: timeout x threads + 60 s."""
    memory_bytes: int | None = 8 * GiB
    """Data segment / heap limit of each process (RLIMIT_DATA; RLIMIT_AS would break torch)."""
    file_bytes: int | None = 512 * MiB
    """Largest file the command may write, its own output log included (RLIMIT_FSIZE)."""
    disk_bytes: int | None = 2 * GiB
    """Total the working directory may grow to during the run (checked every second)."""
    open_files: int = 1024
    """RLIMIT_NOFILE."""
    processes: int = 512
    """Processes and threads the command may add (RLIMIT_NPROC, which binds only when the
    command does not run as root: it runs as a uid of its own when the caller is root)."""

    def cpu_limit(self) -> int:
        return int(self.cpu_s if self.cpu_s is not None else self.timeout_s * max(1, self.threads) + 60)


@dataclass(frozen=True)
class Outcome:
    """How a sandboxed run ended."""

    returncode: int | None
    """Exit status; negative for a signal; None when it was killed at the timeout or over the
    disk limit."""
    timed_out: bool
    wall_time: float
    output_tail: str
    """The last lines the command printed (stdout and stderr)."""
    limit: str | None = None
    """One line when a resource limit ended the run or cut it short (CPU time, file size, disk,
    a kill by SIGKILL that was not the timeout); None otherwise."""
    isolation: str = "none"
    """What was used: `bwrap`, `unshare` or `none`."""

    @property
    def signal(self) -> int | None:
        """The signal that ended the command, if one did."""
        return -self.returncode if self.returncode is not None and self.returncode < 0 else None


_warned = False
_warn_lock = threading.Lock()


def resolve_isolation(requested: Isolation = "auto", warn: bool = True) -> str:
    """`bwrap`, `unshare` or `none` for a request; raises SandboxUnavailable for a mechanism
    asked for by name where it fails. `auto` without a working mechanism warns (once)."""
    if requested == "auto":
        override = os.environ.get(ISOLATION_VARIABLE, "auto").strip().lower() or "auto"
        if override not in ("auto", *MECHANISMS, "none"):
            raise SandboxUnavailable(f"{ISOLATION_VARIABLE}={override!r}: use auto, bwrap, unshare or none")
        requested = override  # type: ignore[assignment]
    if requested == "none":
        return "none"
    if requested in MECHANISMS:
        works, reason = isolation_status(requested)
        if not works:
            raise SandboxUnavailable(
                f"{requested} isolation was requested but is unavailable: {reason}. "
                f"{INSTALL_HINTS[requested].capitalize()}, or ask for 'auto' or for isolation "
                f"'none' explicitly ({ISOLATION_VARIABLE}=none)"
            )
        return requested
    reasons = []
    for name in MECHANISMS:
        works, reason = isolation_status(name)
        if works:
            return name
        reasons.append(reason)
    if warn:
        _warn_once("; ".join(reasons))
    return "none"


def _warn_once(reason: str) -> None:
    global _warned
    with _warn_lock:
        if _warned:
            return
        _warned = True
    bar = "!" * 78
    print(
        f"{bar}\nWARNING: the sandbox runs WITHOUT isolation: {reason}.\n"
        "Generated code can read your files and reach the network; only the clean environment,\n"
        "the resource limits and the timeout protect you. Install bubblewrap (apt-get install\n"
        "bubblewrap) or make util-linux's `unshare` work (user namespaces), or set\n"
        f"{ISOLATION_VARIABLE}=none to run like this without this warning. `eureka doctor` says more.\n{bar}",
        file=sys.stderr,
        flush=True,
    )


def isolation_status(mechanism: str = "bwrap") -> tuple[bool, str]:
    """(`mechanism` works here, why not) without starting a run; probed once, then cached."""
    return _PROBES[mechanism]()


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


def read_text(path: Path, max_bytes: int = 16 * MiB) -> str | None:
    """A file a sandboxed run wrote, read safely by the caller: None unless it is a regular
    file (not a symlink, FIFO or device) of at most `max_bytes`."""
    data = read_bytes(path, max_bytes)
    return None if data is None else data.decode("utf-8", "replace")


def read_bytes(path: Path, max_bytes: int = 16 * MiB) -> bytes | None:
    """`read_text`'s bytes, undecoded."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        return fh.read(max_bytes)


def end_other_processes(wait_s: float = 5.0) -> bool:
    """Called by the command itself, inside the sandbox: kill every other process of its PID
    namespace (what the code it ran left behind: a daemon could otherwise rewrite the files it
    is about to write) and wait until they are gone. False, doing nothing, outside a PID
    namespace of the sandbox's own (the command is PID 2 there, under the namespace's init, and
    the sandbox said so: elsewhere the other processes are not ours to kill)."""
    if os.environ.get(PID_NAMESPACE_VARIABLE) != "1" or os.getpid() != 2 or os.getppid() != 1:
        return False
    deadline = time.monotonic() + wait_s
    while True:
        others = [pid for pid in _live_pids() if pid not in (1, 2)]
        if not others:
            return True
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(others)} processes of the sandbox survived SIGKILL for {wait_s:g} s")
        for pid in others:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def _live_pids() -> list[int]:
    """The PIDs /proc lists with a thread that is not dead: a zombie waiting for the init to
    reap it is left out, a process whose main thread exited while its other threads run is not
    (SIGKILL to its PID ends them all)."""
    return [int(name) for name in os.listdir("/proc") if name.isdigit() and _has_live_thread(name)]


def _has_live_thread(pid: str) -> bool:
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False  # gone meanwhile
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X"):
            return True
    return False


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


def _namespace_init(info_fd: int) -> int | None:
    """The host PID of the run's PID-namespace init, from what bwrap (`--info-fd`) or the
    unshare init wrote to `info_fd`."""
    with contextlib.suppress(OSError):
        match = re.search(rb'"child-pid"\s*:\s*(\d+)', os.read(info_fd, 4096))
        return int(match.group(1)) if match else None
    return None


def _await_namespace(init_pid: int, grace_s: float = 10.0) -> None:
    """Return once the namespace's init is gone or a zombie: the kernel makes an exiting init
    kill and reap every other process of its namespace first, so nothing the worker started
    outlives `run`. bwrap reports the command's exit before its init has finished that (and a
    killed `unshare` leaves its init to die on its own). An
    init still there after `grace_s` is killed, and given `grace_s` more."""
    for last_try in (False, True):
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{init_pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                return
            if state in ("Z", "X"):
                return
            time.sleep(0.01)
        if not last_try:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(init_pid, signal.SIGKILL)


def _end(proc: subprocess.Popen[bytes], info_fd: int, life_fd: int = -1) -> None:
    """Kill what is left of a run and wait until all of it is gone, namespace included."""
    _kill_group(proc.pid)
    proc.wait()
    if life_fd >= 0:
        os.close(life_fd)
    if info_fd >= 0:
        init_pid = _namespace_init(info_fd)
        os.close(info_fd)
        if init_pid is not None:
            _await_namespace(init_pid)


def _open_log(log_path: Path) -> int:
    """The log, opened for appending without following a symlink a previous run planted."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(log_path, flags, 0o644)
    except OSError:
        if log_path.is_symlink() or (log_path.exists() and not log_path.is_file()):
            log_path.unlink()
            return os.open(log_path, flags, 0o644)
        raise


def _walk(workdir: Path) -> tuple[int, int]:
    """(bytes, entries) below `workdir`, without following symlinks."""
    total = entries = 0
    stack = [str(workdir)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    entries += 1
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        continue
        except OSError:
            continue
    return total, entries


def _sanitize(workdir: Path, owner: tuple[int, int] | None) -> None:
    """After a run: remove everything in `workdir` that is not a regular file or directory
    (symlinks, FIFOs, sockets, device nodes could make the caller read or write outside, or
    block it), and give the files back to the caller when the run was another uid."""
    for dirpath, dirnames, filenames in os.walk(workdir, followlinks=False):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                with contextlib.suppress(OSError):
                    os.unlink(path)
                continue
            if owner is not None:
                with contextlib.suppress(OSError):
                    os.lchown(path, *owner)
            if stat.S_ISDIR(info.st_mode):
                with contextlib.suppress(OSError):  # so the caller can always walk and clean it
                    os.chmod(path, stat.S_IMODE(info.st_mode) | stat.S_IRWXU)
        dirnames[:] = [d for d in dirnames if os.path.isdir(os.path.join(dirpath, d))]
    if owner is not None:
        with contextlib.suppress(OSError):
            os.lchown(workdir, *owner)


def _chown_tree(workdir: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(workdir, followlinks=False):
        for name in [*dirnames, *filenames]:
            with contextlib.suppress(OSError):
                os.lchown(os.path.join(dirpath, name), uid, gid)
    os.lchown(workdir, uid, gid)


def _rlimits(policy: Policy, base_tasks: int) -> dict[str, tuple[int, int]]:
    cpu = policy.cpu_limit()
    limits = {
        "RLIMIT_CPU": (cpu, cpu + 5),  # SIGXCPU first, SIGKILL 5 s later
        "RLIMIT_NOFILE": (policy.open_files, policy.open_files),
        "RLIMIT_CORE": (0, 0),
        "RLIMIT_NPROC": (base_tasks + policy.processes, base_tasks + policy.processes),
    }
    if policy.memory_bytes is not None:
        limits["RLIMIT_DATA"] = (policy.memory_bytes, policy.memory_bytes)
    if policy.file_bytes is not None:
        limits["RLIMIT_FSIZE"] = (policy.file_bytes, policy.file_bytes)
    return limits


def _describe_limit(
    policy: Policy, returncode: int | None, log_path: Path, disk_over: str | None
) -> str | None:
    if disk_over is not None:
        return disk_over
    if returncode is not None and returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU:
            return f"the worker used more than its CPU-time limit of {policy.cpu_limit()} s and was killed"
        if sig == signal.SIGKILL:
            return (
                "the worker was killed by SIGKILL (the CPU-time hard limit, out of memory, or a "
                "process it started); it used too much CPU time or memory, or its code killed it"
            )
        if sig == signal.SIGXFSZ:
            return f"the worker wrote a file larger than the limit of {_size(policy.file_bytes)}"
    if policy.file_bytes is not None:
        with contextlib.suppress(OSError):
            if log_path.stat().st_size >= policy.file_bytes:
                return f"the worker's output reached the file-size limit of {_size(policy.file_bytes)}"
    return None


def _size(n: int | None) -> str:
    if n is None:
        return "unlimited"
    return f"{n / GiB:g} GiB" if n >= GiB else f"{n / MiB:g} MiB"


def run(
    argv: list[str],
    workdir: Path,
    log_path: Path,
    policy: Policy,
    on_tick: Callable[[], None] | None = None,
) -> Outcome:
    """Run `argv` in `workdir`, output appended to `log_path`, under `policy`; `on_tick` is
    called about twice a second while it runs (progress display)."""
    isolation = resolve_isolation(policy.isolation)
    if isolation != "none" and _limits.privileged():
        with _limits.run_uid() as uid:  # a uid of its own: its own RLIMIT_NPROC budget
            return _run(argv, workdir, log_path, policy, on_tick, isolation, uid)
    return _run(argv, workdir, log_path, policy, on_tick, isolation, None)


def _run(
    argv: list[str],
    workdir: Path,
    log_path: Path,
    policy: Policy,
    on_tick: Callable[[], None] | None,
    isolation: str,
    uid: int | None,
) -> Outcome:
    """`run` with the mechanism chosen and, for a root caller, the uid the command runs as."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()
    env = clean_environment(workdir, policy)
    if isolation != "none":
        env[PID_NAMESPACE_VARIABLE] = "1"
    if uid is not None:  # a pool uid has no passwd entry: getpass.getuser() (torch asks) reads these
        env.update(USER="sandbox", LOGNAME="sandbox")
    owner: tuple[int, int] | None = None
    info_read = info_write = life_read = life_write = -1
    if isolation != "none":
        read_paths = [
            sys.prefix,
            sys.base_prefix,
            sys.exec_prefix,
            sys.base_exec_prefix,
            os.path.dirname(sys.executable),
            *env.get("PYTHONPATH", "").split(os.pathsep),
            *policy.read_paths,
            *(a for a in argv if os.path.isabs(a)),
        ]
        info_read, info_write = os.pipe()
        os.set_blocking(info_read, False)
        if isolation == "bwrap":
            command = _bwrap.build_args(workdir, env, read_paths, info_fd=info_write)
        else:  # unshare has no --die-with-parent: its init watches a pipe only we hold open
            life_read, life_write = os.pipe()
            command = _unshare.build_args(workdir, read_paths, info_fd=info_write, life_fd=life_read)
        if uid is not None:  # the pool uid is its own gid too
            info = workdir.stat()
            owner = (info.st_uid, info.st_gid)
            _chown_tree(workdir, uid, uid)
        base_tasks = _limits.task_count(uid) if uid is not None else 0
    else:  # no namespace ends the command with us: the launcher watches the same kind of pipe
        command = []
        base_tasks = _limits.task_count(os.getuid()) if hasattr(os, "getuid") else 0
        life_read, life_write = os.pipe()
    supervise = life_read if isolation == "none" else -1
    full = [
        *command,
        *_limits.launcher_argv(sys.executable, argv, _rlimits(policy, base_tasks), uid, uid, supervise),
    ]
    start = time.monotonic()
    disk_over: str | None = None
    log_fd = _open_log(log_path)
    try:
        proc = subprocess.Popen(
            full,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(fd for fd in (info_write, life_read) if fd >= 0),
        )
    except BaseException:
        for fd in (info_read, life_write):
            if fd >= 0:
                os.close(fd)
        _sanitize(workdir, owner)  # the caller gets its directory back
        raise
    finally:
        os.close(log_fd)
        for fd in (info_write, life_read):
            if fd >= 0:
                os.close(fd)
    timed_out = False
    returncode: int | None = None
    deadline = start + policy.timeout_s
    next_disk_check = start + 1.0
    try:
        while returncode is None:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                timed_out = True
                break
            if policy.disk_bytes is not None and now >= next_disk_check:
                next_disk_check = now + 1.0
                used, _ = _walk(workdir)
                if used > policy.disk_bytes:
                    disk_over = (
                        f"the worker wrote more than {_size(policy.disk_bytes)} into its directory "
                        "and was killed"
                    )
                    break
            try:
                returncode = proc.wait(timeout=min(0.5, remaining))
            except subprocess.TimeoutExpired:
                if on_tick is not None:
                    on_tick()
    except BaseException:  # Ctrl-C in the orchestrator: never leave a worker behind
        _end(proc, info_read, life_write)
        _sanitize(workdir, owner)
        raise
    _end(proc, info_read, life_write)  # whatever the worker left running dies with it
    if returncode is not None and returncode > 128:
        returncode = -(returncode - 128)  # the namespace's init (or launcher) reports signal N as 128 + N
    _sanitize(workdir, owner)
    return Outcome(
        returncode=None if (timed_out or disk_over) else returncode,
        timed_out=timed_out,
        wall_time=time.monotonic() - start,
        output_tail=_tail(log_path),
        limit=None if timed_out else _describe_limit(policy, returncode, log_path, disk_over),
        isolation=isolation,
    )


def python() -> str:
    """The interpreter workers run with (the orchestrator's own)."""
    return sys.executable
