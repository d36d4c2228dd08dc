"""Benchmark: training speed of eureka's batched path against stable-baselines3, side by side in
one process on the same tasks (prints figures, asserts nothing).

For each task and pipeline it trains the task's human reward until the mean task score F of the
last 20 training episodes reaches the success threshold (or the budget runs out), then prints
env steps/s including learning, the time and steps to the threshold, and the final policy's F.

Pipelines:
  sb3-default  SB3 PPO with SB3's default settings (1 env), the baseline of issue 8
  sb3-task     SB3 with the task's own settings (RL-Zoo's where it has them)
  batched      eureka's batched PPO on the task's batched environment
  skrl, rsl-rl those libraries' PPO on the same environment, reward and settings as `batched`
               (not run by default; `pip install skrl rsl-rl-lib`; see bench/third_party.py):
               why eureka has its own PPO

    python bench/speed.py                      # cartpole, pendulum, half_cheetah
    python bench/speed.py --quick              # tiny budgets, for CI: figures only
    python bench/speed.py --tasks hopper --pipelines batched --device cuda --num-envs 4096
    python bench/speed.py --tasks cartpole acrobot --pipelines batched --device cuda \
        --num-envs 4096 16384 65536 --num-steps 32 --iterations 40   # a sweep (bench/gpu.py)
    python bench/speed.py --tasks cartpole pendulum --pipelines batched skrl rsl-rl
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from eureka import tasks
from eureka.training import train as trainer
from eureka.types import TrainJob, TrainResult

sys.path.insert(0, str(Path(__file__).parent))
import third_party

BUDGETS = {"cartpole": 200_000, "pendulum": 400_000, "half_cheetah": 100_000}
"""Step caps of the full benchmark (half_cheetah: a throughput measurement, not a solve)."""
QUICK_BUDGET = 4_000
PIPELINES = ("sb3-default", "sb3-task", "batched")
"""Run by default; `third_party.LIBRARIES` on request."""


def _variant(task_name: str, pipeline: str, root: Path, overrides: dict[str, object]) -> Path:
    """A copy of the task folder whose training section selects the pipeline."""
    source = tasks.load(task_name).folder
    folder = root / pipeline / task_name
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    spec = yaml.safe_load((folder / "task.yaml").read_text())
    training = spec["training"]
    if pipeline == "sb3-default":
        training.update(
            {"algorithm": "PPO", "n_envs": 1, "hyperparams": {}, "normalize": False, "backend": "sb3"}
        )
    elif pipeline == "sb3-task":
        training["backend"] = "sb3"
    else:  # batched, and the libraries on its environment and settings
        training["backend"] = "batched"
        batched = {**(training.get("batched") or {}), **overrides}
        if batched.get("cuda"):  # what is set here holds on every device
            batched["cuda"] = {k: v for k, v in batched["cuda"].items() if k not in overrides}
        training["batched"] = batched
    (folder / "task.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


def _run(
    pipeline: str, folder: Path, budget: int, seed: int, device: str, threads: tuple[int, int], out: Path
) -> tuple[TrainResult, float]:
    start = time.monotonic()
    if pipeline in third_party.LIBRARIES:
        result = third_party.train(pipeline, folder, budget, seed, threads[1], out)
        return result, time.monotonic() - start
    reward = out / "reward.py"
    out.mkdir(parents=True, exist_ok=True)
    reward.write_text((folder / "human_reward.py").read_text())
    job = TrainJob(
        task_folder=folder,
        reward_file=reward,
        out_dir=out,
        seed=seed,
        timesteps=budget,
        device=device,
        video=False,
        threads=threads[0],
        sim_threads=threads[1],
        stop_when_solved=True,
    )
    with (out / "train.log").open("w") as log, contextlib.redirect_stdout(log):
        result = trainer.train(job)
    return result, time.monotonic() - start


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


HEADER = (
    f"{'task':<14} {'pipeline':<12} {'envs':>6} {'steps/s':>11} {'solved':>6} {'to solve (s)':>12} "
    f"{'steps to solve':>14} {'steps':>11} {'wall (s)':>8} {'final F':>9}"
)


def row(name: str, pipeline: str, envs: int | str, result: TrainResult, wall: float) -> str:
    """One line of the table under HEADER."""
    solved = "yes" if result.solved_after_steps else "no"
    return (
        f"{name:<14} {pipeline:<12} {envs!s:>6} {result.steps_per_second:>11,.0f} {solved:>6} "
        f"{_fmt(result.solved_after_seconds, '.2f'):>12} {_fmt(result.solved_after_steps, ','):>14} "
        f"{result.env_steps:>11,} {wall:>8.1f} {_fmt(result.fitness, '.4g'):>9}"
        + ("" if result.status.value == "ok" else f"  {result.status.value}: {result.message}")
    )


def measure(
    name: str,
    pipeline: str,
    root: Path,
    overrides: dict[str, object],
    budget: int | None = None,
    seed: int = 0,
    device: str = "auto",
    threads: tuple[int, int] = (1, 2),
) -> tuple[TrainResult, float]:
    """Train the task's human reward on one pipeline until solved or out of budget: (result, wall)."""
    folder = _variant(name, pipeline, root / f"{overrides.get('num_envs', 'default')}", overrides)
    out = root / f"run-{name}-{pipeline}-{overrides.get('num_envs', 'default')}"
    steps = budget or BUDGETS.get(name, 200_000)
    return _run(pipeline, folder, steps, seed, device if pipeline == "batched" else "cpu", threads, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(BUDGETS))
    parser.add_argument(
        "--pipelines", nargs="+", default=list(PIPELINES), choices=PIPELINES + third_party.LIBRARIES
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_BUDGET:,} steps per run")
    parser.add_argument("--budget", type=int, help="step cap of every run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="batched path: auto, cpu or cuda")
    parser.add_argument(
        "--num-envs",
        type=int,
        nargs="+",
        help="batched path: environments stepped together (several: a sweep)",
    )
    parser.add_argument("--num-steps", type=int, help="batched path: steps per environment between updates")
    parser.add_argument(
        "--iterations", type=int, help="batched path: budget of this many updates (envs x steps each)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--sim-threads", type=int, default=2, help="MuJoCo stepping threads (batched path)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows: list[tuple[str, str, TrainResult, float]] = []
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in args.tasks:
            for envs in args.num_envs or [None]:
                overrides: dict[str, object] = {"num_envs": envs} if envs else {}
                if args.num_steps:
                    overrides["num_steps"] = args.num_steps
                budget = args.budget or (QUICK_BUDGET if args.quick else None)
                if args.iterations and envs:
                    budget = envs * (args.num_steps or 32) * args.iterations
                for pipeline in args.pipelines:
                    result, wall = measure(
                        name,
                        pipeline,
                        root,
                        overrides,
                        budget,
                        args.seed,
                        args.device,
                        (args.threads, args.sim_threads),
                    )
                    rows.append((name, pipeline, result, wall))
                    print(row(name, pipeline, envs or "task", result, wall), flush=True)
    if any(p in third_party.LIBRARIES for p in args.pipelines):
        print("final F of skrl and rsl-rl: the last 20 training episodes (no separate evaluation)")
    print()
    for name in args.tasks:
        mine = {p: r for t, p, r, _ in rows if t == name}
        ours = mine.get("batched")
        for other in ("sb3-default", *third_party.LIBRARIES):
            base = mine.get(other)
            if ours is None or base is None or not base.steps_per_second:
                continue
            speed = ours.steps_per_second / base.steps_per_second
            line = f"{name}: batched runs {speed:.1f}x the env steps/s of {other}"
            if ours.solved_after_seconds and base.solved_after_seconds:
                line += f" and solves {base.solved_after_seconds / ours.solved_after_seconds:.1f}x sooner"
            elif ours.solved_after_seconds:
                line += f"; it solves in {ours.solved_after_seconds:.1f} s, {other} not within its budget"
            print(line)


if __name__ == "__main__":
    main()
