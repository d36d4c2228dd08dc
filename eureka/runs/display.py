"""Rendering of a solve run: a rich live table on a terminal, plain lines elsewhere (CI logs)."""

from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from eureka.types import Candidate, Progress, Status, Summary

COLOURS = {Status.OK: "green", Status.TIMEOUT: "yellow", Status.DIVERGED: "yellow"}


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


class PlainReporter:
    """One line per event; nothing redrawn."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, event: Progress) -> None:
        if event.kind == "candidate" and event.candidate is not None:
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
    """A live table: one row per candidate of the current iteration, a header with the best."""

    def __init__(self, console: Console, model: str) -> None:
        self.console = console
        self.model = model
        self.rows: dict[str, Candidate] = {}
        self.header = "starting"
        self.best = "-"
        self.usage = ""
        self.waiting = ""
        """"waiting for <model> (attempt i/n, 45 s)" while an LLM call is slow."""
        self._lock = threading.Lock()
        self.live = Live(console=console, refresh_per_second=4, get_renderable=self._render)

    def _render(self) -> Group:
        table = Table("candidate", "origin", "status", "F", "message", expand=True)
        for c in self.rows.values():
            colour = COLOURS.get(c.status, "red")
            shown = escape(status_text(c))
            status = "training…" if c.message == "training" else f"[{colour}]{shown}[/{colour}]"
            table.add_row(c.name, c.origin, status, _fitness(c.fitness), c.message[:80])
        title = f"{self.header} · best F {self.best} · {self.model} {self.usage}"
        panel = Panel(table, title=title)
        return Group(panel, Text(self.waiting, style="yellow")) if self.waiting else Group(panel)

    def __call__(self, event: Progress) -> None:
        with self._lock:
            if event.kind == "iteration":
                self.header = event.text
                self.rows = {}
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
        if hns is not None:
            lines.append(f"human-normalised score: {hns:.3f}")
        elif final.sparse is not None and final.sparse.fitness_mean == final.human.fitness_mean:
            lines.append("human-normalised score: undefined (the human and sparse rewards reach the same F)")
        else:
            lines.append("human-normalised score: - (a reward of the comparison failed, or no sparse reward)")
    lines.append(
        f"LLM: {summary.llm_calls} calls, {summary.tokens_in + summary.tokens_out:,} tokens, "
        f"${summary.cost:.4f}; env steps {summary.env_steps:,}; wall {summary.wall_time:.0f} s"
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
