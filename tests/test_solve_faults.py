"""`eureka solve` as a user runs it against a misbehaving provider on 127.0.0.1: what they see
when it hangs, fails, returns nothing, or costs too much, and what Ctrl-C does."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, fenced
from fake_provider import FakeProvider, empty, hang, reply
from typer.testing import CliRunner

from eureka.cli import app
from eureka.types import Summary

runner = CliRunner()
MODEL = "openai/gpt-4o"
NOISE = ("Give Feedback", "LiteLLM.Info", "Provider List", "\x1b[", "Traceback")


def _args(base: str, runs: Path, *extra: str) -> list[str]:
    return [
        "solve",
        "cartpole",
        "--model",
        MODEL,
        "--api-base",
        base,
        "--iterations",
        "1",
        "--samples",
        "2",
        "--workers",
        "1",
        "--timesteps",
        "1000",
        "--eval-seeds",
        "0",
        "--no-video",
        "--request-timeout",
        "1",
        "--request-retries",
        "1",
        "--runs-dir",
        str(runs),
        *extra,
    ]


def _run_dir(runs: Path) -> Path:
    (run_dir,) = runs.glob("cartpole/*")
    return run_dir


def _summary(runs: Path) -> Summary:
    return Summary.model_validate_json((_run_dir(runs) / "summary.json").read_text())


def test_a_hung_provider_is_shown_waiting_then_named_with_the_timeout(tmp_path: Path) -> None:
    with FakeProvider(hang()) as p:
        result = runner.invoke(app, _args(p.openai_base, tmp_path / "runs"))
        assert len(p.requests) == 2
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert any(re.fullmatch(rf"waiting for {MODEL} \(attempt 1/2, \d s\)", line) for line in lines)
    run_dir = _run_dir(tmp_path / "runs")
    assert re.fullmatch(
        rf"error: {MODEL}: gave up after 2 tries in \d s: no reply within the request timeout of 1 s at "
        rf"{p.openai_base}; raise --request-timeout, or check that the provider is up",
        lines[-2],
    )
    assert lines[-1] == f"continue with eureka solve --resume {run_dir}"
    assert not any(noise in result.output for noise in NOISE)
    assert _summary(tmp_path / "runs").status == "failed"


def test_empty_replies_are_named_and_repeats_are_sampled_anew(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    with FakeProvider(empty()) as p:
        result = runner.invoke(app, _args(p.openai_base, runs))
        asked = len(p.requests)
    assert result.exit_code == 1
    summary = _summary(runs)
    assert summary.status == "failed" and len(summary.iterations) == 3
    for iteration in summary.iterations:
        assert [c.message for c in iteration.candidates] == ["the model returned an empty reply"] * 2
    # 3 iterations × (one sample of 2 + a repair each); the repeats' prompts are the same, and
    # still every one went to the provider: none came back from the cache
    assert asked == 9
    transcript = [json.loads(line) for line in (_run_dir(runs) / "transcript.jsonl").read_text().splitlines()]
    assert len(transcript) == 9 and not any(e["cached"] for e in transcript)
    assert transcript[3]["messages"] == transcript[6]["messages"]

    # the same command with --api-base pointing at nothing is not answered from the cache
    with FakeProvider(empty()) as gone:
        dead = gone.openai_base
    again = runner.invoke(app, _args(dead, tmp_path / "runs2"))
    assert again.exit_code == 2
    assert f"could not reach the provider at {dead}" in again.output


def test_a_budget_too_small_for_one_call_refuses_it_and_says_how_to_go_on(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    with FakeProvider(empty()) as p:
        result = runner.invoke(app, _args(p.openai_base, runs, "--max-cost", "0.0001"))
        assert not p.requests  # refused before sending
    assert result.exit_code == 1
    summary = _summary(runs)
    assert summary.status == "budget" and summary.cost == 0
    assert summary.message.startswith("stopped: the next call could cost $0.")
    assert summary.message.endswith(
        "more than the $0.0001 left of the cost budget of $0.0001; raise --max-cost, or lower --samples "
        "or --reply-tokens; no candidate had trained, so there is no final evaluation"
    )
    run_dir = _run_dir(runs)
    assert result.output.splitlines()[-1] == (
        f"continue with a larger budget: eureka solve --resume {run_dir} "
        "--max-cost DOLLARS (or --max-tokens N)"
    )
    assert (run_dir / "report.html").is_file()


def test_failed_starts_leave_no_run_folder_and_markup_is_not_swallowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    result = runner.invoke(
        app,
        [
            "solve",
            "cartpole",
            "--model",
            "local/smollm2",
            "--backend",
            "sb3",
            "--halving",
            "2",
            "--runs-dir",
            str(runs),
        ],
    )
    assert result.exit_code == 2
    assert "no model given" not in result.output  # it was given
    assert "--halving continues training from checkpoints" in result.output
    assert not list(runs.glob("cartpole/*"))
    bracketed = runner.invoke(app, ["solve", "cartpole", "--workers", "[local]", "--runs-dir", str(runs)])
    assert bracketed.output.strip() == "error: --workers '[local]': give a number of at least 1, or 'auto'"
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    default = runner.invoke(
        app, ["solve", "cartpole", "--backend", "sb3", "--halving", "2", "--runs-dir", str(runs)]
    )
    assert "note: no model given and no provider key set" in default.output


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    """`eureka ARGS` in a process of its own, its output merged and read line by line."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "250"}
    return subprocess.Popen(
        [sys.executable, "-m", "eureka", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_ctrl_c_during_a_hung_request_stops_cleanly_and_says_how_to_resume(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    with FakeProvider(hang()) as p:
        args = _args(p.openai_base, runs)
        args[args.index("--request-timeout") + 1] = "30"
        proc = _spawn(args)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:  # the request is out and hanging
                if line.startswith(f"waiting for {MODEL}"):
                    break
            pressed = time.monotonic()
            proc.send_signal(signal.SIGINT)
            rest = proc.stdout.read()
            code = proc.wait(timeout=60)
        finally:
            proc.kill()
        took = time.monotonic() - pressed
    run_dir = _run_dir(runs)
    assert code == 130
    assert rest.splitlines()[-1] == f"interrupted; continue with eureka solve --resume {run_dir}"
    assert "stopping: ending the running jobs (Ctrl-C again to exit at once)" in rest
    assert took < 20  # seconds, on a loaded machine; the request alone would wait 30 s × 3 tries
    summary = _summary(runs)
    assert summary.status == "interrupted" and summary.message == "interrupted by the user"
    assert len(p.requests) == 1


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.slow
def test_ctrl_c_during_training_kills_the_jobs_and_keeps_them_unfinished(tmp_path: Path) -> None:
    human = (REPO / "tasks/cartpole/human_reward.py").read_text()
    runs = tmp_path / "runs"
    with FakeProvider(reply(fenced(human))) as p:
        args = _args(p.openai_base, runs)
        args[args.index("--timesteps") + 1] = "5000000"  # far longer than the test
        args[args.index("--samples") + 1] = "1"
        proc = _spawn(args)
        try:
            deadline = time.monotonic() + 300
            while not list(runs.glob("cartpole/*/iter_0/cand_0/progress.json")):
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
            run_dir = _run_dir(runs)
            assert _processes_mentioning(str(run_dir))  # the training worker
            pressed = time.monotonic()
            proc.send_signal(signal.SIGINT)
            output, _ = proc.communicate(timeout=60)
        finally:
            proc.kill()
        took = time.monotonic() - pressed
    assert proc.returncode == 130
    assert output.splitlines()[-1] == f"interrupted; continue with eureka solve --resume {run_dir}"
    assert took < 20  # seconds, on a loaded machine
    assert not _processes_mentioning(str(run_dir))  # the workers' process groups were killed
    for name in ("metrics.json", "candidate.json"):  # unfinished: a resume trains it
        assert not (run_dir / "iter_0/cand_0" / name).exists()
    assert _summary(runs).status == "interrupted"


def test_a_run_whose_task_folder_moved_resumes_from_the_folder_given(tmp_path: Path) -> None:
    """A run keeps its task folder's path; when the folder has moved, --resume alone says how to
    point at the new place, and `solve NEW_FOLDER --resume RUN` continues the run with it (a task
    given for a run whose folder still exists must be that folder)."""
    import shutil

    runs = tmp_path / "runs"
    first = shutil.copytree(REPO / "tasks/cartpole", tmp_path / "mine" / "cartpole")
    args = ["--model", "none", "--iterations", "1", "--tune", "1", "--structure", "0", "--confirm", "0"]
    args += ["--timesteps", "2000", "--eval-seeds", "0", "--no-video", "--workers", "1"]
    started = runner.invoke(app, ["solve", str(first), *args, "--runs-dir", str(runs)])
    assert started.exit_code == 0, started.output
    run_dir = _run_dir(runs)
    before = _summary(runs)
    wrong = runner.invoke(app, ["solve", "pendulum", "--resume", str(run_dir)])
    assert wrong.exit_code == 2 and wrong.output.startswith(
        f"error: {run_dir} is a run of the task in {first}, not "
    )
    spec = (first / "task.yaml").read_text()
    (first / "task.yaml").write_text(spec + "unknown_key: 1\n")  # there but broken: its own error, not "gone"
    broken = runner.invoke(app, ["solve", "--resume", str(run_dir)])
    assert broken.exit_code == 2 and "unknown_key" in broken.output and "gone" not in broken.output
    (first / "task.yaml").write_text(spec)
    moved = (tmp_path / "mine").rename(tmp_path / "elsewhere") / "cartpole"
    alone = runner.invoke(app, ["solve", "--resume", str(run_dir)])
    assert alone.exit_code == 2
    assert alone.output.strip() == (
        f"error: this run's task folder {first} is gone (moved or deleted); give its new place: "
        f"eureka solve FOLDER --resume {run_dir}"
    )
    other = runner.invoke(app, ["solve", "pendulum", "--resume", str(run_dir)])
    assert other.exit_code == 2
    assert f"is a run of task 'cartpole', and {REPO / 'tasks/pendulum'} holds task 'pendulum'" in other.output
    again = runner.invoke(app, ["solve", str(moved), "--resume", str(run_dir)])
    assert again.exit_code == 0, again.output
    assert f"note: this run's task folder {first} is gone; resuming with {moved}" in again.output
    after = _summary(runs)
    assert after.status == before.status == "ok" and after.best == before.best  # nothing trained again
    assert runner.invoke(app, ["solve", "--resume", str(run_dir)]).exit_code == 0  # the new place is kept


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("iterations: [\n", "cannot be read (while parsing a flow node)"),
        ("- a list\n", "not a mapping of options"),
        ("task: cartpole\n", "key 'model': Field required"),
    ],
)
def test_resuming_a_run_whose_config_is_damaged_names_the_file(text: str, why: str, tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(text)
    result = runner.invoke(app, ["solve", "--resume", str(tmp_path)])
    assert result.exit_code == 2
    fix = "the run wrote it when it started: restore it, or start a new run"
    assert " ".join(result.output.split()) == f"error: {tmp_path / 'config.yaml'}: {why}; {fix}"


def test_resuming_a_run_of_eureka_train_says_what_it_is(tmp_path: Path) -> None:
    """Not 'config.yaml: key task: Field required; restore it', which sends the user to repair it."""
    (tmp_path / "config.yaml").write_text("command: train\nreward: human\ntask_folder: tasks/cartpole\n")
    result = runner.invoke(app, ["solve", "--resume", str(tmp_path)])
    assert result.exit_code == 2
    assert " ".join(result.output.split()) == (
        f"error: {tmp_path} is a run of eureka train, not of eureka solve: there is no evolution to resume; "
        "start one with eureka solve TASK"
    )


def test_a_damaged_run_file_is_named_and_deleting_it_redoes_only_its_step(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    args = ["solve", "cartpole", "--model", "none", "--iterations", "1", "--tune", "0", "--structure", "0"]
    args += ["--confirm", "0", "--timesteps", "1000", "--eval-seeds", "0", "--no-video", "--workers", "1"]
    assert runner.invoke(app, [*args, "--runs-dir", str(runs)]).exit_code == 0
    run_dir = _run_dir(runs)
    record = run_dir / "iter_0/cand_0/candidate.json"
    metrics = run_dir / "iter_0/cand_0/metrics.json"
    trained = metrics.stat().st_mtime_ns
    record.write_text(record.read_text()[:40])
    damaged = runner.invoke(app, ["solve", "--resume", str(run_dir)])
    assert damaged.exit_code == 2
    assert f"error: {record}: damaged (Invalid JSON: " in " ".join(damaged.output.split())
    assert "delete it and resume to redo the step it records, or restore it" in " ".join(
        damaged.output.split()
    )
    record.unlink()
    again = runner.invoke(app, ["solve", "--resume", str(run_dir)])
    assert again.exit_code == 0, again.output
    assert record.is_file() and metrics.stat().st_mtime_ns == trained  # checked again, not retrained
    assert _summary(runs).status == "ok"


CARTPOLE_REWARD = """
import torch


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    upright = torch.cos(pole_angle)
    return upright, {"upright": upright}
"""


def test_a_broken_task_folder_ends_the_run_after_one_iteration_and_says_to_start_anew(tmp_path: Path) -> None:
    """An env id with a typo: no reward can get past it, so the run stops after the first
    iteration with what `tasks check` finds (it went on asking the model for 3 iterations and
    repairs, then pointed to --resume, which replays the same failures)."""
    folder = tmp_path / "mine" / "cartpole"
    shutil.copytree(REPO / "tasks" / "cartpole", folder)
    spec = folder / "task.yaml"
    spec.write_text(spec.read_text().replace("CartPole-v1", "CartPol-v1"))
    runs = tmp_path / "runs"
    with FakeProvider(reply(fenced(CARTPOLE_REWARD))) as p:
        args = _args(p.openai_base, runs)
        args[1] = str(folder)
        result = runner.invoke(app, args)
        asked = len(p.requests)
    assert result.exit_code == 1, result.output
    summary = _summary(runs)
    assert summary.status == "failed" and len(summary.iterations) == 1
    assert summary.message.startswith(
        f"the task folder has a problem no reward can get past (eureka tasks check {folder}):"
    )
    assert "env.id 'CartPol-v1'" in summary.message and "CartPole" in summary.message
    assert asked <= 3  # the first iteration's sample and its repairs, not three iterations' worth
    last = " ".join(result.output.split()).rsplit("fix what the error names", 1)[-1]
    assert last == (
        f" (`eureka tasks check {folder}` checks the task folder), then start a new run: "
        f"eureka solve {folder} (a resumed run would replay the failed candidates)"
    )


def test_options_a_resumed_run_cannot_take_are_named(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    first = runner.invoke(
        app,
        ["solve", "cartpole", "--model", "none", "--iterations", "1", "--timesteps", "1000",
         "--eval-seeds", "0", "--no-video", "--runs-dir", str(runs)],
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    run_dir = _run_dir(runs)
    again = runner.invoke(app, ["solve", "--resume", str(run_dir), "--iterations", "2", "--max-cost", "1"])
    assert again.exit_code == 0, again.output
    said = " ".join(again.output.split())
    assert (
        "note: ignored with --resume: --iterations (a resumed run keeps the settings in "
        f"{run_dir / 'config.yaml'}; "
        "only --max-cost, --max-tokens, --reply-tokens, --request-timeout, --request-retries may change); "
        "start a new run to change them"
    ) in said
    assert "--max-cost" not in said.split("ignored with --resume:")[1].split("(")[0]
    assert len(_summary(runs).iterations) == 1
