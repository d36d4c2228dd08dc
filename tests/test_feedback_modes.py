"""The feedback modes end to end: the synthetic oracle, the ranking page in headless Chromium,
a critique typed at a real terminal through the CLI, and the refusal without a terminal."""

from __future__ import annotations

import io
import json
import os
import queue
import shutil
import sys
import threading
from pathlib import Path

import pytest
from conftest import REPO, QueuedBackend, fenced, solve_config
from typer.testing import CliRunner

from eureka.cli import app
from eureka.feedback.judges import TerminalHuman
from eureka.feedback.rank_page import WebRanker
from eureka.llm.client import LLM
from eureka.loop import Loop, save_config
from eureka.types import Feedback, SolveConfig, Summary

HUMAN = (REPO / "tasks/cartpole/human_reward.py").read_text()
STRONGER = HUMAN.replace("0.5 * upright", "2.0 * upright")
WEAK = """import torch

def compute_reward(cart_position: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    drift = cart_position.abs()
    return drift, {"drift": drift}
"""
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
runner = CliRunner()


def _config(**overrides: object) -> SolveConfig:
    settings: dict[str, object] = {"samples": 3, "workers": 2, "timesteps": 3000, "eval_seeds": 0}
    return solve_config(**{**settings, **overrides})  # type: ignore[no-any-return]


def _loop(run_dir: Path, backend: QueuedBackend, judge: object = None, **overrides: object) -> Loop:
    run_dir.mkdir(parents=True, exist_ok=True)
    config = _config(**overrides)
    save_config(run_dir, config)
    llm = LLM(backend, transcript=run_dir / "transcript.jsonl")
    return Loop(config, run_dir, llm, lambda event: None, judge=judge)  # type: ignore[arg-type]


def _replies() -> list[str]:
    return [fenced(HUMAN), fenced(WEAK), fenced(STRONGER), fenced(HUMAN), fenced(STRONGER), fenced(HUMAN)]


@pytest.mark.slow
def test_synthetic_feedback_ranks_by_true_fitness_and_steers_the_next_prompt(tmp_path: Path) -> None:
    backend = QueuedBackend(_replies())
    summary = _loop(tmp_path / "run", backend, feedback="synthetic").run()
    assert summary.status == "ok", summary.message
    first = Feedback.model_validate_json((tmp_path / "run/iter_0/feedback.json").read_text())
    assert first.mode == "synthetic" and first.ranking is not None and first.ranking.source == "synthetic"
    fitness = {c.name: c.fitness for c in summary.iterations[0].candidates}
    assert first.ranking.order == sorted(fitness, key=lambda n: -(fitness[n] or 0.0))
    assert (first.elite, first.worst) == (first.ranking.order[0], first.ranking.order[-1])
    elite_code = (tmp_path / "run" / first.elite / "reward.py").read_text()
    worst_code = (tmp_path / "run" / first.worst / "reward.py").read_text()
    prompt = backend.history[1][-1]["content"]
    assert f"The one they liked best was trained with:\n```python\n{elite_code}\n```" in prompt
    assert f"The one they liked least was trained with:\n```python\n{worst_code}\n```" in prompt
    assert (
        "Trajectory analysis of the evaluation rollouts:\nEvaluation rollouts of the trained policy" in prompt
    )
    assert all(c.elo is not None for c in summary.iterations[0].candidates)
    second = Feedback.model_validate_json((tmp_path / "run/iter_1/feedback.json").read_text())
    assert second.ranking is not None and first.elite in second.ranking.order  # the elite is re-ranked


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make install puts it there)")
@pytest.mark.slow
def test_ranking_page_in_headless_chromium_steers_the_next_prompt(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    urls: queue.Queue[str] = queue.Queue()
    announced: list[str] = []
    ranker = WebRanker(announced.append, on_url=urls.put)
    backend = QueuedBackend(_replies())
    loop = _loop(tmp_path / "run", backend, judge=ranker, feedback="rank", iterations=1, video=True)
    outcome: dict[str, Summary] = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("summary", loop.run()), daemon=True)
    thread.start()
    url = urls.get(timeout=300)
    assert announced == [f"rank iteration 0's 3 candidates at {url} (waiting for the page)"]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        page = browser.new_page()
        page.goto(url)
        assert page.locator("video").count() == 3
        names = page.eval_on_selector_all(".card", "cards => cards.map(c => c.dataset.name)")
        # an incomplete answer is refused with a message on the page
        page.select_option("#rank-0", "1")
        page.click("#submit")
        page.wait_for_selector("#error:has-text('give every video a different rank')")
        for i, rank in enumerate(["2", "3", "1"]):
            page.select_option(f"#rank-{i}", rank)
        page.fill("#comment-2", "keeps the pole still")
        page.fill("#comment-1", "runs off the track")
        page.click("#submit")
        page.wait_for_selector("#done", state="visible")
        page.screenshot(path=str(tmp_path / "ranking.png"))
        browser.close()
    thread.join(timeout=300)
    summary = outcome["summary"]
    assert summary.status == "ok"
    fb = Feedback.model_validate_json((tmp_path / "run/iter_0/feedback.json").read_text())
    assert fb.ranking is not None and fb.ranking.source == "human"
    assert fb.ranking.order == [names[2], names[0], names[1]]
    assert (fb.elite, fb.worst) == (names[2], names[1])
    assert summary.best is not None and summary.best.name == names[2]  # the preferred one, not the best F
    assert (tmp_path / "run/best_reward.py").read_text() == (
        tmp_path / "run" / names[2] / "reward.py"
    ).read_text()
    assert (tmp_path / "ranking.png").stat().st_size > 10_000


