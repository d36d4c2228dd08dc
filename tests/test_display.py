"""What a user watches during `eureka solve`: a live table under a real pseudo-terminal whose
progress (steps of the budget, steps/s, ETA) advances while candidates train, and in plain
mode (pipes, CI) a progress line per training at most every interval."""

from __future__ import annotations

import html
import io
import itertools
import os
import re
import sys
from pathlib import Path

import pexpect
import pytest
from conftest import REPO, QueuedBackend, fenced, solve_config
from rich.console import Console

from eureka.llm.client import LLM
from eureka.loop import Loop, save_config
from eureka.runs.display import LiveReporter, PlainReporter, candidates_table, duration, progress_line
from eureka.runs.report import read_run
from eureka.types import Progress, Status, Totals, TrainingProgress

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BUDGET = 150_000
"""Steps per training in the live-progress test: long enough (about 2.5 s a training on an idle
2-core machine here) that the host's twice-a-second reads catch a training part-way on a faster
machine too; at 20,000 an idle machine here finished each training between two reads."""


@pytest.mark.slow
def test_live_progress_advances_under_a_terminal(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", TERM="xterm-256color")
    args = [
        "-m", "eureka", "solve", "mountain_car_continuous",
        "--model", f"replay:{REPO / 'examples/mountain_car_demo'}",
        "--iterations", "1", "--samples", "1", "--workers", "2", "--timesteps", str(BUDGET),
        "--eval-seeds", "1", "--no-video", "--no-cache", "--runs-dir", str(tmp_path / "runs"),
    ]  # fmt: skip
    child = pexpect.spawn(
        sys.executable, args, cwd=str(tmp_path), env=env, dimensions=(40, 200), encoding="utf-8", timeout=300
    )
    child.expect(pexpect.EOF)
    child.close()
    screen = ANSI.sub("", child.before or "")
    assert child.exitstatus == 0, screen[-3000:]
    # the candidate's row while it trains, and the final evaluation's three trainings
    steps = [int(s.replace(",", "")) for s in re.findall(rf"([\d,]+)/{BUDGET:,}", screen)]
    # seen early, and advancing (on an idle machine a training may show only one step count
    # between its start and its end: two distinct counts, one before half the budget)
    assert len(set(steps)) >= 2 and min(steps) < BUDGET / 2, steps
    assert any(b > a for a, b in itertools.pairwise(steps))
    assert re.search(r"ETA \d+ s", screen) and re.search(r"[\d,]+/s ", screen)
    assert re.search(r"elapsed \d+ s · LLM 1 calls, 0 tokens, \$0\.0000 · best F", screen)
    assert "final evaluation: 3 trainings" in screen
    for name in ("best_seed1000", "human_seed1000", "sparse_seed1000"):
        assert name in screen
    assert re.search(r"took \d+ s", screen)  # an ended training's row


def _progress(name: str, steps: int, status: Status | None = None) -> Progress:
    return Progress("training", training=TrainingProgress(name, steps, 1000, 12.5, steps / 100, status))


def test_plain_mode_prints_a_line_per_training_at_most_every_interval() -> None:
    out = io.StringIO()
    reporter = PlainReporter(Console(file=out, width=200), interval=3600)
    for steps in (100, 200, 300):
        reporter(_progress("iter_0/cand_0", steps))
    reporter(_progress("iter_0/cand_1", 150))
    reporter(_progress("iter_0/cand_0", 1000, Status.OK))  # ended: the candidate line says it
    reporter(Progress("totals", totals=Totals(llm_calls=3)))
    assert out.getvalue().splitlines() == [
        "  iter_0/cand_0 training: 100/1,000 steps (10%), F 12.5, 100 steps/s, ETA 9 s",
        "  iter_0/cand_1 training: 150/1,000 steps (15%), F 12.5, 100 steps/s, ETA 8 s",
    ]
    again = PlainReporter(Console(file=io.StringIO(), width=200), interval=0)
    for steps in (100, 200):
        again(_progress("iter_0/cand_0", steps))
    assert again.console.file.getvalue().count("iter_0/cand_0 training") == 2  # type: ignore[attr-defined]


def test_live_table_shows_bars_final_rows_and_totals() -> None:
    out = io.StringIO()
    reporter = LiveReporter(Console(file=out, width=220, force_terminal=False), "gpt-x")
    reporter(Progress("iteration", "iteration 0"))
    from eureka.types import Candidate

    cand = Candidate(iteration=0, index=0, origin="llm", status=Status.OK, message="training")
    reporter(Progress("candidate", "training", cand))
    reporter(_progress("iter_0/cand_0/rung_1", 250))
    reporter(_progress("final/human_seed1000", 1000, Status.OK))
    reporter(
        Progress("totals", totals=Totals(llm_calls=7, tokens_in=1000, tokens_out=234, cost=0.5, wall_time=65))
    )
    Console(file=out, width=220).print(reporter._render())
    text = out.getvalue()
    assert "250/1,000" in text and "ETA 8 s" in text and "100/s" in text, text
    assert "human_seed1000" in text and "took 10 s" in text
    assert "iteration 0 · elapsed 1m 05s · LLM 7 calls, 1,234 tokens, $0.5000 · best F - · gpt-x" in text


def test_durations_and_progress_line() -> None:
    assert [duration(s) for s in (None, 4.4, 65, 3725)] == ["-", "4 s", "1m 05s", "1h 02m"]
    assert (
        progress_line(TrainingProgress("x", 0, 100, None, 0.0)) == "0/100 steps (0%), F -, 0 steps/s, ETA -"
    )


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


@pytest.mark.slow
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


def test_the_components_plot_takes_any_component_names_and_many_of_them() -> None:
    """`$` is math to matplotlib (`$\\frac{$` stopped the report), control characters and CJK
    glyphs the font lacks drew warnings onto the user's screen, and 3,000 components made a
    61,316-pixel legend: names are escaped, the 12 largest drawn, nothing is warned."""
    import warnings

    from eureka.runs.report import PLOTTED_COMPONENTS, _components_plot
    from eureka.types import ComponentStats, Status, TrainResult

    names = ["$\\frac{$", "\x1b[31mred\nline", "直立", *(f"c{i}" for i in range(3000))]
    result = TrainResult(
        status=Status.OK,
        checkpoint_steps=[100, 200],
        fitness_curve=[1.0, 2.0],
        components=[
            ComponentStats(name=n, means=[1e6 if i < 3 else float(i), None]) for i, n in enumerate(names)
        ],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = _components_plot(result)
    assert png is not None and len(png) < 400_000  # base64 of a plot of normal size
    assert PLOTTED_COMPONENTS == 12


@pytest.mark.parametrize(
    ("human", "sparse", "shown"),
    [
        (60.0, 20.0, "human-normalised score: 1.000"),
        # a budget too small to tell them apart: -1 for the human reward itself, said to mean nothing
        (
            36.5,
            37.1,
            "human-normalised score: -1.000 (not meaningful: the human reward scored below the sparse one;",
        ),
        (30.0, 30.0, "human-normalised score: undefined (the human and sparse rewards reach the same F)"),
    ],
)
def test_the_panel_says_when_the_human_normalised_score_means_nothing(
    human: float, sparse: float, shown: str
) -> None:
    from eureka.loop import human_normalized_score
    from eureka.runs.display import summary_panel
    from eureka.types import EvalStats, FinalEvaluation, Summary

    final = FinalEvaluation(
        seeds=[1000],
        timesteps=1000,
        best=EvalStats(fitness=[human], fitness_mean=human),
        human=EvalStats(fitness=[human], fitness_mean=human),
        sparse=EvalStats(fitness=[sparse], fitness_mean=sparse),
        human_normalized_score=human_normalized_score(human, human, sparse),
    )
    out = io.StringIO()
    Console(file=out, width=300).print(
        summary_panel(Summary(task="cartpole", model="none", final=final), "runs/x")
    )
    assert shown in out.getvalue()
