"""Rendering of a solve run: a rich live table on a terminal, plain lines elsewhere (CI logs)."""

from __future__ import annotations

import threading
import time
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from eureka.types import Candidate, Progress, Status, Summary, Totals, TrainingProgress

COLOURS = {Status.OK: "green", Status.TIMEOUT: "yellow", Status.DIVERGED: "yellow"}
PLAIN_INTERVAL_S = 30.0
"""Plain mode (CI logs, pipes): at most one progress line per training this often."""


def _fitness(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def status_text(c: Candidate) -> str:
    """The candidate's status; for one whose repair passed the critic, also what the critic
    found in the first reply: `ok (repaired: parameter `angular_vel` … is not a state field)`."""
    if not c.repaired:
        return c.status.value
    first = c.attempts[0].check.message.split("; ")[0] if c.attempts else ""
    if len(first) > 80:
        first = first[:79] + "…"
    return f"{c.status.value} (repaired: {first})" if first else f"{c.status.value} (repaired)"


def duration(seconds: float | None) -> str:
    """`1h 02m`, `3m 05s`, `42 s`; `-` when unknown."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s} s"


def wall_text(total: float, part: float, parts: int) -> str:
    """`95 s`, or for a resumed run `95 s over 2 parts (this part 40 s)`."""
    if parts <= 1:
        return f"{total:.0f} s"
    return f"{total:.0f} s over {parts} parts (this part {part:.0f} s)"


def progress_line(p: TrainingProgress) -> str:
    """`12,288/50,000 steps (25%), F 23.5, 1,234 steps/s, ETA 31 s`."""
    share = f" ({p.env_steps / p.total:.0%})" if p.total else ""
    return (
        f"{p.env_steps:,}/{p.total:,} steps{share}, F {_fitness(p.fitness)}, "
        f"{p.steps_per_second:,.0f} steps/s, ETA {duration(p.eta)}"
    )


def usage_line(totals: Totals) -> str:
    return (
        f"LLM {totals.llm_calls} calls, {totals.tokens_in + totals.tokens_out:,} tokens, ${totals.cost:.4f}"
    )


def _owner(job: str) -> str:
    """The candidate a training job belongs to: `iter_0/cand_1/rung_2` -> `iter_0/cand_1`."""
    parts = job.split("/")
    return "/".join(parts[:2]) if parts[0].startswith("iter_") else job


class PlainReporter:
    """One line per event; nothing redrawn. A running training gets a progress line at most
    every `interval` seconds."""

    def __init__(self, console: Console, interval: float = PLAIN_INTERVAL_S) -> None:
        self.console = console
        self.interval = interval
        self._printed: dict[str, float] = {}
        self._lock = threading.Lock()

    def _training(self, p: TrainingProgress) -> None:
        if p.status is not None:  # ended: the candidate's own line follows (or the final table)
            return
        now = time.monotonic()
        with self._lock:
            last = self._printed.get(p.name)
            if last is not None and now - last < self.interval:
                return
            self._printed[p.name] = now
        self.console.print(f"  {p.name} training: {progress_line(p)}", highlight=False, markup=False)

    def __call__(self, event: Progress) -> None:
        if event.kind == "training" and event.training is not None:
            self._training(event.training)
        elif event.kind == "candidate" and event.candidate is not None:
            c = event.candidate
            if c.message == "training":
                return
            self.console.print(
                f"  {c.name} [{c.origin}] {status_text(c)} F={_fitness(c.fitness)} {c.message}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        elif event.kind in ("iteration", "message") or (event.kind == "wait" and event.text):
            self.console.print(event.text, highlight=False, markup=False)

    def __enter__(self) -> PlainReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class LiveReporter:
    """A live table: one row per candidate of the current iteration with a progress bar while
    it trains (steps/budget, F of the training episodes, steps/s, ETA), the final evaluation's
    trainings, and a header with elapsed time, LLM usage and the best F so far."""

    def __init__(self, console: Console, model: str) -> None:
        self.console = console
        self.model = model
        self.rows: dict[str, Candidate] = {}
        self.training: dict[str, TrainingProgress] = {}
        self.header = "starting"
        self.best = "-"
        self.totals: Totals | None = None
        self.waiting = ""
        """"waiting for <model> (attempt i/n, 45 s)" while an LLM call is slow."""
        self._start = time.monotonic()
        self._totals_at = self._start
        self._lock = threading.Lock()
        self.live = Live(console=console, refresh_per_second=4, get_renderable=self._render)

    def _elapsed(self) -> float:
        if self.totals is None:
            return time.monotonic() - self._start
        return self.totals.wall_time + time.monotonic() - self._totals_at

    @staticmethod
    def _status(status: Status | None, text: str | None = None) -> str:
        if status is None:
            return "training…"
        colour = COLOURS.get(status, "red")
        return f"[{colour}]{escape(text or status.value)}[/{colour}]"

    def _bar_cells(self, p: TrainingProgress | None) -> tuple[ProgressBar | str, str, str, str, str]:
        if p is None:
            return "", "", "-", "", ""
        if p.status is not None:  # ended: F of the final policy, the time it took
            return "", f"{p.env_steps:,}", _fitness(p.fitness), "", f"took {duration(p.elapsed)}"
        bar = ProgressBar(total=max(p.total, 1), completed=min(p.env_steps, p.total), width=24)
        return (
            bar,
            f"{p.env_steps:,}/{p.total:,}",
            _fitness(p.fitness),
            f"{p.steps_per_second:,.0f}/s",
            f"ETA {duration(p.eta)}",
        )

    def _render(self) -> Group:
        with self._lock:
            table = Table(
                "candidate", "origin", "status", "progress", "steps", "F", "speed", "left", "message"
            )
            for c in self.rows.values():
                jobs = [p for name, p in self.training.items() if _owner(name) == c.name]
                job = jobs[-1] if jobs else None
                if c.message == "training":  # still the loop's "training" placeholder
                    cells = self._bar_cells(job)
                    status = self._status(job.status if job is not None else None)
                    table.add_row(c.name, c.origin, status, *cells, "")
                else:
                    steps = f"{c.env_steps:,}" if c.env_steps else ""
                    table.add_row(
                        c.name,
                        c.origin,
                        self._status(c.status, status_text(c)),
                        "",
                        steps,
                        _fitness(c.fitness),
                        "",
                        "",
                        c.message[:60],
                    )
            for name, p in self.training.items():
                if name.startswith("final/"):
                    table.add_row(
                        name.removeprefix("final/"), "final", self._status(p.status), *self._bar_cells(p), ""
                    )
            usage = f" · {usage_line(self.totals)}" if self.totals is not None else ""
            title = (
                f"{self.header} · elapsed {duration(self._elapsed())}{usage} · best F {self.best} · "
                f"{self.model}"
            )
        panel = Panel(table, title=title)
        return Group(panel, Text(self.waiting, style="yellow")) if self.waiting else Group(panel)

    def __call__(self, event: Progress) -> None:
        with self._lock:
            if event.kind == "iteration":
                self.header = event.text
                self.rows = {}
                self.training = {}
            elif event.kind == "training" and event.training is not None:
                self.training[event.training.name] = event.training
            elif event.kind == "totals" and event.totals is not None:
                self.totals = event.totals
                self._totals_at = time.monotonic()
            elif event.kind == "message" and event.text.startswith("final evaluation"):
                self.header = event.text
                self.live.console.print(event.text, highlight=False, markup=False)
            elif event.kind == "candidate" and event.candidate is not None:
                self.rows[event.candidate.name] = event.candidate
                if event.candidate.fitness is not None and (
                    self.best == "-" or event.candidate.fitness > float(self.best)
                ):
                    self.best = f"{event.candidate.fitness:.4g}"
            elif event.kind == "message":
                self.live.console.print(event.text, highlight=False, markup=False)
            elif event.kind == "wait":
                self.waiting = event.text

    def __enter__(self) -> LiveReporter:
        self.live.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.live.__exit__(exc_type, exc, tb)


def summary_panel(summary: Summary, run_dir: str) -> Panel:
    """The end of a run: best candidate, final evaluation with HNS, tokens and cost, the path."""
    lines = [f"status: {summary.status} {summary.message}"]
    if summary.best is not None:
        lines.append(f"best: {summary.best.name} F {_fitness(summary.best.fitness)}")
    final = summary.final
    if final is not None:
        for name, stats in (("best", final.best), ("human", final.human), ("sparse", final.sparse)):
            if stats is not None:
                lines.append(
                    f"{name:>6}: F {_fitness(stats.fitness_mean)} ± {_fitness(stats.fitness_std)} "
                    f"success {stats.success_rate or 0:.0%} over seeds {final.seeds}"
                )
        hns = final.human_normalized_score
        sparse = final.sparse.fitness_mean if final.sparse is not None else None
        human = final.human.fitness_mean if final.human is not None else None
        below = sparse is not None and sparse > (human or 0.0)
        if hns is not None and below:
            lines.append(
                f"human-normalised score: {hns:.3f} (not meaningful: the human reward scored below the "
                "sparse one; compare the F values)"
            )
        elif hns is not None:
            lines.append(f"human-normalised score: {hns:.3f}")
        elif final.human is None:
            lines.append("human-normalised score: - (the task has no human reward: add human_reward.py)")
        elif final.sparse is not None and final.sparse.fitness_mean == human:
            lines.append("human-normalised score: undefined (the human and sparse rewards reach the same F)")
        else:
            lines.append("human-normalised score: - (a reward of the comparison failed, or no sparse reward)")
    lines.append(
        f"LLM: {summary.llm_calls} calls, {summary.tokens_in + summary.tokens_out:,} tokens, "
        f"${summary.cost:.4f}; env steps {summary.env_steps:,}; "
        f"wall {wall_text(summary.wall_time, summary.part.wall_time, summary.parts)}"
    )
    if summary.parts > 1:
        part = summary.part
        lines.append(
            f"this part: LLM {part.llm_calls} calls, {part.tokens_in + part.tokens_out:,} tokens, "
            f"${part.cost:.4f}; env steps {part.env_steps:,}"
        )
    lines.append(f"run directory: {run_dir}")
    return Panel("\n".join(lines), title=f"eureka solve {summary.task}")


def candidates_table(candidates: list[Candidate]) -> Table:
    """Every candidate of a run with its status, F and message."""
    table = Table("candidate", "origin", "status", "F", "success", "message", title="candidates")
    for column in table.columns:
        column.overflow = "fold"
    for c in candidates:
        colour = COLOURS.get(c.status, "red")
        success = "-" if c.success_rate is None else f"{c.success_rate:.0%}"
        table.add_row(
            c.name,
            c.origin,
            f"[{colour}]{escape(status_text(c))}[/{colour}]",
            _fitness(c.fitness),
            success,
            c.message[:100],
        )
    return table
