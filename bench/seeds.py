"""Benchmark: does each task's human reward reach its threshold at the default budget on every
seed? Trains the human (and optionally the sparse) reward on N seeds with the task's default
settings, in this process, one training at a time, and prints a table per task: F per seed,
mean ± std, seeds past the threshold (k of n), steps and seconds per training. Asserts nothing.

    python bench/seeds.py                           # the fast bundled tasks, 8 seeds
    python bench/seeds.py --tasks pendulum --seeds 8
    python bench/seeds.py --tasks point_mass --rewards human sparse --seeds 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from eureka import tasks
from eureka.training.train import train
from eureka.types import TrainJob

FAST_TASKS = ("cartpole", "pendulum", "mountain_car_continuous", "acrobot", "point_mass")


def run(task_name: str, reward: str, seeds: int, timesteps: int | None, root: Path) -> None:
    task = tasks.load(task_name)
    reward_file = task.file(tasks.HUMAN_REWARD_FILE) if reward == "human" else None
    values: list[float] = []
    solved = 0
    times: list[float] = []
    steps = 0
    for seed in range(seeds):
        start = time.monotonic()
        job = TrainJob(
            task_folder=task.folder,
            reward_file=reward_file,
            out_dir=root / task_name / f"{reward}_{seed}",
            seed=seed,
            timesteps=timesteps,
            video=False,
            threads=1,
            sim_threads=1,
        )
        result = train(job)
        times.append(time.monotonic() - start)
        steps = result.env_steps
        f = result.fitness if result.fitness is not None else float("nan")
        values.append(f)
        solved += int(result.solved)
        print(
            f"  {task_name} {reward} seed {seed}: F {f:.4g} solved {result.solved} ({times[-1]:.1f} s)",
            flush=True,
        )
    mean = statistics.fmean(values)
    std = statistics.pstdev(values)
    print(
        f"{task_name:<26} {reward:<6} threshold {task.spec.fitness.threshold:<8g} "
        f"F {mean:.4g} ± {std:.3g}  past the threshold {solved} of {seeds}  "
        f"{steps:,} steps  {statistics.fmean(times):.1f} s per training  "
        f"[{', '.join(f'{v:.3g}' for v in values)}]",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=list(FAST_TASKS))
    parser.add_argument("--rewards", nargs="+", default=["human"], choices=["human", "sparse"])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--timesteps", type=int, default=None, help="override every task's budget")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eureka-seeds-") as tmp:
        for name in args.tasks:
            for reward in args.rewards:
                run(name, reward, args.seeds, args.timesteps, Path(tmp))


if __name__ == "__main__":
    main()
