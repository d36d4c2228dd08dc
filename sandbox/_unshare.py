"""Isolation by util-linux's `unshare`, for machines without bubblewrap: its command line, the
small init it starts inside the namespaces, and finding out once whether it works here.

`unshare` makes new PID, mount, network, IPC, UTS (and cgroup) namespaces, plus a user
namespace mapping the caller to root when the caller is not root. Its forked child, PID 1 of
the new PID namespace, is `SETUP` (Python's `-I -S` mode, stdlib only), which applies
`_fs.plan` with mount(2): every mount read-only in place, a fresh /proc, a minimal /dev, tmpfs
masks, the read paths and the working directory bound from file descriptors opened before
anything was masked. It then brings loopback up, sets the hostname, sets no_new_privs, and
forks the command as PID 2 with the capability bounding set cleared (only CAP_SETUID/SETGID
are left when the caller is root, for the launcher's switch to a pool uid). As init it reaps
orphans, exits with the command's status (128 + N for a signal, as bwrap does) -- the kernel
then kills whatever is left in the namespace -- and exits at once when the orchestrator is
gone (the `life` pipe's write end closes).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from sandbox import _fs, _limits
from sandbox._probe import Once, true_path, try_command

SETUP = r"""
import ctypes, fcntl, json, os, select, signal, socket, stat, struct, sys
cfg = json.loads(sys.argv[1])
argv = sys.argv[3:]
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
RDONLY, NOSUID, NODEV, NOEXEC, REMOUNT, BIND, REC, PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18


def fail(what, err):
    sys.stderr.write("sandbox setup (unshare) failed: %s: %s\n" % (what, os.strerror(err)))
    sys.stderr.flush()
    os._exit(125)


def enc(s):
    return None if s is None else s.encode()


def mount(src, dst, fstype, flags, data=None):
    if libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)) != 0:
        what = "remount" if flags & REMOUNT else "mount %s on" % (src or fstype)
        fail("%s %s" % (what, dst), ctypes.get_errno())


def bind_flags(path):
    # as bwrap's binds: nosuid, no device files; noexec stays if set (it is locked in a user namespace)
    return os.statvfs(path).f_flag & NOEXEC | NOSUID | NODEV


def remount(path, ro):
    mount(None, path, None, REMOUNT | BIND | bind_flags(path) | (RDONLY if ro else 0))


def unescape(s):
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mountpoints():
    with open("/proc/self/mountinfo") as fh:
        return [unescape(line.split()[4]) for line in fh]


