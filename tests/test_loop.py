"""`eureka solve` end to end with queued and recorded replies: failing candidates, a whole
failing iteration, selection, reflection, final evaluation, HNS, replay and resume."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import FIXTURES, REPO, QueuedBackend, fenced, solve_config, write_task
from rich.console import Console
from typer.testing import CliRunner

from eureka.cli import app
from eureka.llm.client import LLM
from eureka.loop import Loop, human_normalized_score
from eureka.runs.report import final_title
from eureka.types import Candidate, Progress, SolveConfig, Summary, TrainResult

HUMAN = (REPO / "tasks/cartpole/human_reward.py").read_text()
RAISES = (FIXTURES / "rewards/raises.py").read_text()
STRONGER = HUMAN.replace("0.5 * upright", "2.0 * upright")
runner = CliRunner()


def _config(**overrides: object) -> SolveConfig:
    return solve_config(**overrides)  # type: ignore[no-any-return]


def _run(tmp_path: Path, backend: QueuedBackend, **overrides: object) -> tuple[Summary, Path, list[Progress]]:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    from eureka.loop import save_config

    config = _config(**overrides)
    save_config(run_dir, config)
    events: list[Progress] = []
    llm = LLM(backend, transcript=run_dir / "transcript.jsonl", max_tokens=config.max_tokens)
    summary = Loop(config, run_dir, llm, events.append).run()
    return summary, run_dir, events


def test_hns_arithmetic() -> None:
    assert human_normalized_score(300.0, 200.0, 100.0) == 2.0
    assert human_normalized_score(100.0, 200.0, 100.0) == 0.0
    assert human_normalized_score(50.0, 100.0, 200.0) == pytest.approx(-1.5)  # worse than sparse
    assert human_normalized_score(1.0, 5.0, 5.0) is None
    assert human_normalized_score(None, 1.0, 0.0) is None


@pytest.mark.slow
def test_failing_iteration_is_repeated_then_selection_and_reflection(tmp_path: Path) -> None:
    backend = QueuedBackend(
        [
            "I am not able to write that.",
            fenced(RAISES),  # iteration 0: both fail...
            "Still nothing.",
            fenced(RAISES, "Fixed, I hope."),  # ...and so do their repairs
            fenced(HUMAN),
            fenced(STRONGER),  # iteration 1 (repeat): both train
            fenced(STRONGER, "Improved."),
            "no code again",
            "nope",  # iteration 2 (+ one repair)
        ]
    )
    summary, run_dir, events = _run(tmp_path, backend)
    assert summary.status == "ok", summary.message
    its = summary.iterations
    assert [it.repeat for it in its] == [False, True, False]
    assert [c.status.value for c in its[0].candidates] == ["no_code", "crashed"]
    assert its[0].candidates[1].message == (
        'compute_reward raised KeyError: \'balance\' (reward.py line 5: scale = {"upright": 1.0}["balance"])'
    )
    assert [c.status.value for c in its[1].candidates] == ["ok", "ok"]
    assert [c.status.value for c in its[2].candidates] == ["ok", "no_code"]

    # the repeat was asked with the failed reply and its error (Eureka's execution-error prompt)
    repeat_prompt = backend.history[3]  # after the first sample and its two repairs
    assert repeat_prompt[2] == {"role": "assistant", "content": "Still nothing."}
    assert repeat_prompt[3]["content"].startswith(
        "Running the reward function above failed:\nthe reply contains no Python code block"
    )
    # iteration 2 carries the best reply and its reflection
    best = max(its[1].candidates, key=lambda c: c.fitness or 0)
    reflection_prompt = backend.history[4]
    assert reflection_prompt[2]["content"] == (run_dir / best.name / "response.md").read_text()
    feedback = reflection_prompt[3]["content"]
    assert feedback.startswith("We trained a policy with the reward function above")
    for line in ("alive: [", "upright: [", "task_score: [", "episode_length: [", "Max: ", "Mean: ", "Min: "):
        assert line in feedback
    assert "correlation of this reward with the task's hand-written reward over training: " in feedback

    # the best so far is kept, written at the root, and evaluated against human and sparse
    assert summary.best is not None
    assert summary.best.fitness == max(c.fitness or 0 for it in its for c in it.candidates)
    assert (run_dir / "best_reward.py").read_text() == (run_dir / summary.best.name / "reward.py").read_text()
    final = summary.final
    assert final is not None and final.sparse is not None
    assert final.human_normalized_score == pytest.approx(
        human_normalized_score(final.best.fitness_mean, final.human.fitness_mean, final.sparse.fitness_mean)
    )
    on_disk = Summary.model_validate_json((run_dir / "summary.json").read_text())
    assert on_disk == summary
    assert summary.llm_calls == 6 and summary.tokens_in == 900
    for cand in ("iter_0/cand_0", "iter_1/cand_0"):
        assert (run_dir / cand / "response.md").is_file() and (run_dir / cand / "candidate.json").is_file()
    for name in ("metrics.json", "check.json", "reward.py"):
        assert (run_dir / "iter_1/cand_0" / name).is_file()
    # each candidate loads back whole: the reply and its repair, each with its own check
    no_code, crashed = (Candidate.load(run_dir / f"iter_0/cand_{j}") for j in (0, 1))
    assert no_code is not None and crashed is not None
    assert [(a.response, a.check.stage) for a in no_code.attempts] == [
        ("I am not able to write that.", "extract"),
        ("Still nothing.", "extract"),
    ]
    assert [a.check.status.value for a in crashed.attempts] == ["crashed", "crashed"]
    assert crashed.attempts[1].response == fenced(RAISES, "Fixed, I hope.") and crashed.result is None
    trained = Candidate.load(run_dir / best.name)
    assert trained is not None and trained.result is not None and trained.outcome() == best
    assert trained.code == (run_dir / best.name / "reward.py").read_text()
    assert any(e.kind == "final" for e in events)


def test_run_gives_up_after_failed_iterations(tmp_path: Path) -> None:
    backend = QueuedBackend(["no code"] * 12)
    summary, _, _ = _run(tmp_path, backend, max_failed_iterations=2)
    assert summary.status == "failed"
    assert summary.message == (
        "every candidate failed in 2 iterations in a row; last error: "
        "the reply contains no Python code block defining compute_reward"
    )
    assert summary.final is None


def test_an_internal_error_checking_one_candidate_ends_that_candidate_not_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eureka.reward import critic

    review = critic.review

    def failing(code: str, *args: object, **kwargs: object) -> object:
        if "BROKEN" in code:
            raise RuntimeError("a fault of eureka's own")
        return review(code, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(critic, "review", failing)
    broken = fenced(HUMAN + "\n# BROKEN\n")
    backend = QueuedBackend([fenced(HUMAN), broken, broken])  # the second's repair round: broken again
    summary, run_dir, _ = _run(tmp_path, backend, iterations=1, eval_seeds=0, repair_rounds=1)
    assert summary.status == "ok", summary.message
    ok, crashed = summary.iterations[0].candidates
    assert ok.status.value == "ok" and ok.fitness is not None
    assert crashed.status.value == "crashed"
    assert crashed.message == (
        "checking it failed: RuntimeError: a fault of eureka's own "
        "(traceback in iter_0/cand_1/repair/check_error.log)"
    )
    log = (run_dir / "iter_0/cand_1/repair/check_error.log").read_text()
    assert log.startswith("Traceback") and "in failing" in log
    assert "a fault of eureka's own" in (run_dir / "iter_0/cand_1/check_error.log").read_text()


@pytest.mark.slow
def test_human_init_and_tune_add_candidates(tmp_path: Path) -> None:
    backend = QueuedBackend(["no code"] * 8)  # 2 samples + 2 repairs, twice
    summary, run_dir, _ = _run(tmp_path, backend, human_init=True, tune=2, eval_seeds=0)
    first, second = summary.iterations
    assert [c.origin for c in first.candidates] == ["llm", "llm", "human"]
    assert first.candidates[2].status.value == "ok"
    assert [c.origin for c in second.candidates] == ["llm", "llm", "tune", "tune"]
    tuned = (run_dir / "iter_1/cand_2/reward.py").read_text()
    assert tuned != HUMAN and "def compute_reward" in tuned


@pytest.mark.slow
def test_budget_stops_the_run_but_trains_what_passed_and_evaluates_it(tmp_path: Path) -> None:
    backend = QueuedBackend([fenced(HUMAN), "no code", fenced(HUMAN)])
    summary, _, _ = _run(tmp_path, backend, max_tokens=100, eval_seeds=1)
    assert summary.status == "budget"
    assert summary.message == "stopped: the token budget of 100 is spent"
    (first,) = summary.iterations
    # the repair of cand_1 was refused; cand_0 had passed the critic and still trained
    assert [c.status.value for c in first.candidates] == ["ok", "no_code"]
    assert summary.best is not None and summary.best.name == "iter_0/cand_0"
    assert summary.final is not None and summary.final.best.fitness_mean is not None
    assert len(backend.history) == 1


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recorded run (transcript.jsonl) of a 2-iteration solve on cartpole."""
    root = tmp_path_factory.mktemp("recording")
    backend = QueuedBackend([fenced(HUMAN), "no code", "no code", fenced(STRONGER), fenced(RAISES), "x"])
    run_dir = root / "run"
    run_dir.mkdir()
    llm = LLM(backend, transcript=run_dir / "transcript.jsonl")
    Loop(_config(eval_seeds=0), run_dir, llm, lambda e: None).run()
    return run_dir / "transcript.jsonl"


