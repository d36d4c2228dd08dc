"""The worker process: isolation (bubblewrap, or util-linux's unshare), resource limits, a clean
environment and a wall-clock timeout that kills everything it started.

Each limit is first shown to hold on a harmless, bounded case here; the hostile corpus
(test_hostile.py) relies on these proofs before it runs anything that would hurt without them.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import FAKE_KEY, FIXTURES, REPO

import sandbox
from sandbox import _bwrap, _limits, _unshare

STATUS = {name: sandbox.isolation_status(name) for name in sandbox.MECHANISMS}
BWRAP, WHY_NOT = STATUS["bwrap"]
ISOLATED = [
    pytest.param(name, id=name, marks=pytest.mark.skipif(not works, reason=f"{name} unavailable: {why}"))
    for name, (works, why) in STATUS.items()
]
"""The isolating mechanisms, each skipped where it does not work."""
MODES = [pytest.param("none", id="none"), *ISOLATED]
IS_ROOT = os.geteuid() == 0


def _run(
    code: str, tmp_path: Path, timeout: float = 30.0, isolation: str = "bwrap", **limits: object
) -> sandbox.Outcome:
    if isolation in STATUS and not STATUS[isolation][0]:
        pytest.skip(f"{isolation} unavailable: {STATUS[isolation][1]}")
    return sandbox.run(
        [sys.executable, "-c", code],
        tmp_path / "work",
        tmp_path / "work.log",
        sandbox.Policy(timeout_s=timeout, isolation=isolation, **limits),  # type: ignore[arg-type]
    )


def _host_processes_with(marker: str) -> list[int]:
    """Live (non-zombie) processes on this machine whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


# ---------------------------------------------------------------- both modes


@pytest.mark.parametrize("isolation", MODES)
def test_environment_has_no_secrets(tmp_path: Path, isolation: str) -> None:
    assert os.environ["OPENAI_API_KEY"] == FAKE_KEY
    out = _run("import os; print(sorted(os.environ.items()))", tmp_path, isolation=isolation)
    assert out.returncode == 0 and out.isolation == isolation
    assert FAKE_KEY not in out.output_tail
    assert "OPENAI_API_KEY" not in out.output_tail
    assert f"('HOME', '{tmp_path / 'work'}')" in out.output_tail


@pytest.mark.parametrize("isolation", MODES)
def test_timeout_kills_everything_the_command_started(tmp_path: Path, isolation: str) -> None:
    marker = f"31{uuid.uuid4().int % 10**6}.5"
    code = (
        "import subprocess, time\n"
        f"subprocess.Popen(['sleep', '{marker}'])\n"
        "print('started', flush=True)\n"
        "time.sleep(300)\n"
    )
    start = time.monotonic()
    out = _run(code, tmp_path, timeout=3.0, isolation=isolation)
    assert out.timed_out and out.returncode is None and out.limit is None
    assert "started" in out.output_tail
    assert time.monotonic() - start < 10
    time.sleep(0.2)
    assert _host_processes_with(f"sleep {marker}") == []


@pytest.mark.parametrize("isolation", MODES)
def test_output_tail_and_exit_code(tmp_path: Path, isolation: str) -> None:
    out = _run(
        "import sys; print('x' * 10000); print('last line'); sys.exit(3)", tmp_path, isolation=isolation
    )
    assert out.returncode == 3 and not out.timed_out and out.limit is None
    assert out.output_tail.endswith("last line\n")
    assert len(out.output_tail) <= 4000


def test_progress_callback_is_called_while_running(tmp_path: Path) -> None:
    ticks: list[float] = []
    sandbox.run(
        [sys.executable, "-c", "import time; time.sleep(1.6)"],
        tmp_path / "w",
        tmp_path / "w.log",
        sandbox.Policy(timeout_s=30),
        on_tick=lambda: ticks.append(time.monotonic()),
    )
    assert len(ticks) >= 2


# ---------------------------------------------------------------- limits (both modes)


