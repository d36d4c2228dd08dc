"""Re-record transcript.jsonl, the offline demo of README's first command.

The replies in replies.md are SCRIPTED: the developers wrote them in the style of a strong
model, no model was asked. Iteration 0 holds three plausible first tries that reward being
near or high up towards the flag (one names a state field that does not exist and is repaired
once); all three teach the car to push uphill and stall, so no episode reaches the flag.
Iteration 1 answers the reflection on the best of them (every episode ran into the time limit
with the car at rest near the bottom, and `closeness` dominated the reward) with rewards for
momentum; the energy-gain reward among them reaches the flag within the demo's 8,000-step
budget, where the task's human reward does so on some seeds only. The training, the checks,
the reflection and the final evaluation are all real.

This script runs the real loop on mountain_car_continuous with those replies and records every
exchange, so that `eureka solve mountain_car_continuous --model replay:examples/mountain_car_demo
...` replays it offline, reply for reply. Run it again whenever a prompt changes
(tests/test_demo.py says when):

    python examples/mountain_car_demo/record.py
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

from eureka.llm.client import LLM, CallState, Completion, Message
from eureka.loop import Loop, save_config
from eureka.types import SolveConfig

HERE = Path(__file__).resolve().parent
TASK = "mountain_car_continuous"
DEMO = {"iterations": 2, "samples": 3, "timesteps": 8000, "eval_seeds": 5}
"""The options README's first command passes to `eureka solve`."""


def _replies() -> dict[str, str]:
    text = (HERE / "replies.md").read_text()
    parts = re.split(r"^<!-- (.+?) -->\n", text, flags=re.MULTILINE)[1:]
    return {parts[i]: parts[i + 1].strip() + "\n" for i in range(0, len(parts), 2)}


class ScriptedModel:
    """Answers sample requests in iteration order and repair requests by the reply repaired."""

    model = "scripted-example"

    def __init__(self) -> None:
        self.replies = _replies()
        self.iteration = 0

    def complete(
        self, messages: list[Message], n: int, temperature: float, call: CallState | None = None
    ) -> list[Completion]:
        if n > 1:
            texts = [self.replies[f"iteration {self.iteration}, sample {i + 1}"] for i in range(n)]
            self.iteration += 1
        else:
            repaired = messages[-2]["content"]
            sample = next(k for k, v in self.replies.items() if v == repaired and k.startswith("iteration 0"))
            texts = [self.replies["repair of " + sample.split(", ")[1]]]
        return [Completion(text=t, model=self.model) for t in texts]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        config = SolveConfig(task=TASK, model="scripted-example", workers=2, video=False, **DEMO)
        save_config(run_dir, config)
        summary = Loop(
            config,
            run_dir,
            LLM(ScriptedModel(), transcript=run_dir / "transcript.jsonl"),
            lambda e: print(e.text) if e.text else None,
        ).run()
        shutil.copyfile(run_dir / "transcript.jsonl", HERE / "transcript.jsonl")
    print(summary.model_dump_json(indent=2))
    return 0 if summary.status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
