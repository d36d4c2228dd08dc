"""`eureka bench quality`: Eureka's protocol over a suite of tasks (solve each, evaluate the best
against the human and sparse rewards over several seeds), then the paper's table and summary
lines as results.json, summary.md and report.html. Resumable per task.

Exit code: 0 when every task ended with a final evaluation, 2 when one did not."""

from __future__ import annotations

import html
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from eureka import tasks
from eureka.runs.batch import SuiteEntry, attempt
from eureka.runs.report import RunInfo, _png, read_run
from eureka.types import EvalStats, SolveConfig, TrainResult

SUITE_FILE = Path("benchmarks") / "quality.yaml"
RESULTS_FILE = "results.json"
MARKDOWN_FILE = "summary.md"
REPORT_FILE = "report.html"
HNS_CLIP = (0.0, 3.0)
"""Mean HNS is also given with every task's score clipped to this range (one outlier cannot
carry the mean)."""
_NOT_THE_PROTOCOL = {"workers", "group", "cache", "sandbox", "executor", "ray_address", "ray_retries", "video"}
"""SolveConfig fields that change how a run is executed, not what it computes: an earlier run
that differs only in these is resumed or reused."""

Solve = Callable[[SuiteEntry, "Path | None"], Path]
"""Runs one task's solve and returns its run directory; given the directory of an unfinished
earlier run with the same settings, continues that run instead."""


def default_suite() -> Path:
    """benchmarks/quality.yaml of the current folder, else the one shipped with eureka."""
    if SUITE_FILE.is_file():
        return SUITE_FILE
    package = Path(__file__).resolve().parents[1]
    for candidate in (package.parent / SUITE_FILE, package / "_bundled" / SUITE_FILE):
        if candidate.is_file():
            return candidate
    return SUITE_FILE


class Score(BaseModel):
    """One reward's final evaluation: F over the evaluation seeds."""

    mean: float | None = None
    std: float | None = None
    success_rate: float | None = None
    values: list[float | None] = []

    @classmethod
    def of(cls, stats: EvalStats | None) -> Score | None:
        if stats is None:
            return None
        return cls(
            mean=stats.fitness_mean,
            std=stats.fitness_std,
            success_rate=stats.success_rate,
            values=stats.fitness,
        )


class TaskRow(BaseModel):
    """One task's line in results.json."""

    task: str
    outcome: Literal["ok", "error"]
    message: str = ""
    run_dir: str | None = None
    status: str | None = None
    reused: bool = False
    """The task's run was finished by an earlier invocation and read back, not run again."""
    model: str = ""
    iterations: int = 0
    samples: int = 0
    timesteps: int | None = None
    """Training steps per candidate and per evaluation run."""
    eval_seeds: list[int] = []
    sparse: Score | None = None
    human: Score | None = None
    best: Score | None = None
    search_best: float | None = None
    """F of the best candidate during the search (one seed)."""
    hns: float | None = None
    llm_calls: int = 0
    tokens: int = 0
    cost: float = 0.0
    env_steps: int = 0
    """Search and final evaluation together."""
    eval_env_steps: int = 0
    wall_time: float = 0.0

    @property
    def best_ge_human(self) -> bool | None:
        if self.best is None or self.human is None or self.best.mean is None or self.human.mean is None:
            return None
        return self.best.mean >= self.human.mean


class Headline(BaseModel):
    """The summary lines of Eureka's paper over the suite."""

    tasks: int
    evaluated: int
    """Tasks whose run ended with a final evaluation (the others count as not ≥ human)."""
    best_ge_human: int
    share_best_ge_human: float
    hns_tasks: int
    """Tasks with a defined HNS (F_human ≠ F_sparse), over which the means are taken."""
    mean_hns: float | None
    mean_hns_clipped: float | None
    models: list[str]
    budgets: list[str]
    wall_time: float
    """The tasks' runs together (a resumed run counts its time before and after)."""
    cost: float
    tokens: int


class QualityResult(BaseModel):
    tasks: list[TaskRow]
    headline: Headline

    @property
    def exit_code(self) -> int:
        return 2 if any(t.outcome == "error" for t in self.tasks) else 0