@pytest.mark.parametrize("isolation", MODES)
def test_file_size_limit_stops_a_big_write_and_caps_the_log(tmp_path: Path, isolation: str) -> None:
    code = (
        "import sys\n"
        "try:\n"
        "    with open('big.bin', 'wb') as fh:\n"
        "        for _ in range(8):\n"
        "            fh.write(b'x' * (1 << 20))\n"
        "except OSError as exc:\n"
        "    print('write stopped:', exc, flush=True)\n"
        "for _ in range(8):\n"
        "    sys.stdout.write('y' * (1 << 20))\n"
    )
    out = _run(code, tmp_path, isolation=isolation, file_bytes=2 << 20)
    assert (tmp_path / "work/big.bin").stat().st_size == 2 << 20
    assert "write stopped: [Errno 27] File too large" in (tmp_path / "work.log").read_text()
    assert (tmp_path / "work.log").stat().st_size == 2 << 20
    assert out.returncode != 0
    assert out.limit == "the worker's output reached the file-size limit of 2 MiB"


@pytest.mark.parametrize("isolation", MODES)
def test_memory_limit_stops_a_big_allocation(tmp_path: Path, isolation: str) -> None:
    # Address space is only reserved (torch.empty, bytes): nothing is touched, so this is
    # harmless even where the limit would not hold.
    code = (
        "import torch\n"
        "print('torch imports under the limit', flush=True)\n"
        "try:\n"
        "    torch.empty(3 << 30, dtype=torch.uint8)\n"
        "    print('torch allocation succeeded')\n"
        "except RuntimeError as exc:\n"
        "    print('torch allocation refused:', str(exc).splitlines()[0][:80])\n"
        "try:\n"
        "    bytes(3 << 30)\n"
        "    print('bytes allocation succeeded')\n"
        "except MemoryError:\n"
        "    print('MemoryError')\n"
    )
    out = _run(code, tmp_path, isolation=isolation, memory_bytes=2 << 30)
    assert out.returncode == 0, out.output_tail
    assert "torch imports under the limit" in out.output_tail
    assert "torch allocation refused" in out.output_tail
    assert "MemoryError" in out.output_tail


@pytest.mark.parametrize("isolation", MODES)
def test_cpu_limit_kills_a_busy_loop(tmp_path: Path, isolation: str) -> None:
    out = _run("while True:\n    pass\n", tmp_path, timeout=30, isolation=isolation, cpu_s=1)
    assert not out.timed_out
    assert out.signal == 24  # SIGXCPU
    assert out.limit == "the worker used more than its CPU-time limit of 1 s and was killed"
    assert out.wall_time < 10


@pytest.mark.parametrize("isolation", MODES)
def test_limits_cannot_be_raised_and_open_files_are_capped(tmp_path: Path, isolation: str) -> None:
    if isolation == "none" and IS_ROOT:
        pytest.skip("root may raise its own limits; only isolation (as an unprivileged uid) holds them")
    code = (
        "import resource\n"
        "try:\n"
        "    resource.setrlimit(resource.RLIMIT_DATA, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
        "    print('raised')\n"
        "except (ValueError, OSError) as exc:\n"
        "    print('refused:', exc)\n"
        "print(resource.getrlimit(resource.RLIMIT_CORE), resource.getrlimit(resource.RLIMIT_NOFILE))\n"
        "files = []\n"
        "try:\n"
        "    for _ in range(100):\n"
        "        files.append(open('/dev/null'))\n"
        "except OSError as exc:\n"
        "    print('open stopped:', exc.errno)\n"
    )
    out = _run(code, tmp_path, isolation=isolation, open_files=32)
    assert "refused: not allowed to raise maximum limit" in out.output_tail
    assert "(0, 0) (32, 32)" in out.output_tail
    assert "open stopped: 24" in out.output_tail  # EMFILE


