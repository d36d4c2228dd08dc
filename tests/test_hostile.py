"""The hostile corpus (tests/hostile/*.py): reward programs that attack the machine, each run
through `eureka train` in the sandbox.

Each file says what it must end with (`# expect:` statuses, `# message:` a part of the message).
For every file the test also checks that the run went on (this process is alive), that the
canaries outside the run directory are unchanged and nothing new appeared outside it, that
neither the fake API key nor the canary secret appears in any output or file, and that no
process it started outlives it.

Cases marked `# guard:` would hurt the machine without a limit (PID namespace, process limit,
memory limit, file-size limit): the `proofs` fixture first shows each limit holding on a
harmless case through `sandbox.run`, under the same isolation mechanism, and those cases are
skipped when it does not. The corpus runs under every mechanism that works here (bubblewrap,
util-linux's unshare), except the cases no isolation decides, which run under the preferred one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import sys
import sysconfig
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FAKE_KEY, REPO, QueuedBackend, fenced
from typer.testing import CliRunner

import sandbox
from eureka.cli import app
from eureka.llm.client import LLM
from eureka.loop import Loop
from eureka.types import SolveConfig

CORPUS = Path(__file__).parent / "hostile"
HIDDEN_CANARY = Path("/tmp/eureka_hostile_canary")
"""Hidden from the sandbox (/tmp is a private tmpfs there): reads must fail, nothing may change."""
VISIBLE_CANARY = CORPUS / "_canary"
"""Visible read-only inside the sandbox (the repository): writes and deletes must fail."""
LISTEN_PORT = 47391
PWNED = "eureka_pwned"

STATUS = {name: sandbox.isolation_status(name) for name in sandbox.MECHANISMS}
pytestmark = pytest.mark.skipif(
    not any(works for works, _ in STATUS.values()),
    reason=f"the hostile corpus only runs isolated; none works here: {STATUS}",
)
PREFERRED = next((name for name, (works, _) in STATUS.items() if works), None)
"""The mechanism `auto` picks here; the corpus under the others (a fallback) is marked slow."""
MECHANISMS = [
    pytest.param(
        name,
        id=name,
        marks=[pytest.mark.skipif(not works, reason=f"{name} unavailable: {why}")]
        + ([pytest.mark.slow] if name != PREFERRED else []),
    )
    for name, (works, why) in STATUS.items()
]
runner = CliRunner()


@dataclass(frozen=True)
class Case:
    file: Path
    expect: tuple[str, ...]
    message: str | None
    timeout: int
    guards: tuple[str, ...]
    leftover: str | None
    fitness_at_most: float | None
    """The highest F a real policy scores (cartpole: 500): a higher one was forged."""


def _parse(file: Path) -> Case:
    meta: dict[str, str] = {}
    for line in file.read_text().splitlines():
        if line.startswith("# ") and ":" in line:
            key, _, value = line[2:].partition(":")
            meta[key.strip()] = value.strip()
    return Case(
        file=file,
        expect=tuple(meta["expect"].split("|")),
        message=meta.get("message"),
        timeout=int(meta.get("timeout", "30")),
        guards=tuple(meta.get("guard", "").split()),
        leftover=meta.get("leftover"),
        fitness_at_most=float(meta["fitness-at-most"]) if "fitness-at-most" in meta else None,
    )


CASES = [_parse(f) for f in sorted(CORPUS.glob("*.py"))]
WORKER_DECIDED = {"check_failed", "diverged"}
"""Outcomes the static check or the worker's output checks decide, the same under any isolation."""
ISOLATION_BLIND = {
    "threads_forever": "the training process's os._exit, the same under every mechanism",
    "recursion_infinite": "Python's recursion limit",
    "recursion_c_stack": "the stack limit, set in the worker's process as every limit",
    "fifo_metrics": "the orchestrator's reading of the run directory after the run",
    "symlink_metrics": "the orchestrator's reading of the run directory after the run",
    "mutates_inputs": "the trainer's copies of the inputs",
    "returns_huge": "the trainer's checks on the rewards",
    "memory_bomb_python": "the memory limit, set by the same launcher under every mechanism",
    "memory_bomb_torch": "the memory limit, set by the same launcher under every mechanism",
    "setrlimit_raise": "the hard limits, set by the same launcher under every mechanism",
    "huge_stdout": "the file-size limit, set by the same launcher under every mechanism",
}
"""Cases whose outcome no isolation mechanism decides (and why), run under the preferred one only.
The rlimits are set in the sandbox by one launcher (sandbox/_limits.py) whatever the mechanism;
the `proofs` fixture shows the process, memory and file-size limits holding under each mechanism
on a harmless case."""
FAST_CASES = ("fs_write_repo", "fs_read_hidden_secret", "env_read_key", "net_localhost", "kill_parent")
"""Run in the quick suite (files, secrets, network, signals); the whole corpus runs in `make test`."""


