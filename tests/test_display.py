"""What a user sees of a solve run: the live table and the plain lines."""

from __future__ import annotations

import html
import io
from pathlib import Path

from conftest import REPO, QueuedBackend, fenced, solve_config
from rich.console import Console

from eureka.llm.client import LLM
from eureka.loop import Loop, save_config
from eureka.runs.display import LiveReporter, PlainReporter, candidates_table
from eureka.runs.report import read_run
from eureka.types import Progress


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=160, color_system=None), out


def test_a_slow_llm_call_is_shown_while_it_waits_and_cleared_after() -> None:
    console, out = _console()
    plain = PlainReporter(console)
    plain(Progress("wait", "waiting for openai/gpt-4o (attempt 2/3, 45 s)"))
    plain(Progress("wait", ""))  # it answered: nothing to print
    assert out.getvalue() == "waiting for openai/gpt-4o (attempt 2/3, 45 s)\n"

    live = LiveReporter(_console()[0], "openai/gpt-4o")
    live(Progress("wait", "waiting for openai/gpt-4o (attempt 1/3, 10 s)"))
    shown, text = _console()
    shown.print(live._render())
    assert "waiting for openai/gpt-4o (attempt 1/3, 10 s)" in text.getvalue()
    live(Progress("wait", ""))
    cleared, text = _console()
    cleared.print(live._render())
    assert "waiting for" not in text.getvalue()


def test_a_repaired_candidate_is_marked_live_in_plain_output_and_in_the_report(tmp_path: Path) -> None:
    human = (REPO / "tasks/cartpole/human_reward.py").read_text()
    wrong = human.replace("def compute_reward(", "def compute_reward(angular_vel, ", 1)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = solve_config(iterations=1, samples=1, eval_seeds=0)
    save_config(run_dir, config)
    console, out = _console()
    llm = LLM(QueuedBackend([fenced(wrong), fenced(human)]), transcript=run_dir / "transcript.jsonl")
    summary = Loop(config, run_dir, llm, PlainReporter(console)).run()
    (cand,) = summary.iterations[0].candidates
    assert cand.status.value == "ok" and cand.repaired
    mark = "ok (repaired: parameter `angular_vel` of `compute_reward` is not a state field)"
    assert f"  iter_0/cand_0 [llm] {mark} F=" in out.getvalue()
    info = read_run(run_dir)
    assert info is not None
    assert html.escape(mark) in (run_dir / "report.html").read_text()
    shown, text = _console()
    shown.print(candidates_table(info.candidates))
    assert "ok (repaired: parameter `angular_vel`" in text.getvalue()
