"""The Reward Critic (Auto MC-Reward): verifies reward code before any training.

Static checks first (no execution), then a smoke test in the sandbox on real states from
random rollouts of the task's environment, then optionally the LLM reviews its own code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from eureka.llm import prompts
from eureka.llm.client import LLM
from eureka.llm.extract import extract_code
from eureka.reward import checks
from eureka.types import CHECK_FILE, CheckReport, Status, Task, TrainJob, TrainResult

VERDICT_OK = "VERDICT: OK"
SMOKE_TIMEOUT = 120.0
"""Seconds the smoke test may take (it steps a few hundred random actions)."""


Runner = Callable[[TrainJob], TrainResult]
"""Runs a job to its end in the sandbox: the loop's executor (local processes or Ray)."""


def _verify(
    code: str, task: Task, cand_dir: Path, timeout: float, backend: str | None, run: Runner
) -> CheckReport:
    problems = checks.check_source(code, list(task.spec.state))
    if problems:
        return CheckReport(status=Status.CHECK_FAILED, message="; ".join(problems), stage="static", code=code)
    reward_file = cand_dir / "reward.py"
    reward_file.write_text(code)
    smoke_dir = cand_dir / "smoke"
    result = run(
        TrainJob(
            task_folder=task.folder,
            reward_file=reward_file,
            out_dir=smoke_dir,
            check_only=True,
            backend=backend,
            timeout=timeout,
        )
    )
    if result.status != Status.OK:
        return CheckReport(status=result.status, message=result.message, stage="smoke", code=code)
    return CheckReport(status=Status.OK, message=result.message, stage="passed", code=code)


def _llm_review(code: str, task: Task, llm: LLM, context: str) -> str | None:
    """The critic model's corrected code, or None when it finds nothing to change."""
    prompt = prompts.render("critic", task, context=context, code=code)
    reply = llm.sample([{"role": "user", "content": prompt}], 1, purpose="critic")[0].text
    if VERDICT_OK in reply.upper() and "REVISE" not in reply.upper():
        return None
    revised = extract_code(reply)
    return revised if revised and revised.strip() != code.strip() else None


def review(
    code: str,
    task: Task,
    cand_dir: Path,
    context: str,
    run: Runner,
    llm: LLM | None = None,
    timeout: float | None = None,
    backend: str | None = None,
) -> CheckReport:
    """Check reward code; with `llm`, the critic model may revise code that passed, and the
    revision is kept only when it passes the same checks. The smoke test is a job given to `run`
    (the executor that trains candidates), on the training
    path that will train the candidate (`backend`, else the task's); its wall-clock limit is
    `timeout`, else the smaller of SMOKE_TIMEOUT and the task's training limit."""
    timeout = timeout or min(SMOKE_TIMEOUT, task.spec.training.timeout)
    cand_dir.mkdir(parents=True, exist_ok=True)
    report = _verify(code, task, cand_dir, timeout, backend, run)
    if report.status == Status.OK and llm is not None:
        revised = _llm_review(code, task, llm, context)
        if revised is not None:
            second = _verify(revised, task, cand_dir, timeout, backend, run)
            if second.status == Status.OK:
                report = second.model_copy(update={"revised_by_critic": True, "stage": "passed"})
            else:
                (cand_dir / "reward.py").write_text(code)
    (cand_dir / CHECK_FILE).write_text(report.model_dump_json(indent=2))
    return report