def test_the_corpus_is_big_and_mostly_passes_the_static_check() -> None:
    from eureka import tasks
    from eureka.reward import checks

    fields = list(tasks.load("cartpole").spec.state)
    assert len(CASES) >= 25
    passing = [c.file.name for c in CASES if not checks.check_source(c.file.read_text(), fields)]
    assert len(passing) >= 30, "most cases must reach the OS layer, not stop at the AST check"


# ---------------------------------------------------------------- proofs before anything risky


@pytest.fixture(scope="module")
def proofs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], set[str]]:
    """The containments shown to hold here under a mechanism, proven once per mechanism."""
    done: dict[str, set[str]] = {}

    def proven(mechanism: str) -> set[str]:
        if mechanism not in done:
            done[mechanism] = _prove(tmp_path_factory.mktemp(f"proofs-{mechanism}"), mechanism)
        return done[mechanism]

    return proven


def _probe(tmp: Path, name: str, code: str, **policy: Any) -> sandbox.Outcome:
    return sandbox.run(
        [sys.executable, "-c", code], tmp / name, tmp / f"{name}.log", sandbox.Policy(timeout_s=30, **policy)
    )


def _prove(tmp: Path, mechanism: str) -> set[str]:
    """The containments shown to hold under `mechanism` on harmless, bounded cases."""
    ok: set[str] = set()
    marker = f"34{uuid.uuid4().int % 10**6}.5"
    out = _probe(
        tmp,
        "pidns",
        "import os, subprocess\n"
        f"subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
        "print('pid', os.getpid(), os.getppid())\n",
        isolation=mechanism,
    )
    if "pid 2 1" in out.output_tail and not _processes_with(f"sleep {marker}"):
        ok.add("pidns")
    out = _probe(
        tmp,
        "nproc",
        "import os, time\ntry:\n    for _ in range(60):\n        if os.fork() == 0:\n"
        "            time.sleep(10)\n            os._exit(0)\nexcept OSError:\n    print('stopped')\n",
        processes=20,
        isolation=mechanism,
    )
    if "stopped" in out.output_tail:
        ok.add("nproc")
    default = sandbox.Policy()
    assert default.memory_bytes is not None and default.file_bytes is not None
    out = _probe(  # reserved, never touched: harmless even without the limit
        tmp,
        "memory",
        f"try:\n    bytes({default.memory_bytes + (1 << 30)})\nexcept MemoryError:\n    print('refused')\n",
        isolation=mechanism,
    )
    if "refused" in out.output_tail:
        ok.add("memory")
    out = _probe(
        tmp, "fsize", "open('f', 'wb').write(b'x' * (4 << 20))\n", file_bytes=1 << 20, isolation=mechanism
    )
    if (tmp / "fsize/f").stat().st_size == 1 << 20:
        ok.add("fsize")
    shutil.rmtree(tmp, ignore_errors=True)
    return ok


# ---------------------------------------------------------------- canaries and witnesses


@pytest.fixture(scope="module")
def canaries() -> Iterator[str]:
    """The canary folders with a fresh secret, held for the module: HIDDEN_CANARY is one path on
    the machine (the corpus names it), so a second test run at the same time waits for this one
    rather than rewrite the canaries under it."""
    with open(f"{HIDDEN_CANARY}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from _fresh_canaries()


def _fresh_canaries() -> Iterator[str]:
    secret = f"CANARY-SECRET-{uuid.uuid4().hex}"
    for folder in (HIDDEN_CANARY, VISIBLE_CANARY):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / "secret.txt").write_text(secret)
        (folder / "notes.txt").write_text("do not touch\n")
    try:
        yield secret
    finally:
        for folder in (HIDDEN_CANARY, VISIBLE_CANARY):
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def listener() -> Iterator[socket.socket | None]:
    """A server on the port net_localhost.py attacks; it must never see a connection."""
    server = socket.socket()
    try:
        server.bind(("127.0.0.1", LISTEN_PORT))
    except OSError:
        server.close()
        yield None
        return
    server.listen()
    server.setblocking(False)
    yield server
    server.close()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if marker in cmdline and state != "Z":
                found.append(int(entry.name))
    return found