# ---------------------------------------------------------------- runs


def _protocol(config: SolveConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", exclude=_NOT_THE_PROTOCOL)


def earlier_run(runs_root: Path, config: SolveConfig) -> Path | None:
    """The latest run under `runs_root` of this task with the same protocol settings."""
    folder = runs_root / tasks.load(config.task).name
    for run_dir in sorted(folder.glob("*"), reverse=True):
        saved = _saved_config(run_dir)
        if saved is not None and _protocol(saved) == _protocol(config):
            return run_dir
    return None


def _saved_config(run_dir: Path) -> SolveConfig | None:
    import yaml

    try:
        return SolveConfig.model_validate(yaml.safe_load((run_dir / "config.yaml").read_text()))
    except (OSError, ValueError):
        return None


def finished(run_dir: Path) -> bool:
    """The run ended (ok, out of budget, or every candidate failed) and needs nothing more; a run
    that was killed or stopped by a provider error is continued instead."""
    info = read_run(run_dir)
    if info is None or info.summary.status == "running":
        return False
    return not (info.summary.status == "failed" and "--resume" in info.summary.message)


def _eval_steps(run_dir: Path) -> int:
    steps = 0
    for path in (run_dir / "final").glob("*/metrics.json"):
        try:
            steps += TrainResult.model_validate_json(path.read_text()).env_steps
        except (OSError, ValueError):
            continue
    return steps


def task_row(entry: SuiteEntry, run_dir: Path | None, error: str | None, reused: bool = False) -> TaskRow:
    """One task's numbers from its run directory (or the error that stopped it)."""
    info: RunInfo | None = read_run(run_dir) if run_dir is not None else None
    if info is None:
        message = error or (f"{run_dir} has no summary" if run_dir else "no run")
        return TaskRow(task=entry.task, outcome="error", message=message, run_dir=_str(run_dir))
    s, config = info.summary, info.config
    final = s.final
    eval_steps = _eval_steps(info.run_dir)
    if s.status != "ok":
        outcome, message = "error", f"the run ended {s.status}: {s.message}"
    elif final is None:
        outcome, message = "error", "the run has no final evaluation (eval_seeds 0?)"
    else:
        outcome, message = "ok", s.message
    return TaskRow(
        task=entry.task,
        outcome=outcome,
        message=message,
        run_dir=str(info.run_dir),
        status=s.status,
        reused=reused,
        model=s.model,
        iterations=int(config.get("iterations", 0)),
        samples=int(config.get("samples", 0)),
        timesteps=final.timesteps if final else config.get("timesteps"),
        eval_seeds=final.seeds if final else [],
        sparse=Score.of(final.sparse) if final else None,
        human=Score.of(final.human) if final and final.human else None,
        best=Score.of(final.best) if final else None,
        search_best=s.best.fitness if s.best else None,
        hns=final.human_normalized_score if final else None,
        llm_calls=s.llm_calls,
        tokens=s.tokens_in + s.tokens_out,
        cost=s.cost,
        env_steps=s.env_steps + eval_steps,
        eval_env_steps=eval_steps,
        wall_time=s.wall_time,
    )


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def run_quality(
    todo: list[SuiteEntry],
    config_of: Callable[[SuiteEntry], SolveConfig],
    solve: Solve,
    out_dir: Path,
    on_done: Callable[[TaskRow], None] | None = None,
) -> QualityResult:
    """Solve every task in turn (a finished earlier run with the same settings is read back, an
    unfinished one continued), writing results.json, summary.md and report.html after each.
    `config_of`: each entry's settings (a task may be listed twice, with other options)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[TaskRow] = []
    for entry in todo:
        earlier = earlier_run(out_dir / "runs", config_of(entry))
        if earlier is not None and finished(earlier):
            row = task_row(entry, earlier, None, reused=True)
        else:
            run_dir, error = attempt(entry, lambda e, earlier=earlier: solve(e, earlier))  # type: ignore[misc]
            row = task_row(entry, run_dir, error)
        rows.append(row)
        if on_done is not None:
            on_done(row)
        write_outputs(QualityResult(tasks=rows, headline=headline(rows)), out_dir)
    return QualityResult(tasks=rows, headline=headline(rows))


# ---------------------------------------------------------------- the paper's numbers


def headline(rows: list[TaskRow]) -> Headline:
    """Share of tasks where the best reward ≥ the human one; mean HNS, raw and clipped."""
    done = [r for r in rows if r.outcome == "ok"]
    scores = [r.hns for r in done if r.hns is not None]
    low, high = HNS_CLIP
    ge = sum(bool(r.best_ge_human) for r in done)
    budgets = sorted(
        {
            f"{r.iterations} iterations × {r.samples} samples, {r.timesteps or 0:,} steps per training, "
            f"final evaluation over {len(r.eval_seeds)} seeds"
            for r in done
        }
    )
    return Headline(
        tasks=len(rows),
        evaluated=len(done),
        best_ge_human=ge,
        share_best_ge_human=ge / len(rows) if rows else 0.0,
        hns_tasks=len(scores),
        mean_hns=statistics.fmean(scores) if scores else None,
        mean_hns_clipped=statistics.fmean(min(max(s, low), high) for s in scores) if scores else None,
        models=sorted({r.model for r in rows if r.model}),
        budgets=budgets,
        wall_time=sum(r.wall_time for r in rows),
        cost=sum(r.cost for r in rows),
        tokens=sum(r.tokens for r in rows),
    )


def summary_lines(h: Headline) -> list[str]:
    """Eureka's headline sentences for this suite, with the model and budgets stated."""

    def num(x: float | None) -> str:
        return "undefined" if x is None else f"{x:.3f}"

    lines = [
        f"model: {', '.join(h.models) or '–'}",
        *(f"budget: {b}" for b in h.budgets),
        f"best ≥ human on {h.best_ge_human} of {h.tasks} tasks ({h.share_best_ge_human:.0%})"
        + (f"; {h.tasks - h.evaluated} without a final evaluation" if h.evaluated < h.tasks else ""),
        f"mean human-normalised score {num(h.mean_hns)} over {h.hns_tasks} tasks; "
        f"clipped to [{HNS_CLIP[0]:g}, {HNS_CLIP[1]:g}]: {num(h.mean_hns_clipped)}",
        f"LLM tokens {h.tokens:,}, cost ${h.cost:.4f}, wall time of the runs {h.wall_time:.0f} s",
    ]
    return lines


def _f(score: Score | None) -> str:
    if score is None or score.mean is None:
        return "–"
    return f"{score.mean:.4g} ± {score.std or 0:.2g}"


def _rate(score: Score | None) -> str:
    return "–" if score is None or score.success_rate is None else f"{score.success_rate:.0%}"


TABLE_HEAD = (
    "task",
    "F sparse",
    "F human",
    "F best",
    "success s / h / b",
    "HNS",
    "LLM calls",
    "tokens",
    "cost",
    "env steps",
    "wall",
)


def table_rows(rows: list[TaskRow]) -> list[tuple[str, ...]]:
    """The per-task table as strings (markdown, HTML and the terminal share it)."""
    out: list[tuple[str, ...]] = []
    for r in rows:
        rates = " / ".join(_rate(s) for s in (r.sparse, r.human, r.best))
        hns = "–" if r.hns is None else f"{r.hns:.3f}"
        name = r.task if r.outcome == "ok" else f"{r.task} (error)"
        out.append(
            (
                name,
                _f(r.sparse),
                _f(r.human),
                _f(r.best),
                rates,
                hns,
                str(r.llm_calls),
                f"{r.tokens:,}",
                f"${r.cost:.4f}",
                f"{r.env_steps:,}",
                f"{r.wall_time:.0f} s",
            )
        )
    return out


def markdown(result: QualityResult) -> str:
    head = "| " + " | ".join(TABLE_HEAD) + " |"
    lines = [head, "|" + "---|" * len(TABLE_HEAD)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(result.tasks)]
    notes = [f"- **{t.task}**: {t.message}" for t in result.tasks if t.outcome == "error"]
    return (
        "\n".join(
            [
                "## eureka bench quality",
                "",
                *(f"- {line}" for line in summary_lines(result.headline)),
                "",
                "F: mean ± std over the final evaluation's seeds; HNS = (F_best − F_sparse) / |F_human − F_sparse|.",
                "",
                *lines,
                "",
                *notes,
            ]
        ).rstrip()
        + "\n"
    )


# ---------------------------------------------------------------- report


def _bars_plot(rows: list[TaskRow]) -> str | None:
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.outcome == "ok"]
    if not shown:
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.2), squeeze=False)
    colours = {"sparse": "#8c8c8c", "human": "#4c72b0", "best": "#dd8452"}
    for ax, r in zip(axes[0], shown, strict=True):
        scores = {"sparse": r.sparse, "human": r.human, "best": r.best}
        names = [n for n, s in scores.items() if s is not None and s.mean is not None]
        ax.bar(
            names,
            [scores[n].mean or 0.0 for n in names],  # type: ignore[union-attr]
            yerr=[scores[n].std or 0.0 for n in names],  # type: ignore[union-attr]
            color=[colours[n] for n in names],
            capsize=5,
        )
        ax.set_title(r.task, fontsize="medium")
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel("task score F (mean ± std over seeds)")
    fig.tight_layout()
    return _png(fig)