@pytest.mark.parametrize("isolation", MODES)
def test_disk_limit_kills_a_run_that_fills_its_directory(tmp_path: Path, isolation: str) -> None:
    code = (
        "import time\n"
        "for i in range(64):\n"
        "    with open(f'f{i}.bin', 'wb') as fh:\n"
        "        fh.write(b'z' * (1 << 20))\n"
        "    time.sleep(0.1)\n"
    )
    out = _run(code, tmp_path, isolation=isolation, disk_bytes=8 << 20)
    assert out.returncode is None and not out.timed_out
    assert out.limit == "the worker wrote more than 8 MiB into its directory and was killed"
    assert len(list((tmp_path / "work").glob("f*.bin"))) < 32


# ---------------------------------------------------------------- namespaces (bwrap and unshare)


@pytest.mark.parametrize("isolation", ISOLATED)
def test_pid_namespace_contains_detached_processes(tmp_path: Path, isolation: str) -> None:
    """The harmless proof that nothing outlives a run: daemons that left the process group
    and the session are gone by the time `run` returns (it waits for the namespace's init to
    have reaped them, which bwrap does not), and the command's parent is that init."""
    marker = f"32{uuid.uuid4().int % 10**6}.5"
    code = (
        "import os, subprocess\n"
        "for _ in range(100):\n"
        f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
        "print('pid', os.getpid(), 'ppid', os.getppid(), flush=True)\n"
    )
    out = _run(code, tmp_path, isolation=isolation)
    assert out.returncode == 0 and not out.timed_out and out.isolation == isolation
    assert "pid 2 ppid 1" in out.output_tail
    assert _host_processes_with(f"sleep {marker}") == []