def _pwned_places(tmp_path: Path, run_dir: Path) -> list[Path]:
    """Files named eureka_pwned* anywhere a case tries to put one, outside its own run dir."""
    shallow = [
        Path("/"),
        Path("/tmp"),
        Path("/etc"),
        Path("/usr/local/bin"),
        Path.home(),
        REPO,
        HIDDEN_CANARY,
        VISIBLE_CANARY,
        Path(sysconfig.get_paths()["purelib"]),
    ]
    found = [p for d in shallow if d.is_dir() for p in d.glob(f"{PWNED}*")]
    found += [p for p in tmp_path.rglob(f"{PWNED}*") if run_dir not in p.parents]
    return found


# ---------------------------------------------------------------- the corpus


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=c.file.stem, marks=[] if c.file.stem in FAST_CASES else [pytest.mark.slow])
        for c in CASES
    ],
)
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_hostile_reward_is_contained(
    mechanism: str,
    case: Case,
    tmp_path: Path,
    proofs: Callable[[str], set[str]],
    canaries: str,
    listener: socket.socket | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if mechanism != PREFERRED and set(case.expect) <= WORKER_DECIDED:
        pytest.skip(f"decided by the checks, not the isolation: run under {PREFERRED} only")
    if mechanism != PREFERRED and case.file.stem in ISOLATION_BLIND:
        pytest.skip(
            f"decided by {ISOLATION_BLIND[case.file.stem]}, not the isolation: run under {PREFERRED} only"
        )
    missing = [g for g in case.guards if g not in proofs(mechanism)]
    if missing:
        pytest.skip(f"containment not proven under {mechanism} here: {', '.join(missing)}")
    monkeypatch.setenv(sandbox.ISOLATION_VARIABLE, mechanism)  # `--sandbox` below sets it too
    assert sandbox.resolve_isolation() == mechanism
    secret = canaries
    before = {folder: _snapshot(folder) for folder in (HIDDEN_CANARY, VISIBLE_CANARY)}
    etc_profile = Path("/etc/profile").read_bytes() if Path("/etc/profile").exists() else None

    result = runner.invoke(
        app,
        [
            "train",
            "cartpole",
            "--reward",
            str(case.file),
            "--json",
            "--timesteps",
            "1000",
            "--no-video",
            "--timeout",
            str(case.timeout),
            "--sandbox",
            mechanism,
        ],
    )
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
    assert lines, result.output
    out = json.loads(lines[-1])
    run_dir = Path(out["run_dir"])
    try:
        # a status and a one-line message
        assert out["status"] in case.expect, out
        assert result.exit_code == (0 if out["status"] == "ok" else 1)
        message = out["message"]
        assert "\n" not in message and "Traceback" not in message
        if case.message is not None:
            assert case.message in message, message
        if case.fitness_at_most is not None:
            assert out["fitness"] is None or out["fitness"] <= case.fitness_at_most, out
        # no secret anywhere
        assert FAKE_KEY not in result.output and secret not in result.output
        for file in run_dir.rglob("*"):
            if file.is_file():
                data = file.read_bytes()
                assert FAKE_KEY.encode() not in data, file
                assert secret.encode() not in data, file
        # nothing outside the run directory changed or appeared
        for folder, snapshot in before.items():
            assert _snapshot(folder) == snapshot, folder
        if etc_profile is not None:
            assert Path("/etc/profile").read_bytes() == etc_profile
        assert _pwned_places(tmp_path, run_dir) == []
        outside = [p for p in (tmp_path / "runs").rglob("*") if p != run_dir and run_dir not in p.parents]
        assert all(p.is_dir() and run_dir.is_relative_to(p) for p in outside), outside
        # the run dir holds only plain files and folders (no links or FIFOs to trip the caller)
        assert all(p.is_file() or p.is_dir() for p in run_dir.rglob("*"))
        assert all(os.lstat(p).st_uid == os.getuid() for p in run_dir.rglob("*"))
        if case.leftover:
            assert _processes_with(case.leftover) == []
        if case.file.name == "net_localhost.py" and listener is not None:
            with pytest.raises(BlockingIOError):
                listener.accept()
    finally:
        log = run_dir / "train.log"
        if log.is_file() and log.stat().st_size > 8 << 20:  # the worker's log is trimmed to 4 MiB
            log.unlink()
            raise AssertionError(f"{case.file.name} left a train.log of more than 8 MiB")


LOOP_CASES = (
    "ast_import_os",
    "builtins_import",
    "cpu_loop",
    "env_read_key",
    "fifo_metrics",
    "fs_read_hidden_secret",
    "fs_write_repo",
    "huge_stdout",
    "kill_parent",
    "memory_bomb_torch",
    "mutates_inputs",
    "net_localhost",
    "recursion_infinite",
    "returns_nan_component",
    "subprocess_run_capture",
    "wrong_shape",
)
"""One case of each kind of attack for the loop test (every case already runs alone above):
what the loop adds is that one iteration survives them all at once. One hang (cpu_loop;
threads_forever no longer hangs) and one planted metrics file (fifo_metrics, not also
symlink_metrics): each hang holds a worker for the task's whole timeout."""


@pytest.mark.skipif(PREFERRED is None, reason="no isolation mechanism works here")
@pytest.mark.slow
def test_hostile_corpus_through_the_loop(
    tmp_path: Path,
    proofs: Callable[[str], set[str]],
    canaries: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One case of each kind, as the replies of one iteration of `eureka solve` under the
    mechanism `auto` picks: each candidate ends with its status, the run reaches its end,
    nothing leaks or changes."""
    assert PREFERRED is not None
    mechanism = PREFERRED
    monkeypatch.setenv(sandbox.ISOLATION_VARIABLE, mechanism)
    cases = [c for c in CASES if c.file.stem in LOOP_CASES and all(g in proofs(mechanism) for g in c.guards)]
    assert {c.file.stem for c in CASES} >= set(LOOP_CASES)
    task_dir = shutil.copytree(REPO / "tasks" / "cartpole", tmp_path / "cartpole")
    spec = yaml.safe_load((task_dir / "task.yaml").read_text())
    spec["training"]["timeout"] = 20  # the hanging case ends soon, the harmless ones train on a busy machine
    (task_dir / "task.yaml").write_text(yaml.safe_dump(spec))
    before = {folder: _snapshot(folder) for folder in (HIDDEN_CANARY, VISIBLE_CANARY)}
    run_dir = tmp_path / "runs" / "loop"
    run_dir.mkdir(parents=True)
    config = SolveConfig(
        task=str(task_dir),
        model="queued-fake",
        iterations=1,
        samples=len(cases),
        workers=2,
        timesteps=1000,
        eval_seeds=0,
        repair_rounds=0,
        video=False,
    )
    backend = QueuedBackend([fenced(c.file.read_text()) for c in cases])
    llm = LLM(backend, transcript=run_dir / "transcript.jsonl")
    try:
        summary = Loop(config, run_dir, llm, lambda event: None).run()
        (iteration,) = summary.iterations
        got = {c.index: c for c in iteration.candidates}
        for index, case in enumerate(cases):
            cand = got[index]
            assert cand.status.value in case.expect, (case.file.name, cand)
            assert "\n" not in cand.message and "Traceback" not in cand.message
        assert summary.status == "ok" and summary.best is not None  # the harmless ones trained
        for folder, snapshot in before.items():
            assert _snapshot(folder) == snapshot, folder
        assert _pwned_places(tmp_path, run_dir) == []
        for file in run_dir.rglob("*"):
            assert file.is_file() or file.is_dir(), file
            if file.is_file() and file.stat().st_size < 1 << 20:
                data = file.read_bytes()
                assert FAKE_KEY.encode() not in data and canaries.encode() not in data, file
        for case in cases:
            if case.leftover:
                assert _processes_with(case.leftover) == [], case.file.name
    finally:
        for log in run_dir.rglob("*.log"):
            if log.stat().st_size > 1 << 20:
                log.unlink()