def _normalised_plot(result: QualityResult) -> str | None:
    import matplotlib.pyplot as plt

    rows = [r for r in result.tasks if r.outcome == "ok" and r.hns is not None]
    if not rows:
        return None
    low, high = HNS_CLIP
    names = [r.task for r in rows] + ["mean (clipped)"]
    values = [min(max(r.hns or 0.0, low), high) for r in rows] + [result.headline.mean_hns_clipped or 0.0]
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(names) + 1.2))
    colours = ["#dd8452" if v >= 1 else "#4c72b0" for v in values[:-1]] + ["#55a868"]
    ax.barh(names, values, color=colours)
    for y, r in enumerate(rows):
        ax.text(values[y], y, f" {r.hns:.2f}", va="center", fontsize="small")
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1, label="human reward (1)")
    ax.axvline(0.0, color="#8c8c8c", linewidth=1, label="sparse reward (0)")
    ax.set_xlim(min(low, min(values)) - 0.1, high + 0.3)
    ax.invert_yaxis()
    ax.set_xlabel(f"human-normalised score, clipped to [{low:g}, {high:g}]")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def _img(data: str | None, ident: str, alt: str) -> str:
    if data is None:
        return f'<p id="{ident}">({alt}: nothing to plot)</p>'
    return f'<img id="{ident}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}"
    "td:first-child,th:first-child{text-align:left}img{max-width:100%}"
)