def under(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def ro_tree(top, skip=(), tolerate=()):
    # every mount at or below `top` read-only; failures below `tolerate` (masked next) are ignored
    for point in sorted(set(mountpoints()), key=lambda p: (p.count("/"), p)):
        if not under(point, top) or any(under(point, s) for s in skip):
            continue
        try:
            flags = bind_flags(point)
        except OSError:
            continue
        if libc.mount(None, enc(point), None, REMOUNT | BIND | RDONLY | flags, None) != 0:
            err = ctypes.get_errno()
            if not any(under(point, t) for t in tolerate):
                fail("read-only remount of %s" % point, err)


def mountpoint_for(fd, dst):
    if os.path.lexists(dst):
        return
    if stat.S_ISDIR(os.fstat(fd).st_mode):
        os.mkdir(dst, 0o755)
    else:
        os.close(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


ops = cfg["ops"]
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
sources = {op[1] for op in ops if op[0] in ("ro-bind", "bind", "dev-bind-try") and op[1] != "/"}
sources |= {"/dev/" + n for n in DEV_NODES}
fds, errors = {}, {}
for src in sorted(sources):
    try:
        fds[src] = os.open(src, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        errors[src] = exc.errno
if cfg["info_fd"] >= 0:  # our PID as the host sees it, read before /proc is replaced
    os.write(cfg["info_fd"], json.dumps({"child-pid": int(os.readlink("/proc/self"))}).encode())
    os.close(cfg["info_fd"])

mount(None, "/", None, REC | PRIVATE)
masked = [op[1] for op in ops if op[0] in ("tmpfs", "proc", "dev")]
late_ro = []
for op in ops:
    kind, dst = op[0], op[-1] if op[0] in ("ro-bind", "bind", "dev-bind-try") else op[1]
    if kind == "ro-bind" and op[1] == "/":
        ro_tree("/", skip=("/proc", "/dev"), tolerate=masked)
    elif kind == "proc":
        mount("proc", dst, "proc", NOSUID | NODEV | NOEXEC)
    elif kind == "dev":
        mount("tmpfs", dst, "tmpfs", NOSUID | NODEV, "mode=0755,size=1m")
        for name in DEV_NODES:
            fd = fds.get("/dev/" + name)
            if fd is not None:
                mountpoint_for(fd, dst + "/" + name)
                mount("/proc/self/fd/%d" % fd, dst + "/" + name, None, BIND)
        os.mkdir(dst + "/shm")
        mount("tmpfs", dst + "/shm", "tmpfs", NOSUID | NODEV, "mode=1777,size=%d" % cfg["tmp_size"])
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
            os.symlink(target, dst + "/" + name)
        late_ro.append(dst)
    elif kind == "tmpfs":
        mount("tmpfs", dst, "tmpfs", NOSUID | NODEV, "mode=%s,size=%s" % (op[2], op[3]))
    elif kind == "dir":
        if not os.path.isdir(dst):
            os.mkdir(dst)
        os.chmod(dst, int(op[2], 8))
    elif kind == "remount-ro":
        remount(dst, True)
    else:  # ro-bind, bind, dev-bind-try
        fd = fds.get(op[1])
        if fd is None:
            if kind == "dev-bind-try":
                continue
            fail("bind %s" % op[1], errors[op[1]])
        mountpoint_for(fd, dst)
        mount("/proc/self/fd/%d" % fd, dst, None, BIND | REC)
        if kind == "ro-bind":
            ro_tree(dst)
        elif kind == "bind":
            remount(dst, False)
for path in late_ro:
    remount(path, True)
for fd in fds.values():
    os.close(fd)

socket.sethostname(cfg["hostname"])
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # loopback up, as bwrap does
    fcntl.ioctl(s, 0x8914, struct.pack("16sH22s", b"lo", 0x1 | 0x8 | 0x40, b""))  # SIOCSIFFLAGS
os.chdir(cfg["chdir"])
if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
    fail("no_new_privs", ctypes.get_errno())

wake_r, wake_w = os.pipe()
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *_: None)
life = cfg["life_fd"]
child = os.fork()
if child == 0:
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in (wake_r, wake_w, life):
        if fd >= 0:
            os.close(fd)
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        last = int(fh.read())
    for cap in range(last + 1):  # PR_CAPBSET_DROP; 6, 7: CAP_SETGID, CAP_SETUID
        if cap not in cfg["keep_caps"] and libc.prctl(24, cap, 0, 0, 0) != 0:
            fail("dropping capability %d" % cap, ctypes.get_errno())
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        sys.stderr.write("sandbox: cannot run %s: %s\n" % (argv[0], exc.strerror))
        os._exit(127)
while True:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            os._exit(125)
        if pid == 0:
            break
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)
    ready, _, _ = select.select([wake_r] + ([life] if life >= 0 else []), [], [])
    if life in ready:
        os._exit(137)  # the orchestrator is gone: the kernel takes the namespace down with us
    os.read(wake_r, 4096)
"""


def unshare_path() -> str | None:
    return shutil.which("unshare")


def namespace_args() -> list[str]:
    """Root needs no user namespace (the launcher drops the command to a pool uid); anyone else
    is mapped to root in a new one, which the command leaves with no capabilities."""
    args = ["--pid", "--fork", "--kill-child", "--mount", "--net", "--ipc", "--uts"]
    if os.path.exists("/proc/self/ns/cgroup"):
        args.append("--cgroup")
    if not _limits.privileged():
        args += ["--user", "--map-root-user"]
    return args


def build_args(workdir: Path, read_paths: Iterable[str], info_fd: int = -1, life_fd: int = -1) -> list[str]:
    """`unshare` and SETUP (without the command) for a run in `workdir`; SETUP writes
    `{"child-pid": N}` (itself, the PID namespace's init, as the host sees it) to `info_fd`
    and exits when `life_fd`, a pipe's read end, reaches end of file."""
    exe = unshare_path()
    assert exe is not None
    config = {
        "ops": _fs.plan(workdir, read_paths),
        "chdir": str(workdir.resolve()),
        "info_fd": info_fd,
        "life_fd": life_fd,
        "hostname": "sandbox",
        "tmp_size": _fs.TMP_SIZE,
        "keep_caps": [6, 7] if _limits.privileged() else [],
    }
    return [exe, *namespace_args(), "--", sys.executable, "-I", "-S", "-c", SETUP, json.dumps(config), "--"]


def _find() -> tuple[bool, str]:
    """(works, reason): `unshare` is installed and SETUP can build a sandbox here."""
    if not sys.platform.startswith("linux"):
        return False, f"unshare needs Linux (this is {sys.platform})"
    if unshare_path() is None:
        return False, "the `unshare` executable (package util-linux) is not installed"
    true = true_path()
    with tempfile.TemporaryDirectory(prefix="eureka-probe-") as tmp:
        work = Path(tmp)
        return try_command("unshare", [*build_args(work, [sys.prefix, sys.base_prefix]), true], work)


probe = Once(_find)
"""(works, reason) for unshare, found out once."""
