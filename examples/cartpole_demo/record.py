"""Re-record transcript.jsonl, the offline demo of README's first command.

The replies in replies.md were written by the developers in the style of a strong model (with
two deliberate mistakes that the loop must catch and repair). This script runs the real loop on
cartpole with those replies and records every exchange, so that
`eureka solve cartpole --model replay:examples/cartpole_demo ...` replays it offline, reply for
reply. Run it again whenever a prompt changes (tests/test_demo.py says when).

    python examples/cartpole_demo/record.py
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

from eureka.llm.client import LLM, Completion, Message
from eureka.loop import Loop, save_config
from eureka.types import SolveConfig

HERE = Path(__file__).resolve().parent
DEMO = {"iterations": 2, "samples": 3, "timesteps": 100000, "eval_seeds": 2}
"""The options README's first command passes to `eureka solve`."""


def _replies() -> dict[str, str]:
    text = (HERE / "replies.md").read_text()
    parts = re.split(r"^<!-- (.+?) -->\n", text, flags=re.MULTILINE)[1:]
    return {parts[i]: parts[i + 1].strip() + "\n" for i in range(0, len(parts), 2)}


class ScriptedModel:
    """Answers sample requests in iteration order and repair requests by the reply repaired."""

    model = "recorded-example"

    def __init__(self) -> None:
        self.replies = _replies()
        self.iteration = 0

    def complete(self, messages: list[Message], n: int, temperature: float) -> list[Completion]:
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
        config = SolveConfig(task="cartpole", model="recorded-example", workers=1, video=False, **DEMO)
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
