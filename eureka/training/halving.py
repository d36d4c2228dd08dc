"""Successive halving across candidates: train all briefly, keep the better half, continue.

With R rungs and a budget B, every candidate trains to B / 2^(R-1); the better half (by F at
that point) continues to twice as far, and so on until the survivors reach B. Continuing
resumes from the previous rung's checkpoint, so no step is trained twice. With R = 3 the
compute is half of training every candidate to B.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from eureka.types import HalvingReport, Status, TrainResult

Train = Callable[[str, int, int], TrainResult]
"""train(name, rung, total steps at the end of this rung) -> result."""


def rung_budgets(budget: int, rungs: int) -> list[int]:
    return [max(1, math.ceil(budget / 2 ** (rungs - 1 - r))) for r in range(rungs)]


def _score(result: TrainResult) -> float:
    if result.status != Status.OK or result.fitness is None:
        return float("-inf")
    return result.fitness


def successive_halving(
    names: list[str], budget: int, rungs: int, train: Train, workers: int
) -> tuple[dict[str, TrainResult], HalvingReport]:
    """The last result of every candidate, and what was trained."""
    budgets = rung_budgets(budget, rungs)
    results: dict[str, TrainResult] = {}
    alive = list(names)
    survivors: list[list[str]] = []
    for rung, total in enumerate(budgets):
        survivors.append(list(alive))
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            done = list(pool.map(lambda name: train(name, rung, total), alive))  # noqa: B023
        results.update(zip(alive, done, strict=True))
        if rung == len(budgets) - 1:
            break
        ranked = sorted(alive, key=lambda n: _score(results[n]), reverse=True)
        keep = [n for n in ranked[: max(1, math.ceil(len(ranked) / 2))] if _score(results[n]) > float("-inf")]
        if not keep:
            break
        alive = [n for n in names if n in keep]  # original order, for reproducible logs
    steps = sum(r.env_steps for r in results.values())
    report = HalvingReport(
        rungs=budgets, survivors=survivors, env_steps=steps, full_steps=budget * len(names)
    )
    return results, report
