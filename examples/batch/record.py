"""Records the LLM replies that examples/batch/suite.yaml and tests/test_batch.py replay (run
from the repository root: `python examples/batch/record.py`). One iteration per task, so each
transcript holds only the first prompt (no training statistics) and the repair prompts, which
do not depend on the machine. cartpole and mountain_car_continuous get working rewards;
pendulum gets replies without code, so its run fails."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from eureka.llm.client import LLM, Completion, Message
from eureka.loop import Loop, save_config
from eureka.types import SolveConfig

HERE = Path(__file__).parent
REPO = HERE.parents[1]
SETTINGS = {"iterations": 1, "samples": 2, "timesteps": 3000, "eval_seeds": 1, "video": False}


def fenced(code: str) -> str:
    return f"Here is a reward function.\n\n```python\n{code.strip()}\n```\n"


def replies(task: str) -> list[str]:
    if task == "pendulum":
        return ["I am not able to write code for this.", "Sorry, still no code.", "No.", "No code, sorry."]
    human = (REPO / "tasks" / task / "human_reward.py").read_text()
    return [fenced(human), fenced(human.replace("0.5", "0.8"))]


class Scripted:
    """Serves the replies in order (the recording's model)."""

    model = "recorded-example"

    def __init__(self, queue: list[str]) -> None:
        self.queue = list(queue)

    def complete(self, messages: list[Message], n: int, temperature: float) -> list[Completion]:
        out, self.queue = self.queue[:n], self.queue[n:]
        return [Completion(text=t, model=self.model) for t in out]


def main() -> None:
    for task in ("cartpole", "mountain_car_continuous", "pendulum"):
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = Path(tmp)
            config = SolveConfig(
                task=task, model="recorded-example", workers=2, max_failed_iterations=1, **SETTINGS
            )
            save_config(run_dir, config)
            llm = LLM(Scripted(replies(task)), transcript=run_dir / "transcript.jsonl")
            summary = Loop(config, run_dir, llm, lambda e: None).run()
            (HERE / task).mkdir(exist_ok=True)
            shutil.copyfile(run_dir / "transcript.jsonl", HERE / task / "transcript.jsonl")
            print(task, summary.status, summary.message)


if __name__ == "__main__":
    main()