@pytest.mark.slow
def test_critique_at_a_terminal_through_the_cli_and_its_replay(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    critique = "it runs off the track to the right"
    human = TerminalHuman(lambda _: None, io.StringIO(f"{critique}\n\n\n"))  # iteration 1: nothing
    backend = QueuedBackend([fenced(HUMAN), fenced(WEAK), fenced(STRONGER), fenced(HUMAN)])
    recorded = tmp_path / "recorded"
    summary = _loop(recorded, backend, judge=human, feedback="critique", samples=2).run()
    assert summary.status == "ok", summary.message
    assert (
        f'A human watched the policy trained with the reward above and said:\n"{critique}"'
        in (backend.history[1][-1]["content"])
    )
    eureka = str(Path(sys.executable).parent / "eureka")
    args = [
        "solve", "cartpole", "--model", f"replay:{recorded}", "--feedback", "critique", "--iterations", "2",
        "--samples", "2", "--timesteps", "3000", "--eval-seeds", "0", "--workers", "2", "--no-video",
        "--no-open-videos",
    ]  # fmt: skip
    child = pexpect.spawn(
        eureka, args, env=dict(os.environ), encoding="utf-8", timeout=300, dimensions=(50, 200)
    )
    child.expect("Iteration 0: the best candidate so far")
    child.expect("critique \\(an empty line ends it")
    child.sendline(critique)
    child.expect("critique \\(an empty line ends it")
    child.sendline("")
    child.expect("Iteration 1: the best candidate so far")
    child.expect("critique \\(an empty line ends it")
    child.sendline("")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    (run,) = Path(os.environ["EUREKA_RUNS_DIR"]).glob("cartpole/*/summary.json")
    said = Feedback.model_validate_json((run.parent / "iter_0/feedback.json").read_text())
    assert said.critique == critique
    exchanges = [json.loads(line) for line in (run.parent / "transcript.jsonl").read_text().splitlines()]
    assert critique in exchanges[1]["messages"][-1]["content"]


def test_human_feedback_refuses_to_wait_without_a_terminal() -> None:
    for mode in ("critique", "rank"):
        result = runner.invoke(app, ["solve", "cartpole", "--model", "gpt-4o", "--feedback", mode])
        assert result.exit_code == 2
        assert f"--feedback {mode} asks a human and needs a terminal (stdin is not a TTY)" in result.output
    assert not list(Path(os.environ["EUREKA_RUNS_DIR"]).glob("cartpole/*/iter_0"))


def test_a_terminal_that_closes_while_asked_for_feedback_leaves_a_resumable_run(tmp_path: Path) -> None:
    """The run said `running` for ever and the error named no run directory to resume."""
    from eureka.feedback.judges import FeedbackError

    human = TerminalHuman(lambda text: None, io.StringIO(""))  # EOF at the first question
    loop = _loop(
        tmp_path / "run", QueuedBackend([fenced(HUMAN)]), judge=human, feedback="critique", samples=1
    )
    with pytest.raises(FeedbackError, match="the terminal closed while waiting for feedback"):
        loop.run()
    summary = Summary.model_validate_json((tmp_path / "run/summary.json").read_text())
    assert summary.status == "interrupted"
    assert summary.message == "stopped: the terminal closed while waiting for feedback"
    assert (tmp_path / "run/iter_0/cand_0/metrics.json").is_file()  # its training is kept for the resume
