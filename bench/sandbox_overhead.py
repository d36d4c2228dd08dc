"""Benchmark: what the sandbox costs per candidate, in seconds (prints figures, asserts nothing).

Measures, under each isolation that works here (bubblewrap, unshare) and without isolation:
starting a trivial Python command, and the critic's smoke test of the cartpole human reward
(a real worker: imports torch, gymnasium, SB3, steps the env) — the fixed part of every
candidate's cost. Then, per candidate, the smoke test and a short training (batched cartpole,
`--timesteps`) in two workers, as before, against one worker that runs both (`smoke_first`,
what the loop does now); the difference is what each candidate saves.

    python bench/sandbox_overhead.py [--repeats 5] [--timesteps 1000] [--modes none bwrap unshare]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sandbox
from eureka import tasks
from eureka.training import jobs
from eureka.types import Task, TrainJob


def _human_reward(mode: str, out: Path) -> tuple[Task, Path]:
    """Cartpole and a copy of its human reward in `out` (new), with `mode` as the isolation."""
    os.environ[sandbox.ISOLATION_VARIABLE] = mode
    task = tasks.load("cartpole")
    out.mkdir()
    reward = out / "reward.py"
    reward.write_text((task.folder / "human_reward.py").read_text())
    return task, reward


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
    out = root / f"smoke-{mode}{i}"
    task, reward = _human_reward(mode, out)
    start = time.monotonic()
    result = jobs.run_training(
        TrainJob(task_folder=task.folder, reward_file=reward, out_dir=out / "run", check_only=True)
    )
    assert result.status.value == "ok", result.message
    return time.monotonic() - start


def _candidate(mode: str, root: Path, i: int, timesteps: int, one_worker: bool) -> float:
    """Seconds for one candidate's smoke test and training, in one worker or in two."""
    out = root / f"cand-{mode}-{'one' if one_worker else 'two'}{i}"
    task, reward = _human_reward(mode, out)
    train = TrainJob(
        task_folder=task.folder,
        reward_file=reward,
        out_dir=out,
        timesteps=timesteps,
        video=False,
        backend="batched",
    )
    start = time.monotonic()
    if one_worker:
        result = jobs.run_training(train.model_copy(update={"smoke_first": True, "smoke_timeout": 120.0}))
        assert result.smoke is not None, result.message
    else:
        smoke = jobs.run_training(
            TrainJob(
                task_folder=task.folder,
                reward_file=reward,
                out_dir=out / "smoke",
                check_only=True,
                backend="batched",
            )
        )
        assert smoke.status.value == "ok", smoke.message
        result = jobs.run_training(train)
    assert result.status.value == "ok", result.message
    return time.monotonic() - start


def _row(name: str, mode: str, times: list[float]) -> float:
    median = statistics.median(times)
    print(
        f"{name:44s} {mode:7s} median {median:.3f} s  (min {min(times):.3f}, max {max(times):.3f})",
        flush=True,
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--timesteps", type=int, default=1000, help="training budget per candidate")
    parser.add_argument(
        "--modes", nargs="*", default=None, help="none, bwrap, unshare (default: all that work)"
    )
    args = parser.parse_args()
    modes = args.modes or ["none"] + [
        name for name in sandbox.MECHANISMS if sandbox.isolation_status(name)[0]
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, fn in (("start a trivial command", _trivial), ("critic smoke test (cartpole)", _smoke)):
            row = {mode: _row(name, mode, [fn(mode, root, i) for i in range(args.repeats)]) for mode in modes}
            for mode in modes:
                if mode != "none" and "none" in row:
                    print(f"{name:44s} {mode} overhead {row[mode] - row['none']:+.3f} s")
        name = f"candidate: smoke test + {args.timesteps} steps"
        for mode in modes:
            # interleaved, so both see the same load
            two, one = [], []
            for i in range(args.repeats):
                two.append(_candidate(mode, root, i, args.timesteps, one_worker=False))
                one.append(_candidate(mode, root, i, args.timesteps, one_worker=True))
            before = _row(f"{name}, two workers", mode, two)
            after = _row(f"{name}, one worker", mode, one)
            print(f"{name:44s} {mode} saved per candidate {before - after:.3f} s ({1 - after / before:.0%})")


if __name__ == "__main__":
    main()