def _solve_args(transcript: Path, runs_dir: Path) -> list[str]:
    return [
        "solve",
        "cartpole",
        "--model",
        f"replay:{transcript}",
        "--iterations",
        "2",
        "--samples",
        "2",
        "--workers",
        "1",
        "--timesteps",
        "1500",
        "--eval-seeds",
        "0",
        "--no-video",
        "--no-cache",
        "--runs-dir",
        str(runs_dir),
    ]


def _summary(runs_dir: Path) -> Summary:
    (path,) = runs_dir.glob("cartpole/*/summary.json")
    return Summary.model_validate_json(path.read_text())


def _outcome(summary: Summary) -> list[tuple[str, str, float | None]]:
    return [(c.name, c.status.value, c.fitness) for it in summary.iterations for c in it.candidates]


@pytest.mark.slow
def test_replay_through_the_cli_reproduces_the_run(recording: Path, tmp_path: Path) -> None:
    original = Summary.model_validate_json((recording.parent / "summary.json").read_text())
    result = runner.invoke(app, _solve_args(recording, tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    assert "human-normalised score" not in result.output  # no final evaluation asked
    assert "best: iter_" in result.output and "run directory:" in result.output
    assert _outcome(_summary(tmp_path / "runs")) == _outcome(original)


@pytest.mark.slow
def test_replay_of_a_different_prompt_names_the_difference(recording: Path, tmp_path: Path) -> None:
    args = _solve_args(recording, tmp_path / "runs")
    args[args.index("cartpole")] = "pendulum"
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "error: replay: a prompt differs from the recording" in result.output
    assert "message 2 (user), line 1: recorded 'Task: cartpole', now 'Task: pendulum'" in result.output
    # not "continue with eureka solve --resume": a resumed run would ask the same prompt
    assert result.output.splitlines()[-1] == (
        "a resumed run would stop the same way: start a new run once the error above is fixed"
    )


@pytest.mark.slow
def test_resume_after_kill_gives_the_same_result(
    recording: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs_dir = tmp_path / "runs"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "eureka", *_solve_args(recording, runs_dir)]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(runs_dir.glob("cartpole/*/iter_0/cand_0/candidate.json")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the orchestrator and its worker, mid-run
    proc.wait()
    (run_dir,) = runs_dir.glob("cartpole/*")
    assert not (run_dir / "iter_1").exists() or not (run_dir / "iter_1/cand_1/candidate.json").exists()
    first = json.loads((run_dir / "iter_0/cand_0/candidate.json").read_text())
    # its summary still says running; the list says its process is gone (it said running for ever)
    monkeypatch.setenv("COLUMNS", "250")  # rich's tables fold long cells on a narrow terminal
    listed = runner.invoke(app, ["runs", "list", "--runs-dir", str(runs_dir)])
    assert listed.exit_code == 0 and " stopped " in listed.output and " running " not in listed.output
    shown = runner.invoke(app, ["runs", "show", str(run_dir)])
    assert f"its process is gone (killed?); continue with eureka solve --resume {run_dir}" in " ".join(
        shown.output.split()
    )
    result = runner.invoke(app, ["solve", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output
    resumed = _summary(runs_dir)
    original = Summary.model_validate_json((recording.parent / "summary.json").read_text())
    assert _outcome(resumed) == _outcome(original)
    assert json.loads((run_dir / "iter_0/cand_0/candidate.json").read_text()) == first  # not retrained
    # totals over both parts: the killed part's LLM calls and finished training count
    assert (resumed.llm_calls, resumed.env_steps) == (original.llm_calls, original.env_steps)
    assert resumed.parts == 2 and resumed.part.llm_calls < resumed.llm_calls
    assert resumed.part.env_steps < resumed.env_steps and resumed.wall_time > resumed.part.wall_time
    assert not (run_dir / "owner").exists()  # released by the resumed run's end


@pytest.mark.slow
def test_the_budget_shown_is_the_budget_trained_on_the_batched_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = yaml.safe_load((REPO / "tasks/cartpole/task.yaml").read_text())
    data["name"] = "short_cartpole"
    data["training"]["timesteps"] = 1000  # the SB3 budget, which the batched path does not train
    data["training"]["batched"]["timesteps"] = 4096
    files = {f: (REPO / "tasks/cartpole" / f).read_text() for f in ("fitness.py", "human_reward.py")}
    folder = write_task(tmp_path / "tasks", "short_cartpole", yaml.safe_dump(data), files)
    monkeypatch.setenv("EUREKA_TASKS_PATH", str(folder.parent))
    listed = runner.invoke(app, ["tasks", "list"])
    (row,) = [line for line in listed.output.splitlines() if "short_cartpole" in line]
    assert "4,096" in row and "1,000" not in row
    other = HUMAN.replace("0.3 * centred", "0.4 * centred")  # not the human reward, which trains once
    summary, run_dir, _ = _run(
        tmp_path, QueuedBackend([fenced(other)]), task=str(folder), iterations=1, samples=1, timesteps=None
    )
    final = summary.final
    assert final is not None and final.timesteps == 4096
    trained = [
        TrainResult.model_validate_json(m.read_text()).env_steps
        for m in (run_dir / "final").glob("*/metrics.json")
    ]
    assert trained == [4096] * 3  # best, human, sparse × 1 seed
    assert final_title(final) == "final evaluation, 1 seeds × 4,096 steps"
    assert final_title(final) in (run_dir / "report.html").read_text()


@pytest.mark.slow
def test_a_task_without_a_human_reward_is_evaluated_against_sparse_alone(tmp_path: Path) -> None:
    """No human_reward.py: the final evaluation trains the best and the sparse reward, not a
    "human" run of no reward at all; the summary has no human row and no HNS, and says why."""
    from eureka.runs.display import summary_panel

    data = yaml.safe_load((REPO / "tasks/cartpole/task.yaml").read_text())
    data["name"] = "no_human"
    fitness = {"fitness.py": (REPO / "tasks/cartpole/fitness.py").read_text()}
    folder = write_task(tmp_path / "tasks", "no_human", yaml.safe_dump(data), fitness)
    summary, run_dir, _ = _run(
        tmp_path, QueuedBackend([fenced(HUMAN)]), task=str(folder), iterations=1, samples=1
    )
    final = summary.final
    assert final is not None and final.human is None and final.human_normalized_score is None
    assert final.sparse is not None and final.sparse.statuses == final.best.statuses == ["ok"]
    assert sorted(p.name for p in (run_dir / "final").iterdir()) == ["best_seed1000", "sparse_seed1000"]
    console = Console(record=True, width=200)
    console.print(summary_panel(summary, str(run_dir)))
    text = console.export_text()
    assert " human:" not in text and "the task has no human reward: add human_reward.py" in text
    assert "human-normalised score" in (run_dir / "report.html").read_text()


def _quiet(event: Progress) -> None:
    return None


class _Killed(BaseException):
    """Stands for a kill: nothing in the loop catches it, so nothing is saved on the way out."""


class _DiesOnCall(QueuedBackend):
    def __init__(self, replies: list[str], dies_on: int) -> None:
        super().__init__(replies)
        self.dies_on = dies_on

    def complete(self, messages, n, temperature, call=None):  # type: ignore[no-untyped-def]
        if len(self.history) + 1 == self.dies_on:
            raise _Killed
        return super().complete(messages, n, temperature, call)


@pytest.mark.slow
def test_resumed_run_totals_equal_the_uninterrupted_runs(recording: Path, tmp_path: Path) -> None:
    """The recording's run, stopped dead at its third LLM call and resumed: LLM calls, tokens,
    cost and env steps over both parts equal the uninterrupted run's; wall time is split."""
    from eureka.loop import save_config

    original = Summary.model_validate_json((recording.parent / "summary.json").read_text())
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_config(run_dir, _config(eval_seeds=0))
    first = _DiesOnCall([fenced(HUMAN), "no code", "no code"], dies_on=3)
    with pytest.raises(_Killed):
        Loop(
            _config(eval_seeds=0), run_dir, LLM(first, transcript=run_dir / "transcript.jsonl"), _quiet
        ).run()
    rest = QueuedBackend([fenced(STRONGER), fenced(RAISES), "x"])
    llm = LLM(rest, transcript=run_dir / "transcript.jsonl")
    resumed = Loop(_config(eval_seeds=0), run_dir, llm, lambda e: None).run()
    totals = ("llm_calls", "tokens_in", "tokens_out", "cost", "env_steps")
    assert [getattr(resumed, k) for k in totals] == [getattr(original, k) for k in totals]
    assert original.llm_calls == 4 and original.tokens_in > 0 and original.env_steps >= 2 * 1500
    assert resumed.parts == 2 and original.parts == 1
    assert (resumed.part.llm_calls, resumed.part.tokens_in) == (2, 300)  # iteration 1: 2 samples, 1 repair
    assert 0 < resumed.part.env_steps < resumed.env_steps  # the first part trained iteration 0
    assert resumed.wall_time > resumed.part.wall_time > 0
    # the report, the end-of-run panel and the batch tables show the totals and the split
    from eureka.runs import batch, display

    parts = f"{resumed.wall_time:.0f} s over 2 parts (this part {resumed.part.wall_time:.0f} s)"
    report = (run_dir / "report.html").read_text()
    assert parts in report and "this part: 2 LLM calls, 450 tokens" in report
    assert f"${original.cost:.4f}" in report and f"{original.env_steps:,} env steps" in report
    panel = io.StringIO()
    Console(file=panel, width=200).print(display.summary_panel(resumed, str(run_dir)))
    assert f"LLM: 4 calls, {original.tokens_in + original.tokens_out:,} tokens" in panel.getvalue()
    assert f"wall {parts}" in panel.getvalue()
    row = batch.judge(batch.SuiteEntry(task="cartpole"), run_dir, None)
    assert (row.parts, row.env_steps, row.tokens) == (
        2,
        original.env_steps,
        resumed.tokens_in + resumed.tokens_out,
    )
    assert parts in batch.markdown(batch.BatchResult(tasks=[row], wall_time=1.0))
