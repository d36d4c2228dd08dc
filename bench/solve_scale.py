"""Benchmark: a whole `eureka solve` at Eureka's scale (5 iterations × 8 samples) on cartpole with
scripted replies, through the real loop: sandboxed critic and training of every candidate,
reflection, the final evaluation. Prints the wall time and where it went (asserts nothing).

The replies are variations of the task's human reward (different weights, one deliberately
broken reply per iteration that the repair round fixes), so every stage does real work
without an LLM.

    python bench/solve_scale.py [--iterations 5] [--samples 8] [--task cartpole] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from eureka import tasks
from eureka.llm.client import LLM, CallState, Completion, Message
from eureka.loop import Loop, save_config
from eureka.types import Progress, SolveConfig, Status


class Scripted:
    """Replies: the human reward with its numbers scaled; sample 0 of each iteration has no code."""

    model = "scripted-bench"

    def __init__(self, human: str, seed: int) -> None:
        self.human = human
        self.rng = random.Random(seed)
        self.calls = 0

    def _variant(self) -> str:
        factor = self.rng.choice([0.25, 0.5, 2.0, 4.0])
        code = self.human.replace("0.5 *", f"{0.5 * factor:g} *").replace("0.3 *", f"{0.3 / factor:g} *")
        return f"Here is an improved reward.\n\n```python\n{code.strip()}\n```\n"

    def complete(
        self, messages: list[Message], n: int, temperature: float, call: CallState | None = None
    ) -> list[Completion]:
        self.calls += 1
        texts = [self._variant() for _ in range(n)]
        if n > 1:
            texts[0] = "Let me think about the reward structure first; I will write it next time."
        return [Completion(text=t, model=self.model, tokens_in=2000, tokens_out=400 * n) for t in texts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="cartpole")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--eval-seeds", type=int, default=3)
    parser.add_argument("--timesteps", type=int)
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    task = tasks.load(args.task)
    human = (task.folder / "human_reward.py").read_text()
    config = SolveConfig(
        task=args.task,
        model="scripted-bench",
        iterations=args.iterations,
        samples=args.samples,
        workers=args.workers,
        eval_seeds=args.eval_seeds,
        timesteps=args.timesteps,
        video=True,
        backend=args.backend,
    )
    marks: list[tuple[float, str]] = []
    start = time.monotonic()

    def report(event: Progress) -> None:
        if event.kind in ("iteration", "message"):
            marks.append((time.monotonic() - start, event.text))
            print(f"{time.monotonic() - start:7.1f} s  {event.text}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        save_config(run_dir, config)
        llm = LLM(Scripted(human, 0), transcript=run_dir / "transcript.jsonl")
        summary = Loop(config, run_dir, llm, report).run()
        wall = time.monotonic() - start
        candidates = [c for it in summary.iterations for c in it.candidates]
        trained = [c for c in candidates if c.status == Status.OK]
        train_time = sum(c.wall_time for c in trained)
        print()
        print(f"{args.iterations} iterations × {args.samples} samples on {args.task}, {args.workers} workers")
        print(f"wall time {wall:.0f} s ({wall / 60:.1f} min); status {summary.status}: {summary.message}")
        each = train_time / max(len(trained), 1)
        print(
            f"{len(candidates)} candidates, {len(trained)} trained, {summary.env_steps:,} env steps in "
            f"candidate training ({train_time:.0f} s of worker time, {each:.1f} s each)"
        )
        final = summary.final
        if final is not None:
            hns = final.human_normalized_score
            human = final.human.fitness_mean if final.human else None
            print(
                f"final: best {final.best.fitness_mean}, human {human}, "
                f"sparse {final.sparse.fitness_mean if final.sparse else None}; HNS {hns}"
            )
            last = next((t for t, text in marks if text.startswith("final evaluation")), wall)
            print(f"final evaluation took {wall - last:.0f} s")


if __name__ == "__main__":
    main()
