"""Benchmark: F per seed of each task's human (and sparse) reward at the task's default budget on
its default training path. Each training runs in a process of its own, `--jobs` at a time, one
torch and one simulator thread each; it prints a line per training, then a table per task and
reward: F mean ± std over the seeds, F per seed, seeds past the threshold (k of n), steps and
seconds per training, and the machine. `--out DIR` writes that table (`table.md`) and every
training's figures (`results.json`). One failing training is a row, not a stop. Asserts nothing.

    python bench/seeds.py                           # the fast bundled tasks' human reward, seeds 0-7
    python bench/seeds.py --tasks pendulum --seeds 0 1 2
    python bench/seeds.py --tasks mujoco --out bench-out   # the MuJoCo tasks: minutes a training
    python bench/seeds.py --tasks hopper --jobs 2
    python bench/seeds.py --tasks gain --rewards sparse human --seeds 0 1 2 --jobs 2 --out bench-out
                                                    # README's table of the tasks where the reward matters
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from eureka import tasks
from eureka.training.train import train
from eureka.types import TrainJob

FAST_TASKS = ("cartpole", "pendulum", "mountain_car_continuous", "acrobot", "point_mass")
GAIN_TASKS = (
    "half_cheetah_flip",
    "hopper_jump",
    "point_maze",
    "fetch_reach",
    "ant_turn",
    "pusher",
    "fetch_push",
    "adroit_door",
)
"""The tasks where the reward matters (README's second task table)."""
MUJOCO_TASKS = (
    "inverted_double_pendulum",
    "half_cheetah_backward",
    "half_cheetah",
    "reacher",
    "hopper",
    "ant",
)
"""The MuJoCo tasks of README's first task table (minutes a training here on the batched path)."""
GROUPS = {"fast": FAST_TASKS, "gain": GAIN_TASKS, "mujoco": MUJOCO_TASKS}


def train_one(
    task_name: str, reward: str, seed: int, timesteps: int | None, backend: str, root: str
) -> dict[str, Any]:
    """One training at the task's defaults; its figures, or its error as data."""
    start = time.monotonic()
    row: dict[str, Any] = {"task": task_name, "reward": reward, "seed": seed}
    try:
        task = tasks.load(task_name)
        job = TrainJob(
            task_folder=task.folder,
            reward_file=task.file(tasks.HUMAN_REWARD_FILE) if reward == "human" else None,
            out_dir=Path(root) / task_name / f"{reward}_{seed}",
            seed=seed,
            timesteps=timesteps,
            video=False,
            threads=1,
            sim_threads=1,
            backend=backend,  # argparse checks it against the Literal's values
        )
        job.out_dir.mkdir(parents=True, exist_ok=True)
        with (job.out_dir / "train.log").open("w") as log, contextlib.redirect_stdout(log):
            result = train(job)  # its progress lines go to the log, not between the table's
        row |= {
            "status": result.status.value,
            "message": result.message,
            "fitness": result.fitness,
            "solved": result.solved,
            "env_steps": result.env_steps,
            "steps_per_second": result.steps_per_second,
            "backend": result.backend,
        }
    except Exception as exc:  # a broken task is a row of the table, not the end of the benchmark
        row |= {"status": "error", "message": f"{type(exc).__name__}: {exc}", "fitness": None}
    row["seconds"] = time.monotonic() - start
    return row


def _f(value: float) -> str:
    if not math.isfinite(value):
        return "nan"
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"  # 1000, not 1e+03


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per task and reward, in the order the rows' tasks and rewards first appear."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["task"], row["reward"]), []).append(row)
    lines = []
    for (task_name, reward), group in groups.items():
        group.sort(key=lambda r: r["seed"])
        values = [r["fitness"] for r in group if r.get("fitness") is not None]
        try:
            threshold: float | None = tasks.load(task_name).spec.fitness.threshold
        except Exception:
            threshold = None
        lines.append(
            {
                "task": task_name,
                "reward": reward,
                "seeds": [r["seed"] for r in group],
                "fitness": [r.get("fitness") for r in group],
                "mean": statistics.fmean(values) if values else float("nan"),
                "std": statistics.pstdev(values) if values else float("nan"),
                "solved": sum(bool(r.get("solved")) for r in group),
                "threshold": threshold,
                "env_steps": max((r.get("env_steps") or 0) for r in group),
                "seconds": statistics.fmean(r["seconds"] for r in group),
                "steps_per_second": statistics.fmean((r.get("steps_per_second") or 0.0) for r in group),
                "backend": sorted({r.get("backend") or "-" for r in group}),
                "errors": [
                    f"seed {r['seed']}: {r['message']}" for r in group if r.get("status") not in ("ok", None)
                ],
            }
        )
    return lines


def table(lines: list[dict[str, Any]], machine: str, jobs: int) -> str:
    out = [
        f"Machine: {machine}; {jobs} training(s) at a time, 1 thread each.",
        "",
        "| task | reward | F mean ± std | F per seed | past threshold | steps "
        "| s per training | steps/s | path |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for line in lines:
        per_seed = ", ".join(
            f"{s}: {_f(v) if v is not None else 'failed'}"
            for s, v in zip(line["seeds"], line["fitness"], strict=True)
        )
        threshold = (
            f"{line['solved']} of {len(line['seeds'])} (≥ {line['threshold']:g})"
            if line["threshold"] is not None
            else "-"
        )
        out.append(
            f"| {line['task']} | {line['reward']} | {_f(line['mean'])} ± {_f(line['std'])} | {per_seed} "
            f"| {threshold} | {line['env_steps']:,} | {line['seconds']:.0f} "
            f"| {line['steps_per_second']:,.0f} | {', '.join(line['backend'])} |"
        )
    errors = [f"- {line['task']} {line['reward']} {e}" for line in lines for e in line["errors"]]
    return "\n".join(out + (["", *errors] if errors else [])) + "\n"


def machine_name() -> str:
    return f"{platform.node()}, {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=list(FAST_TASKS),
        help=f"task names, or a group of them: {', '.join(GROUPS)}",
    )
    parser.add_argument("--rewards", nargs="+", default=["human"], choices=["human", "sparse"])
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(8)), help="seed numbers")
    parser.add_argument("--timesteps", type=int, default=None, help="override every task's budget")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "sb3", "batched"],
        help="training path (auto: the task's)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="trainings at a time, each in its own process")
    parser.add_argument("--out", type=Path, default=None, help="write table.md and results.json here")
    args = parser.parse_args()
    names = [n for name in args.tasks for n in GROUPS.get(name, (name,))]
    plan = [(name, reward, seed) for name in names for reward in args.rewards for seed in args.seeds]
    machine = machine_name()
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="eureka-seeds-") as tmp,
        ProcessPoolExecutor(
            max(1, args.jobs),
            mp_context=multiprocessing.get_context("spawn"),  # fresh torch per process
        ) as pool,
    ):
        futures = {pool.submit(train_one, *key, args.timesteps, args.backend, tmp): key for key in plan}
        for future in as_completed(futures):
            try:
                row = future.result()
            except Exception as exc:  # the training's process died (a crash in the simulator)
                name, reward, seed = futures[future]
                row = {"task": name, "reward": reward, "seed": seed, "status": "error", "seconds": 0.0}
                row |= {"fitness": None, "message": f"{type(exc).__name__}: {exc}"}
            rows.append(row)
            f = row.get("fitness")
            shown = _f(f) if f is not None else "failed"
            print(
                f"  {row['task']} {row['reward']} seed {row['seed']}: F {shown} solved {row.get('solved')} "
                f"({row['seconds']:.0f} s) {row['status']} {row.get('message', '')[:200]}",
                flush=True,
            )
            if args.out is not None:  # what finished is kept if the run is stopped
                args.out.mkdir(parents=True, exist_ok=True)
                (args.out / "results.json").write_text(
                    json.dumps({"machine": machine, "rows": rows}, indent=1)
                )
    order = {key: i for i, key in enumerate(plan)}
    rows.sort(key=lambda r: order[(r["task"], r["reward"], r["seed"])])
    lines = summarise(rows)
    text = (
        table(lines, machine, args.jobs)
        + f"\nWall time {time.monotonic() - started:.0f} s for {len(plan)} trainings.\n"
    )
    print(text, flush=True)
    if args.out is not None:
        (args.out / "table.md").write_text(text)
        (args.out / "results.json").write_text(
            json.dumps({"machine": machine, "rows": rows, "summary": lines}, indent=1)
        )


if __name__ == "__main__":
    main()
