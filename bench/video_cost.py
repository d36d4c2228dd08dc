"""Benchmark: what filming the trained policy costs next to training it (prints figures, asserts nothing).

Trains each task twice through `eureka train` (the sandboxed worker, the task's default path),
with and without the rollout video, and prints the wall time of both, their difference, and the
worker's own account of rendering and encoding (`video: ... in X s` in train.log, where the code
under test writes it).

    python bench/video_cost.py [--tasks half_cheetah hopper] [--timesteps 30000]

Run it with PYTHONPATH pointing at another checkout to measure that checkout's videos.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _train(task: str, timesteps: int, video: bool, runs: Path) -> tuple[float, dict[str, object], str]:
    cmd = [sys.executable, "-m", "eureka", "train", task, "--timesteps", str(timesteps), "--json"]
    start = time.monotonic()
    done = subprocess.run(
        [*cmd, "--video" if video else "--no-video", "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")},
        check=False,
    )
    wall = time.monotonic() - start
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"eureka train {task} printed no result:\n{done.stdout}\n{done.stderr}")
    out = json.loads(lines[-1])
    log = Path(out["run_dir"]) / "train.log"
    return wall, out, log.read_text() if log.is_file() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["half_cheetah", "hopper"])
    parser.add_argument("--timesteps", type=int, default=30000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eureka-video-") as tmp:
        for task in args.tasks:
            plain_wall, plain, _ = _train(task, args.timesteps, False, Path(tmp))
            filmed_wall, filmed, log = _train(task, args.timesteps, True, Path(tmp))
            account = re.search(r"^video: .*$", log, re.MULTILINE)
            train_s = float(plain["wall_time"])  # type: ignore[arg-type]
            extra = float(filmed["wall_time"]) - train_s  # type: ignore[arg-type]
            print(
                f"{task}: {args.timesteps} steps on {plain.get('backend')}; job wall time without video "
                f"{train_s:.1f} s, with video {float(filmed['wall_time']):.1f} s "  # type: ignore[arg-type]
                f"(+{extra:.1f} s, {extra / train_s:.0%} of training); command wall {plain_wall:.0f} s / "
                f"{filmed_wall:.0f} s; worker says: {account.group(0) if account else '(no account)'}",
                flush=True,
            )


if __name__ == "__main__":
    main()
