"""The benchmarks run in their quick mode (figures printed, not asserted: speed is measured by
the scripts, not by timed tests)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.slow
def test_speed_benchmark_quick_mode_prints_its_table() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench/speed.py"), "--quick", "--tasks", "cartpole"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    print(done.stdout)  # the figures, in the test log
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["task", "pipeline", "steps/s"]
    rows = [line.split()[:2] for line in lines[1:] if line.strip() and ": batched runs" not in line]
    assert rows == [["cartpole", "sb3-default"], ["cartpole", "sb3-task"], ["cartpole", "batched"]]
    assert "cartpole: batched runs" in done.stdout


def test_sandbox_overhead_benchmark_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench/sandbox_overhead.py"), "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    print(done.stdout)
    assert "critic smoke test (cartpole)" in done.stdout
