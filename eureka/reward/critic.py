"""The Reward Critic (Auto MC-Reward): verifies reward code before any training.

Static checks first (no execution), then a smoke test in the sandbox on real states from
random rollouts of the task's environment, then optionally the LLM reviews its own code.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from eureka.llm import prompts
from eureka.llm.client import LLM
from eureka.llm.extract import extract_code
from eureka.reward import checks
from eureka.types import CHECK_FILE, CheckReport, Status, Task, TrainJob, TrainResult, write_whole

VERDICT_OK = "VERDICT: OK"
SMOKE_TIMEOUT = 120.0
"""Seconds the smoke test may take (it steps a few hundred random actions)."""


Runner = Callable[[TrainJob], TrainResult]
"""Runs a job to its end in the sandbox: the loop's executor (local processes or Ray)."""


def _verify(
    code: str,
    task: Task,
    cand_dir: Path,
    timeout: float,
    backend: str | None,
    run: Runner,
    then_train: TrainJob | None = None,
) -> CheckReport:
    problems = checks.check_source(code, list(task.spec.state))
    if problems:
        return CheckReport(status=Status.CHECK_FAILED, message="; ".join(problems), stage="static", code=code)
    reward_file = cand_dir / "reward.py"
    reward_file.write_text(code)
    smoke_dir = cand_dir / "smoke"
    if then_train is not None:
        return _verify_then_train(code, reward_file, smoke_dir, timeout, run, then_train)
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


def _verify_then_train(
    code: str, reward_file: Path, smoke_dir: Path, timeout: float, run: Runner, train: TrainJob
) -> CheckReport:
    """The smoke test and, when it passes, the training, in one worker. A failed smoke test
    leaves nothing in the training's folder: what the job wrote there moves to `smoke_dir`,
    where a smoke test of its own would have written it."""
    out = train.out_dir
    before = set(os.listdir(out)) if out.is_dir() else set()
    result = run(
        train.model_copy(update={"reward_file": reward_file, "smoke_first": True, "smoke_timeout": timeout})
    )
    if result.smoke is not None or result.status == Status.OK:  # no training passes without it
        return CheckReport(status=Status.OK, message=result.smoke or "", stage="passed", code=code)
    if out.is_dir():
        shutil.rmtree(smoke_dir, ignore_errors=True)
        smoke_dir.mkdir(parents=True)
        for name in set(os.listdir(out)) - before:
            if out / name != smoke_dir:
                shutil.move(out / name, smoke_dir / name)
    return CheckReport(status=result.status, message=result.message, stage="smoke", code=code)


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
    then_train: TrainJob | None = None,
) -> CheckReport:
    """Check reward code; with `llm`, the critic model may revise code that passed, and the
    revision is kept only when it passes the same checks. The smoke test is a job given to `run`
    (the executor that trains candidates), on the training
    path that will train the candidate (`backend`, else the task's); its wall-clock limit is
    `timeout`, else the smaller of SMOKE_TIMEOUT and the task's training limit.

    With `then_train` (the job that trains the candidate when it passes; not with `llm`, whose
    revision would come after) the smoke test runs first in that job's worker, which goes on to
    train when it passes: one sandboxed worker per candidate. The training's result is then in
    the job's folder (metrics.json), as if it had been run after this check."""
    timeout = timeout or min(SMOKE_TIMEOUT, task.spec.training.timeout)
    cand_dir.mkdir(parents=True, exist_ok=True)
    if then_train is not None and llm is not None:
        raise ValueError("then_train: the critic model reviews code before it trains")
    report = _verify(code, task, cand_dir, timeout, backend, run, then_train)
    if report.status == Status.OK and llm is not None:
        revised = _llm_review(code, task, llm, context)
        if revised is not None:
            second = _verify(revised, task, cand_dir, timeout, backend, run)
            if second.status == Status.OK:
                report = second.model_copy(update={"revised_by_critic": True, "stage": "passed"})
            else:
                (cand_dir / "reward.py").write_text(code)
    write_whole(cand_dir / CHECK_FILE, report.model_dump_json(indent=2))
    return report
