"""Benchmark: what the sandbox costs per candidate, in seconds (prints figures, asserts nothing).

Measures, under each isolation that works here (bubblewrap, unshare) and without isolation:
starting a trivial Python command, and the critic's smoke test of the cartpole human reward
(a real worker: imports torch, gymnasium, SB3, steps the env) — the fixed part of every
candidate's cost.

    python bench/sandbox_overhead.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sandbox
from eureka import tasks
from eureka.training import jobs
from eureka.types import TrainJob


def _trivial(mode: str, root: Path, i: int) -> float:
    start = time.monotonic()
    out = sandbox.run(
        [sys.executable, "-c", "pass"],
        root / f"{mode}{i}",
        root / f"{mode}{i}.log",
        sandbox.Policy(timeout_s=60, isolation=mode),  # type: ignore[arg-type]
    )
    assert out.returncode == 0, out.output_tail
    return time.monotonic() - start


def _smoke(mode: str, root: Path, i: int) -> float:
    import os

    os.environ[sandbox.ISOLATION_VARIABLE] = mode
    task = tasks.load("cartpole")
    out = root / f"smoke-{mode}{i}"
    out.mkdir()
    reward = out / "reward.py"
    reward.write_text((task.folder / "human_reward.py").read_text())
    start = time.monotonic()
    result = jobs.run_training(
        TrainJob(task_folder=task.folder, reward_file=reward, out_dir=out / "run", check_only=True)
    )
    assert result.status.value == "ok", result.message
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    modes = ["none"] + [name for name in sandbox.MECHANISMS if sandbox.isolation_status(name)[0]]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, fn in (("start a trivial command", _trivial), ("critic smoke test (cartpole)", _smoke)):
            row = {}
            for mode in modes:
                times = [fn(mode, root, i) for i in range(args.repeats)]
                row[mode] = statistics.median(times)
                spread = f"(min {min(times):.3f}, max {max(times):.3f})"
                print(f"{name:32s} {mode:6s} median {row[mode]:.3f} s  {spread}")
            for mode in modes[1:]:
                print(f"{name:32s} {mode} overhead {row[mode] - row['none']:+.3f} s")


if __name__ == "__main__":
    main()
