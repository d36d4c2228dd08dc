"""The worker process: clean environment, wall-clock timeout that kills the whole group."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from conftest import FAKE_KEY

import sandbox


def _run(code: str, tmp_path: Path, timeout: float = 30.0) -> sandbox.Outcome:
    return sandbox.run(
        [sys.executable, "-c", code],
        tmp_path / "work",
        tmp_path / "work.log",
        sandbox.Policy(timeout_s=timeout),
    )


def test_environment_has_no_secrets(tmp_path: Path) -> None:
    assert os.environ["OPENAI_API_KEY"] == FAKE_KEY
    out = _run("import os; print(sorted(os.environ.items()))", tmp_path)
    assert out.returncode == 0
    assert FAKE_KEY not in out.output_tail
    assert "OPENAI_API_KEY" not in out.output_tail
    assert f"('HOME', '{tmp_path / 'work'}')" in out.output_tail


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, time\n"
        f"p = subprocess.Popen(['sleep', '300'])\nopen({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(300)\n"
    )
    start = time.monotonic()
    out = _run(code, tmp_path, timeout=2.0)
    assert out.timed_out and out.returncode is None
    assert time.monotonic() - start < 10
    child = int(pid_file.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


def test_output_tail_and_exit_code(tmp_path: Path) -> None:
    out = _run("import sys; print('x' * 10000); print('last line'); sys.exit(3)", tmp_path)
    assert out.returncode == 3 and not out.timed_out
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
