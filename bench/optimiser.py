"""Benchmark: reward optimisation with no LLM and no key (`--model none`), new optimiser against
random perturbation of the constants at the same compute. Per task and arm it runs one solve
(the human reward, then iterations of proposals from the elite), then the loop's final
evaluation of the best, human and sparse rewards over several seeds, and prints F_human, F_best,
HNS and the trainings used (prints figures, asserts nothing).

    python bench/optimiser.py [--tasks pendulum,acrobot] [--trainings 32] [--eval-seeds 3]
        [--arms optuna,random] [--parallel 4] [--workers 2] [--timesteps pendulum=100000,...]

Arms: `optuna` = the optimiser's trials plus structure operators (crossover/drop/add);
`tpe` = the optimiser alone; `random` = today's random perturbation alone. Every arm uses the
same number of trainings: 1 (the human reward) + iterations × proposals per iteration.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eureka import loop, tasks
from eureka.llm.client import NO_MODEL, for_run
from eureka.types import Progress, Reporter, SolveConfig, Status, Summary

DEFAULT_TASKS = "pendulum,acrobot,mountain_car_continuous,point_mass"
DEFAULT_TIMESTEPS = {
    "pendulum": 100_000,
    "acrobot": 40_000,
    "mountain_car_continuous": 15_000,
    "point_mass": 40_000,
}
"""Reduced budgets: the human reward is far from its ceiling there, so tuning has room."""
ARMS = ("optuna", "tpe", "random")


def arm_settings(arm: str, per_iteration: int) -> dict[str, object]:
    """The proposals of one iteration: a fifth by structure operators in the `optuna` arm."""
    structure = per_iteration // 5 if arm == "optuna" else 0
    tuner = "random" if arm == "random" else "optuna"
    return {"tuner": tuner, "tune": per_iteration - structure, "structure": structure}


def _reporter(name: str) -> Reporter:
    def report(event: Progress) -> None:
        if event.kind in ("iteration", "final") or (event.kind == "message" and "final" in event.text):
            print(f"  {name}: {event.text}", flush=True)

    return report


def solve(task: str, arm: str, args: argparse.Namespace, timesteps: int, root: Path) -> dict[str, object]:
    iterations = max(1, (args.trainings - 1) // args.per_iteration)
    config = SolveConfig(
        task=str(tasks.load(task).folder),
        model=NO_MODEL,
        iterations=iterations + 1,  # iteration 0 trains only the human reward
        human_init=True,
        workers=args.workers,
        seed=args.seed,
        timesteps=timesteps,
        eval_seeds=args.eval_seeds,
        video=False,
        backend="batched",
        **arm_settings(arm, args.per_iteration),  # type: ignore[arg-type]
    )
    run_dir = root / f"{task}-{arm}"
    run_dir.mkdir(parents=True)
    loop.save_config(run_dir, config)
    start = time.monotonic()
    summary: Summary = loop.Loop(config, run_dir, for_run(config, run_dir), _reporter(f"{task}/{arm}")).run()
    cands = [c for it in summary.iterations for c in it.candidates]
    trained = [c for c in cands if c.env_steps > 0]
    final = summary.final
    row: dict[str, object] = {
        "task": task,
        "arm": arm,
        "timesteps": timesteps,
        "trainings": len(trained),
        "proposed": len(cands),
        "failed_checks": sum(c.status != Status.OK and c.env_steps == 0 for c in cands),
        "search_best_F": summary.best.fitness if summary.best else None,
        "best_origin": summary.best.origin if summary.best else None,
        "F_human": final.human.fitness_mean if final else None,
        "F_best": final.best.fitness_mean if final else None,
        "F_sparse": final.sparse.fitness_mean if final and final.sparse else None,
        "HNS": final.human_normalized_score if final else None,
        "wall_s": round(time.monotonic() - start, 1),
        "run_dir": str(run_dir),
    }
    print(f"  {task}/{arm} done: {json.dumps(row)}", flush=True)
    if args.out is not None:
        with (args.out / "rows.jsonl").open("a") as f:  # as each solve ends: a cut-off run keeps them
            f.write(json.dumps(row) + "\n")
    return row


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=DEFAULT_TASKS)
    parser.add_argument("--arms", default="optuna,random")
    parser.add_argument("--trainings", type=int, default=31, help="search trainings per task and arm")
    parser.add_argument("--per-iteration", type=int, default=10, help="proposals per iteration")
    parser.add_argument("--eval-seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="trainings at once within one solve")
    parser.add_argument("--parallel", type=int, default=1, help="solves at once")
    parser.add_argument("--timesteps", default="", help="task=steps,... overriding the reduced budgets")
    parser.add_argument("--out", type=Path, default=None, help="keep run directories and results.json here")
    args = parser.parse_args()
    budgets = dict(DEFAULT_TIMESTEPS)
    for item in filter(None, args.timesteps.split(",")):
        name, steps = item.split("=")
        budgets[name] = int(steps)
    todo = [(t, a) for t in args.tasks.split(",") for a in args.arms.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            rows = list(
                pool.map(lambda ta: solve(ta[0], ta[1], args, budgets.get(ta[0], 50_000), root), todo)
            )
        if args.out is not None:
            (args.out / "results.json").write_text(json.dumps(rows, indent=1))
    keys = ["task", "arm", "timesteps", "trainings", "F_human", "F_best", "F_sparse", "HNS", "best_origin"]
    print("\n" + " | ".join(keys))
    for row in rows:
        print(" | ".join(_fmt(row.get(k)) for k in keys))
    for arm in args.arms.split(","):
        gains = [r["HNS"] for r in rows if r["arm"] == arm and isinstance(r["HNS"], float)]
        if gains:
            above = sum(g >= 1.0 for g in gains)
            print(
                f"{arm}: mean HNS {statistics.fmean(gains):.3f}; HNS >= 1.0 on {above} of {len(gains)} "
                f"tasks; >= 1.1 on {sum(g >= 1.1 for g in gains)}"
            )


if __name__ == "__main__":
    main()