def render(result: QualityResult) -> str:
    """report.html: the summary lines, the table, a bar chart per task, the normalised plot."""
    import matplotlib

    matplotlib.use("Agg")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in TABLE_HEAD)
    body_rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
        for cells in table_rows(result.tasks)
    )
    notes = "".join(
        f"<li><b>{html.escape(t.task)}</b>: {html.escape(t.message)}</li>"
        for t in result.tasks
        if t.outcome == "error"
    )
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in summary_lines(result.headline))
    body = [
        "<h1>eureka bench quality</h1>",
        f'<ul id="headline">{lines}</ul>',
        f'<table id="tasks"><tr>{head}</tr>{body_rows}</table>',
        f'<ul id="errors">{notes}</ul>' if notes else "",
        "<h2>Sparse, human and best reward per task</h2>",
        _img(_bars_plot(result.tasks), "bars-plot", "F per task"),
        "<h2>Human-normalised score</h2>",
        _img(_normalised_plot(result), "normalised-plot", "human-normalised score per task"),
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>eureka bench quality</title>'
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


def write_outputs(result: QualityResult, out_dir: Path) -> None:
    payload = {
        "exit_code": result.exit_code,
        "headline": result.headline.model_dump(),
        "tasks": [{**t.model_dump(), "best_ge_human": t.best_ge_human} for t in result.tasks],
    }
    (out_dir / RESULTS_FILE).write_text(json.dumps(payload, indent=2))
    (out_dir / MARKDOWN_FILE).write_text(markdown(result))
    (out_dir / REPORT_FILE).write_text(render(result))