@pytest.mark.parametrize("isolation", ISOLATED)
def test_the_command_can_end_every_other_process_of_its_namespace(tmp_path: Path, isolation: str) -> None:
    """`end_other_processes`, as the worker calls it before it writes a result: the processes
    its code left running (detached, each in a session of its own) are gone when it returns."""
    marker = f"33{uuid.uuid4().int % 10**6}.5"
    code = (
        "import os, subprocess, sandbox\n"
        "for _ in range(5):\n"
        f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
        "print('ended', sandbox.end_other_processes(), flush=True)\n"
        "print('left', [p for p in sandbox._live_pids() if p not in (1, 2)], flush=True)\n"
    )
    out = _run(code, tmp_path, isolation=isolation, extra_env={"PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.output_tail
    assert "ended True" in out.output_tail and "left []" in out.output_tail


def test_ending_other_processes_is_refused_outside_a_namespace_of_its_own(tmp_path: Path) -> None:
    """Not in this process (no PID namespace), nor in a command run with no isolation (its
    neighbours are the machine's)."""
    assert sandbox.end_other_processes() is False
    code = "import sandbox\nprint('ended', sandbox.end_other_processes(), flush=True)\n"
    out = _run(code, tmp_path, isolation="none", extra_env={"PYTHONPATH": str(REPO)})
    assert "ended False" in out.output_tail


@pytest.mark.parametrize("isolation", ISOLATED)
def test_signals_cannot_reach_outside_the_pid_namespace(tmp_path: Path, isolation: str) -> None:
    # kill(-1) is only sent from inside a fresh PID namespace (pid < 50), proven just above.
    marker = f"33{uuid.uuid4().int % 10**6}.5"
    code = (
        "import os, signal, subprocess\n"
        f"child = subprocess.Popen(['sleep', '{marker}'])\n"
        "assert os.getpid() < 50 and os.getppid() == 1, 'not in a fresh PID namespace'\n"
        "try:\n"
        "    os.kill(os.getppid(), signal.SIGKILL)\n"
        "except PermissionError:\n"
        "    pass\n"
        "print('parent survived', flush=True)\n"
        "os.kill(-1, signal.SIGKILL)  # everything it may signal but itself\n"
        "print('child', child.wait(), flush=True)\n"
    )
    out = _run(code, tmp_path, isolation=isolation)
    assert out.returncode == 0, out.output_tail
    assert "parent survived\nchild -9\n" in out.output_tail
    assert _host_processes_with(f"sleep {marker}") == []


@pytest.mark.parametrize("isolation", ISOLATED)
def test_network_is_unreachable(tmp_path: Path, isolation: str) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    port = server.getsockname()[1]
    code = (
        "import socket\n"
        f"for host, port in [('127.0.0.1', {port}), ('1.1.1.1', 53)]:\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=3)\n"
        "        print(host, 'connected')\n"
        "    except OSError as exc:\n"
        "        print(host, 'failed:', exc)\n"
        "print(sorted(name for _, name in socket.if_nameindex()), socket.gethostname())\n"
    )
    out = _run(code, tmp_path, isolation=isolation)
    with pytest.raises(BlockingIOError):
        server.accept()
    server.close()
    assert "127.0.0.1 failed: [Errno 111] Connection refused" in out.output_tail
    assert "1.1.1.1 failed: [Errno 101] Network is unreachable" in out.output_tail
    assert "['lo'] sandbox" in out.output_tail


@pytest.mark.parametrize("isolation", ISOLATED)
def test_filesystem_is_read_only_except_the_workdir(tmp_path: Path, isolation: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("CANARY-SECRET")
    targets = [str(tmp_path / "escaped.txt"), str(REPO / "escaped.txt"), "/etc/escaped.txt", "/escaped.txt"]
    code = (
        "import os\n"
        f"for path in {targets!r}:\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError as exc:\n"
        "        print('refused', path, exc.strerror)\n"
        "open('inside.txt', 'w').write('ok')\n"
        "open('/tmp/scratch.txt', 'w').write('scratch')\n"
        "print('parent', 'readable' if os.path.exists('../reward.py') else 'hidden')\n"
        f"for path in [{str(secret)!r}, '/etc/shadow']:\n"
        "    try:\n"
        "        print('read', path, repr(open(path).read()[:20]))\n"
        "    except OSError as exc:\n"
        "        print('unreadable', path, exc.strerror)\n"
        "print('root holds', sorted(os.listdir('/root')) if os.path.isdir('/root') else None)\n"
        "print('dev holds', sorted(os.listdir('/dev')))\n"
        "for path in ['/dev/null', '/dev/x', '/run/x']:\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError as exc:\n"
        "        print('refused', path, exc.strerror)\n"
    )
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    (candidate / "reward.py").write_text("REWARD SOURCE")
    out = sandbox.run(
        [sys.executable, "-c", code],
        candidate / "work",
        candidate / "work.log",
        sandbox.Policy(timeout_s=30, isolation=isolation),  # type: ignore[arg-type]
    )
    assert out.returncode == 0, out.output_tail
    log = out.output_tail
    assert f"refused {tmp_path / 'escaped.txt'}" in log  # /tmp is a private tmpfs in there
    # the checkout is read-only in there (or hidden with the rest of /tmp when it lies under /tmp)
    assert f"refused {REPO / 'escaped.txt'}" in log
    if not REPO.resolve().is_relative_to("/tmp"):
        assert f"refused {REPO / 'escaped.txt'} Read-only file system" in log
    assert "refused /etc/escaped.txt Read-only file system" in log
    assert "refused /escaped.txt Read-only file system" in log
    assert "parent hidden" in log  # only the working directory is shown: inputs are copied in
    assert "CANARY-SECRET" not in log
    assert f"unreadable {secret} No such file or directory" in log
    assert "unreadable /etc/shadow" in log
    assert "wrote /dev/null" in log
    assert "refused /dev/x" in log and "refused /run/x" in log
    assert {"null", "zero", "urandom"} <= set(eval(log.split("dev holds ")[1].splitlines()[0]))
    for target in targets:
        assert not Path(target).exists(), target
    assert not Path("/tmp/scratch.txt").exists()
    assert (candidate / "work/inside.txt").read_text() == "ok"
    assert secret.read_text() == "CANARY-SECRET"


@pytest.mark.parametrize("isolation", ISOLATED)
@pytest.mark.skipif(not IS_ROOT, reason="the uid switch applies when the caller is root")
def test_root_caller_runs_the_command_as_an_unprivileged_uid(tmp_path: Path, isolation: str) -> None:
    code = (
        "import os, getpass\n"
        "print('uid', os.getuid(), os.geteuid(), os.getgroups())\n"
        "print('user', getpass.getuser())\n"
        "print([ln for ln in open('/proc/self/status') if ln.startswith(('CapEff', 'NoNewPrivs'))])\n"
        "open('made.txt', 'w').write('x')\n"
    )
    out = _run(code, tmp_path, isolation=isolation)
    uid = int(out.output_tail.split("uid ")[1].split()[0])
    assert uid in _limits.UID_POOL and f"uid {uid} {uid} []" in out.output_tail, out.output_tail
    assert "user sandbox" in out.output_tail  # no passwd entry, yet getpass works (torch asks it)
    assert "CapEff:\\t0000000000000000" in out.output_tail and "NoNewPrivs:\\t1" in out.output_tail
    # the caller gets its files back
    assert (tmp_path / "work/made.txt").stat().st_uid == os.getuid()
    assert (tmp_path / "work").stat().st_uid == os.getuid()


@pytest.mark.parametrize("isolation", ISOLATED)
def test_process_limit_stops_a_bounded_fork_loop(tmp_path: Path, isolation: str) -> None:
    code = (
        "import os, time\n"
        "made = 0\n"
        "try:\n"
        "    for _ in range(200):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(20)\n"
        "            os._exit(0)\n"
        "        made += 1\n"
        "except OSError as exc:\n"
        "    print('fork stopped:', exc.strerror, flush=True)\n"
        "print('made', made, flush=True)\n"
    )
    out = _run(code, tmp_path, isolation=isolation, processes=40)
    assert "fork stopped: Resource temporarily unavailable" in out.output_tail
    made = int(out.output_tail.split("made ")[1].split()[0])
    assert 0 < made <= 40


def test_runs_at_once_hold_distinct_uids_of_the_pool() -> None:
    with _limits.run_uid() as first, _limits.run_uid() as second, _limits.run_uid() as third:
        assert len({first, second, third}) == 3 and {first, second, third} <= set(_limits.UID_POOL)


@pytest.mark.parametrize("isolation", ISOLATED)
@pytest.mark.skipif(not IS_ROOT, reason="the uid switch applies when the caller is root")
def test_a_run_that_fills_its_process_budget_leaves_a_running_neighbour_its_own(
    tmp_path: Path, isolation: str
) -> None:
    """RLIMIT_NPROC counts a uid's tasks machine-wide. Runs that shared one uid shared one budget:
    a candidate's fork loop, started while another candidate trained, left that one no threads
    (MuJoCo's compiler then failed with "unknown exception"). Each run has a uid of its own."""
    neighbour = (
        "import os, threading, time\n"
        "print('waiting', flush=True)\n"
        "while not os.path.exists('go'):\n"
        "    time.sleep(0.05)\n"
        "stop, started = threading.Event(), 0\n"
        "try:\n"
        "    for _ in range(30):\n"
        "        threading.Thread(target=stop.wait).start()\n"
        "        started += 1\n"
        "except RuntimeError as exc:\n"
        "    print('refused:', exc, flush=True)\n"
        "stop.set()\n"
        "print('uid', os.getuid(), 'threads', started, flush=True)\n"
    )
    filler = (  # the bounded fork loop of test_process_limit_stops_a_bounded_fork_loop, held
        "import os, time\n"
        "made = 0\n"
        "try:\n"
        "    for _ in range(100):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        made += 1\n"
        "except OSError as exc:\n"
        "    print('fork stopped:', exc.strerror, flush=True)\n"
        "print('uid', os.getuid(), 'made', made, flush=True)\n"
        "open('held', 'w').close()\n"
        "while not os.path.exists('release'):\n"
        "    time.sleep(0.05)\n"
    )

    def start(name: str, code: str, processes: int) -> concurrent.futures.Future[sandbox.Outcome]:
        policy = sandbox.Policy(timeout_s=60, isolation=isolation, processes=processes)  # type: ignore[arg-type]
        argv = [sys.executable, "-c", code]
        return pool.submit(sandbox.run, argv, tmp_path / name, tmp_path / f"{name}.log", policy)

    def wait_for(ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 45
        while not ready():
            assert time.monotonic() < deadline, f"{what} never happened"
            time.sleep(0.05)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        running = start("neighbour", neighbour, processes=40)
        wait_for(
            lambda: "waiting" in (sandbox.read_text(tmp_path / "neighbour.log") or ""),
            "the neighbour's start",
        )
        filling = start("filler", filler, processes=20)
        try:
            wait_for((tmp_path / "filler/held").exists, "the filler's fork loop")
            (tmp_path / "neighbour/go").touch()
            beside = running.result(timeout=60)
        finally:
            (tmp_path / "filler/release").touch()
        full = filling.result(timeout=60)
    assert "fork stopped: Resource temporarily unavailable" in full.output_tail, full.output_tail
    assert 0 < int(full.output_tail.split("made ")[1].split()[0]) <= 20
    assert "threads 30" in beside.output_tail, beside.output_tail
    assert full.output_tail.split("uid ")[1].split()[0] != beside.output_tail.split("uid ")[1].split()[0]


@pytest.mark.parametrize("isolation", ISOLATED)
def test_links_and_special_files_are_removed_after_the_run(tmp_path: Path, isolation: str) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text("untouched")
    code = (
        "import os\n"
        f"os.symlink({str(canary)!r}, 'metrics.json')\n"
        "os.symlink('/etc/passwd', 'job.json')\n"
        "os.mkfifo('fifo')\n"
        "os.mkdir('sub')\n"
        "open('sub/keep.txt', 'w').write('kept')\n"
        f"os.symlink({str(tmp_path)!r}, 'sub/dir_link')\n"
    )
    out = _run(code, tmp_path, isolation=isolation)
    assert out.returncode == 0, out.output_tail
    work = tmp_path / "work"
    assert sorted(p.name for p in work.rglob("*")) == ["keep.txt", "sub", "tmp"]
    assert (work / "sub/keep.txt").read_text() == "kept"
    assert canary.read_text() == "untouched"
    assert sandbox.read_text(work / "sub/keep.txt") == "kept"


def test_the_log_is_never_written_through_a_symlink(tmp_path: Path) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text("untouched")
    (tmp_path / "work").mkdir()
    (tmp_path / "work.log").symlink_to(canary)
    out = _run("print('hello')", tmp_path, isolation="none")
    assert out.returncode == 0
    assert canary.read_text() == "untouched"
    assert (tmp_path / "work.log").read_text() == "hello\n"


def test_read_text_refuses_links_fifos_and_big_files(tmp_path: Path) -> None:
    (tmp_path / "ok.json").write_text("{}")
    (tmp_path / "link.json").symlink_to(tmp_path / "ok.json")
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "big.json").write_bytes(b"x" * 2048)
    assert sandbox.read_text(tmp_path / "ok.json") == "{}"
    assert sandbox.read_text(tmp_path / "link.json") is None
    assert sandbox.read_text(tmp_path / "fifo.json") is None
    assert sandbox.read_text(tmp_path / "big.json", max_bytes=1024) is None
    assert sandbox.read_text(tmp_path / "missing.json") is None


# ---------------------------------------------------------------- choosing the mode


def test_without_bwrap_auto_takes_unshare_and_it_can_be_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if not STATUS["unshare"][0]:
        pytest.skip(f"unshare unavailable: {STATUS['unshare'][1]}")
    monkeypatch.setattr(_bwrap.probe, "result", (False, "the `bwrap` executable is not installed"))
    monkeypatch.setattr(sandbox, "_warned", False)
    monkeypatch.delenv(sandbox.ISOLATION_VARIABLE, raising=False)
    assert _run("pass", tmp_path, isolation="auto").isolation == "unshare"
    assert capsys.readouterr().err == ""  # isolated: no warning
    monkeypatch.setattr(_bwrap.probe, "result", STATUS["bwrap"])
    monkeypatch.setenv(sandbox.ISOLATION_VARIABLE, "unshare")
    assert sandbox.resolve_isolation("auto") == "unshare"
    assert _run("pass", tmp_path, isolation="auto").isolation == "unshare"


def _path_without(tmp_path: Path, hidden: str) -> str:
    """This PATH as one folder of links to everything on it except `hidden`: a machine where
    that program is not installed."""
    folder = tmp_path / f"path-without-{hidden}"
    folder.mkdir()
    for entry in os.environ["PATH"].split(os.pathsep):
        with contextlib.suppress(OSError):
            for program in Path(entry).iterdir():
                link = folder / program.name
                if program.name != hidden and not link.exists() and os.access(program, os.X_OK):
                    link.symlink_to(program)
    return str(folder)


def test_a_machine_without_bwrap_on_path_isolates_with_unshare(tmp_path: Path) -> None:
    """No probe patched: a fresh process whose PATH has no `bwrap` finds that out itself, and
    `auto` takes unshare, quietly, with the command as PID 2 of its own namespace."""
    if not STATUS["unshare"][0]:
        pytest.skip(f"unshare unavailable: {STATUS['unshare'][1]}")
    check = (
        "import shutil, sys\nfrom pathlib import Path\nimport sandbox\n"
        "print('which', shutil.which('bwrap'), sandbox.isolation_status('bwrap')[1])\n"
        "print('auto', sandbox.resolve_isolation('auto'))\n"
        "out = sandbox.run([sys.executable, '-c', 'import os; print(os.getpid(), os.getppid())'], "
        f"Path({str(tmp_path / 'w')!r}), Path({str(tmp_path / 'w.log')!r}), sandbox.Policy(timeout_s=60))\n"
        "print('ran', out.isolation, out.returncode, out.output_tail.strip())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != sandbox.ISOLATION_VARIABLE}
    env.update(PATH=_path_without(tmp_path, "bwrap"), PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "which None the `bwrap` executable (package bubblewrap) is not installed" in done.stdout
    assert "auto unshare" in done.stdout and "ran unshare 0 2 1" in done.stdout, done.stdout
    assert "WARNING" not in done.stderr


def test_fallback_warns_once_and_a_mechanism_can_be_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_bwrap.probe, "result", (False, "the `bwrap` executable is not installed"))
    monkeypatch.setattr(_unshare.probe, "result", (False, "`unshare` fails here (Operation not permitted)"))
    monkeypatch.setattr(sandbox, "_warned", False)
    monkeypatch.delenv(sandbox.ISOLATION_VARIABLE, raising=False)
    first = _run("print('ran')", tmp_path, isolation="auto")
    second = _run("print('ran')", tmp_path, isolation="auto")
    assert first.isolation == second.isolation == "none" and "ran" in second.output_tail
    err = capsys.readouterr().err
    assert err.count("WARNING: the sandbox runs WITHOUT isolation") == 1
    assert "the `bwrap` executable is not installed; `unshare` fails here (Operation not permitted)" in err
    for name in sandbox.MECHANISMS:
        with pytest.raises(sandbox.SandboxUnavailable, match=f"{name} isolation was requested"):
            sandbox.run(
                [sys.executable, "-c", "pass"],
                tmp_path / "w2",
                tmp_path / "w2.log",
                sandbox.Policy(isolation=name),  # type: ignore[arg-type]
            )
    assert not (tmp_path / "w2.log").exists()


def test_none_must_be_asked_for_and_is_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sandbox, "_warned", False)
    monkeypatch.setenv(sandbox.ISOLATION_VARIABLE, "none")
    assert sandbox.resolve_isolation("auto") == "none"
    assert _run("pass", tmp_path, isolation="auto").isolation == "none"
    assert capsys.readouterr().err == ""
    monkeypatch.setenv(sandbox.ISOLATION_VARIABLE, "chroot")
    with pytest.raises(sandbox.SandboxUnavailable, match="use auto, bwrap, unshare or none"):
        sandbox.resolve_isolation("auto")
    if BWRAP:
        monkeypatch.delenv(sandbox.ISOLATION_VARIABLE)
        assert sandbox.resolve_isolation("auto") == "bwrap"


# ---------------------------------------------------------------- unshare only


@pytest.mark.parametrize("isolation", MODES)
def test_a_killed_orchestrator_takes_its_sandboxed_run_with_it(tmp_path: Path, isolation: str) -> None:
    """SIGKILL the orchestrator (which started the run from a worker thread, as the executors
    do): the sandboxed command and a detached child of it are gone within seconds. bwrap has
    --die-with-parent; unshare's init and, without namespaces, the launcher watch a pipe that
    only the orchestrator holds open."""
    if isolation in STATUS and not STATUS[isolation][0]:
        pytest.skip(f"{isolation} unavailable: {STATUS[isolation][1]}")
    marker = f"35{uuid.uuid4().int % 10**6}.5"
    detached = isolation != "none"  # without namespaces, what stays in the process group dies
    inner = (
        "import subprocess, time\n"
        f"subprocess.Popen(['sleep', '{marker}'], start_new_session={detached})\n"
        "time.sleep(300)\n"
    )
    run = (
        f"sandbox.run([sys.executable, '-c', {inner!r}], Path({str(tmp_path / 'w')!r}), "
        f"Path({str(tmp_path / 'w.log')!r}), sandbox.Policy(timeout_s=120, isolation={isolation!r}))"
    )
    orchestrator = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, threading\nfrom pathlib import Path\nimport sandbox\n"
            f"threading.Thread(target=lambda: {run}).start()\n",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        deadline = time.monotonic() + 30
        while not _host_processes_with(f"sleep {marker}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _host_processes_with(f"sleep {marker}"), "the sandboxed command never started"
    finally:
        orchestrator.send_signal(signal.SIGKILL)
        orchestrator.wait()
    deadline = time.monotonic() + 5  # the marker is also in the command's own command line
    while _host_processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _host_processes_with(marker) == []


@pytest.mark.parametrize("isolation", ISOLATED)
@pytest.mark.skipif(not IS_ROOT or not shutil.which("setpriv"), reason="needs root to become another user")
def test_unprivileged_caller_gets_a_user_namespace(isolation: str) -> None:
    """The orchestrator as a plain user (`nobody`, through setpriv): the sandbox maps it to
    root in a user namespace that the command holds no capabilities in; limits and the
    read-only filesystem hold."""
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    too_old = "import sys; sys.exit(sys.version_info < (3, 10))"
    if python is None or subprocess.run([python, "-c", too_old], check=False).returncode != 0:
        pytest.skip("no system python3 (>= 3.10) that a plain user can run")
    work = Path(tempfile.mkdtemp(prefix="eureka-unprivileged-"))  # not under root's 0700 tmp_path
    try:
        shutil.copytree(REPO / "sandbox", work / "sandbox")  # stdlib only: runs on any python3
        shutil.copy(FIXTURES / "unprivileged_sandbox.py", work / "check.py")
        for path in [work, *work.rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o644)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        done = subprocess.run(
            [*as_nobody, python, "check.py", str(work), isolation],
            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(work), "HOME": str(work)},
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
        )
        out = done.stdout
        assert done.returncode == 0 and f"outcome {isolation} 0" in out, out + done.stderr
        # PID 2 under the init; unshare maps the caller to root of its user namespace, bwrap to itself
        assert f"ids 2 1 {0 if isolation == 'unshare' else 65534}" in out
        assert "caps 0000000000000000 0000000000000000 1" in out  # no capabilities, no_new_privs
        assert "refused /etc/x Read-only file system" in out and "refused /root/x" in out
        assert "wrote inside.txt" in out and (work / "w/inside.txt").stat().st_uid == 65534
        assert "mount 0" not in out and "umount 0" not in out
        assert 0 < int(out.split("fork stopped at ")[1].split()[0]) <= 30
    finally:
        shutil.rmtree(work, ignore_errors=True)
