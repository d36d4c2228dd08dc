"""Benchmark: reward optimisation with no LLM and no key (`--model none`), the optimiser against
today's random perturbation of the constants, at the same compute. Per task and arm it runs one
solve (the human reward, then iterations of proposals from the elite, then for the optimiser's
arms the confirmation of the best on a second seed), then the loop's final evaluation of the
best, human and sparse rewards over several seeds, and prints per arm the table (task, F_sparse,
F_human, F_best, HNS, trainings used) and the ratio of HNS gained (prints figures, asserts
nothing).

    nice -n 10 python bench/optimiser.py [--tasks cartpole,acrobot,pendulum,mountain_car_continuous]
        [--trainings 21] [--iterations 2] [--confirm 2] [--eval-seeds 3] [--arms optuna,random]
        [--workers 2] [--parallel 1] [--timesteps cartpole=20000,...] [--seed 0] [--out DIR]

The defaults are the run in README.md (21 trainings; up to 32 fit: --trainings 31 --iterations 3
--confirm 3). On the loaded 2-core machine it took about 40 minutes for 4 tasks and 2 arms. The
gain tasks' run in README.md (each at its default budget, about 75 minutes loaded):

    nice -n 10 python bench/optimiser.py --tasks point_maze,fetch_reach --trainings 31
        --iterations 3 --confirm 3

and the next two (about 45 minutes for the optimiser's arm, 18 for random's):

    nice -n 10 python bench/optimiser.py --tasks hopper_jump,half_cheetah_flip --trainings 31
        --iterations 3 --confirm 3

and the suite with the race of the confirmation at 32 trainings (about 95 minutes idle):

    nice -n 10 python bench/optimiser.py --arms optuna --trainings 32 --iterations 3 --confirm 5
        --confirm-seeds 2 --tasks point_maze,fetch_reach,hopper_jump,half_cheetah_flip,pusher,ant_turn

`--reconfirm DIR,...` decides finished optimiser runs again with other `--confirm` settings,
reading back every training they made. `--peaks` lets the optimiser's arms add a peak to each
cost (SolveConfig.peaks), `--bonus` a bonus on the task's success signal (SolveConfig.bonus).
On a 16-core machine `--parallel 2 --workers 8` ran fetch_reach and point_maze (32 trainings
each, with --peaks) in 8 minutes (2026-11-27, the device machine's CPUs, through bench/gpu.sh's
CPU_JOB).

Arms: `optuna` = TPE trials plus structure operators (crossover/drop/add) and the confirmation;
`cmaes` = the same with CMA-ES; `random` = today's random perturbation alone (no structure, no
confirmation). Every arm gets the same trainings: 1 (the human reward) + iterations x proposals
+ confirmation; the optimiser's arms give `confirm` of theirs to the confirmation.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eureka import loop, tasks
from eureka.llm.client import NO_MODEL, for_run
from eureka.types import METRICS_FILE, Progress, Reporter, SolveConfig, Status, Summary

DEFAULT_TASKS = "cartpole,acrobot,pendulum,mountain_car_continuous"
DEFAULT_TIMESTEPS = {
    "cartpole": 20_000,
    "acrobot": 20_000,
    "pendulum": 100_000,
    "mountain_car_continuous": 10_000,
    "point_mass": 40_000,
}
"""Reduced budgets (the batched path, seconds a training): the human reward is below the task's
top F there, so a better reward is possible. Other tasks (the gain tasks of
benchmarks/quality.yaml) train at their own default budget on the batched path."""
ARMS = ("optuna", "cmaes", "random")


def arm_settings(
    arm: str, trainings: int, iterations: int, confirm: int, confirm_seeds: int = 1
) -> dict[str, object]:
    """One arm's solve settings at `trainings` in all: the optimiser's arms keep the most the
    confirmation can cost (`confirm` trainings, and 2 more per extra seed where a challenger is
    in its race) and make a fifth of each iteration's proposals by structure operators."""
    if arm == "random":
        return {"tuner": "random", "tune": (trainings - 1) // iterations, "structure": 0, "confirm": 0}
    per_iteration = (trainings - 1 - confirm - 2 * (confirm_seeds - 1)) // iterations
    structure = per_iteration // 5
    tuner = "cmaes" if arm == "cmaes" else "optuna"
    settings = {"tuner": tuner, "tune": per_iteration - structure, "structure": structure, "confirm": confirm}
    return settings | {"confirm_seeds": confirm_seeds}


def _share_baselines(task: str, root: Path, run_dir: Path) -> None:
    """The human and sparse rewards' final evaluation of an arm that ran this task before (same
    rewards, seeds and budget: the same trainings), so the next arm reads them back instead of
    training them again."""
    for done in sorted(root.glob(f"{task}-*/final")):
        for out in done.glob("*_seed*"):
            if out.name.split("_seed")[0] in ("human", "sparse") and (out / METRICS_FILE).is_file():
                target = run_dir / "final" / out.name
                if not target.exists():
                    shutil.copytree(out, target)


def _reporter(name: str) -> Reporter:
    def report(event: Progress) -> None:
        if event.kind in ("iteration", "final") or (event.kind == "message" and "final" in event.text):
            print(f"  {name}: {event.text}", flush=True)

    return report


def solve(
    task: str, arm: str, args: argparse.Namespace, timesteps: int | None, root: Path
) -> dict[str, object]:
    config = SolveConfig(
        task=str(tasks.load(task).folder),
        model=NO_MODEL,
        iterations=args.iterations + 1,  # iteration 0 trains only the human reward
        human_init=True,
        workers=args.workers,
        seed=args.seed,
        timesteps=timesteps,
        eval_seeds=args.eval_seeds,
        video=False,
        backend="batched",
        peaks=args.peaks and arm != "random",
        bonus=args.bonus and arm != "random",
        **arm_settings(arm, args.trainings, args.iterations, args.confirm, args.confirm_seeds),
    )
    run_dir = root / f"{task}-{arm}"
    run_dir.mkdir(parents=True)
    loop.save_config(run_dir, config)
    _share_baselines(task, root, run_dir)
    return _run(task, arm, config, run_dir, args.out)


def reconfirm(run_dir: Path, args: argparse.Namespace) -> dict[str, object]:
    """A finished run of an optimiser's arm again with `--confirm` and `--confirm-seeds`: every
    training it made is read back, only the confirmation's new ones train (and the final
    evaluation's, where the pick changes)."""
    config = loop.load_config(run_dir).model_copy(
        update={"confirm": args.confirm, "confirm_seeds": args.confirm_seeds}
    )
    loop.save_config(run_dir, config)
    task, arm = run_dir.name.rsplit("-", 1)
    return _run(task, arm, config, run_dir, args.out)


def _run(task: str, arm: str, config: SolveConfig, run_dir: Path, out: Path | None) -> dict[str, object]:
    start = time.monotonic()
    summary: Summary = loop.Loop(config, run_dir, for_run(config, run_dir), _reporter(f"{task}/{arm}")).run()
    cands = [c for it in summary.iterations for c in it.candidates]
    confirmed = sum(len(scores) - 1 for scores in summary.confirmation.values())
    final = summary.final
    row: dict[str, object] = {
        "task": task,
        "arm": arm,
        "timesteps": tasks.budget(tasks.load(config.task), "batched", config.timesteps),
        "trainings": sum(c.env_steps > 0 for c in cands) + confirmed,
        "proposed": len(cands),
        "failed_checks": sum(c.status != Status.OK and c.env_steps == 0 for c in cands),
        "confirmation": summary.confirmation,
        "search_best_F": summary.best.fitness if summary.best else None,
        "best": f"iter_{summary.best.iteration}/cand_{summary.best.index}" if summary.best else None,
        "best_origin": summary.best.origin if summary.best else None,
        "F_human": final.human.fitness_mean if final and final.human else None,
        "F_best": final.best.fitness_mean if final else None,
        "F_sparse": final.sparse.fitness_mean if final and final.sparse else None,
        "F_best_seeds": final.best.fitness if final else None,
        "F_human_seeds": final.human.fitness if final and final.human else None,
        "HNS": final.human_normalized_score if final else None,
        "wall_s": round(time.monotonic() - start, 1),
        "run_dir": str(run_dir),
    }
    print(f"  {task}/{arm} done: {json.dumps(row)}", flush=True)
    if out is not None:
        with (out / "rows.jsonl").open("a") as f:  # as each solve ends: a cut-off run keeps them
            f.write(json.dumps(row) + "\n")
    return row


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=DEFAULT_TASKS)
    parser.add_argument("--arms", default="optuna,random")
    parser.add_argument("--trainings", type=int, default=21, help="trainings per task and arm (<= 32)")
    parser.add_argument("--iterations", type=int, default=2, help="iterations of proposals after the human")
    parser.add_argument("--confirm", type=int, default=2, help="rewards retrained on a 2nd seed (optimiser)")
    parser.add_argument("--confirm-seeds", type=int, default=1, help="fresh seeds of the confirmation")
    parser.add_argument(
        "--reconfirm", default="", help="run dirs (a,b) of finished optimiser arms: confirm them again"
    )
    parser.add_argument("--peaks", action="store_true", help="optimiser arms: peaks on the costs (--peaks)")
    parser.add_argument(
        "--bonus", action="store_true", help="optimiser arms: a bonus on the success signal (--bonus)"
    )
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
        if args.reconfirm:
            rows = [reconfirm(Path(d), args) for d in args.reconfirm.split(",")]
            args.arms = ",".join(dict.fromkeys(str(r["arm"]) for r in rows))
        else:
            with ThreadPoolExecutor(max_workers=args.parallel) as pool:
                rows = list(pool.map(lambda ta: solve(ta[0], ta[1], args, budgets.get(ta[0]), root), todo))
        if args.out is not None:
            (args.out / "results.json").write_text(json.dumps(rows, indent=1))
    keys = ["task", "timesteps", "F_sparse", "F_human", "F_best", "HNS", "trainings", "best_origin"]
    arms = args.arms.split(",")
    gained: dict[str, float] = {}
    for arm in arms:
        mine = [r for r in rows if r["arm"] == arm]
        print(f"\n{arm} ({args.eval_seeds} evaluation seeds, budget per training in timesteps)")
        print(" | ".join(keys))
        for row in mine:
            print(" | ".join(_fmt(row.get(k)) for k in keys))
        gains = [r["HNS"] for r in mine if isinstance(r["HNS"], float)]
        if gains:
            gained[arm] = statistics.fmean(g - 1.0 for g in gains)
            print(
                f"{arm}: mean HNS {statistics.fmean(gains):.3f}; HNS >= 1.0 on {sum(g >= 1.0 for g in gains)}"
                f" of {len(gains)} tasks; >= 1.1 on {sum(g >= 1.1 for g in gains)}"
            )
    if "random" in gained:
        for arm in (a for a in gained if a != "random"):
            ratio = gained[arm] / gained["random"] if gained["random"] else float("inf")
            print(
                f"HNS gained over the human reward (mean HNS - 1): {arm} {gained[arm]:+.3f}, random "
                f"{gained['random']:+.3f}; ratio {ratio:.2f}"
            )


if __name__ == "__main__":
    main()
