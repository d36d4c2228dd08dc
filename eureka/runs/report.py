"""The report of a run: one self-contained HTML file (plots and video inlined), written at the
end of every solve and by `eureka report RUN_DIR`; plus the run-directory reading that the
`runs` commands and batch results share."""

from __future__ import annotations

import base64
import html
import io
import math
import warnings
from pathlib import Path
from typing import Any

import yaml

from eureka.errors import RunFileError
from eureka.runs import rundir
from eureka.runs.display import status_text, wall_text
from eureka.training import optimise
from eureka.types import (
    Candidate,
    ComponentStats,
    Feedback,
    FinalEvaluation,
    Status,
    Summary,
    TrainResult,
    read_record,
)

REPORT_FILE = "report.html"
MAX_VIDEO_BYTES = 20 << 20
"""Larger videos are linked rather than inlined."""


class RunInfo:
    """What a run directory says about itself (summary, config, per-candidate metrics)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.summary = read_record(Summary, run_dir / "summary.json")
        config = run_dir / "config.yaml"
        self.config: dict[str, Any] = yaml.safe_load(config.read_text()) if config.is_file() else {}

    @property
    def status(self) -> str:
        """The summary's status, `stopped` for a run that says `running` whose process is gone."""
        if self.summary.status == "running" and rundir.owner_alive(self.run_dir) is False:
            return "stopped"
        return self.summary.status

    @property
    def message(self) -> str:
        """The summary's message, or for a stopped run how to continue it."""
        if self.status == "stopped":
            return f"its process is gone (killed?); continue with eureka solve --resume {self.run_dir}"
        return self.summary.message

    def metrics(self, name: str) -> TrainResult | None:
        path = self.run_dir / name / "metrics.json"
        return read_record(TrainResult, path) if path.is_file() else None

    def feedback(self, iteration: int) -> Feedback | None:
        path = self.run_dir / f"iter_{iteration}" / "feedback.json"
        return read_record(Feedback, path) if path.is_file() else None

    @property
    def candidates(self) -> list[Candidate]:
        """Every candidate as summary.json has it; a repaired one with its attempts from its
        folder (what the critic found before the repair)."""
        out = []
        for c in (c for it in self.summary.iterations for c in it.candidates):
            saved = Candidate.load(self.run_dir / c.name) if c.repaired else None
            out.append(c.model_copy(update={"attempts": saved.attempts}) if saved is not None else c)
        return out

    @property
    def hns(self) -> float | None:
        return self.summary.final.human_normalized_score if self.summary.final else None


def read_run(run_dir: Path) -> RunInfo | None:
    """The run in `run_dir`, or None when it is not a solve run (no valid summary.json)."""
    try:
        return open_run(run_dir)
    except RunFileError:  # a damaged summary.json: not listed, not shown
        return None


def open_run(run_dir: Path) -> RunInfo:
    """The run in `run_dir`; a RunFileError says why it cannot be read."""
    if not (run_dir / "summary.json").is_file():
        raise RunFileError(f"{run_dir} is not a run directory of eureka solve (it has no summary.json)")
    try:
        return RunInfo(run_dir)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunFileError(f"{run_dir}: cannot be read ({first})") from None


# ---------------------------------------------------------------- plots


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # a glyph the font lacks (a CJK name) is drawn as a box, silently
        warnings.simplefilter("ignore")
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _fitness_plot(info: RunInfo) -> str | None:
    import matplotlib.pyplot as plt

    points = [
        (c.iteration, c.fitness) for c in info.candidates if c.status == Status.OK and c.fitness is not None
    ]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.scatter([p[0] for p in points], [p[1] for p in points], alpha=0.6, label="candidates", color="#4c72b0")
    best = [(it.iteration, it.best_fitness) for it in info.summary.iterations if it.best_fitness is not None]
    if best:
        ax.plot([b[0] for b in best], [b[1] for b in best], "-o", color="#dd8452", label="best so far")
    ax.set_xlabel("iteration")
    ax.set_ylabel("task score F")
    ax.set_xticks(sorted({it.iteration for it in info.summary.iterations}))
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def _components_plot(result: TrainResult) -> str | None:
    import matplotlib.pyplot as plt

    if not result.checkpoint_steps or not result.components:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    steps = result.checkpoint_steps
    shown = _largest(result.components)
    for comp in shown:
        xs = [s for s, v in zip(steps, comp.means, strict=False) if v is not None]
        ys = [v for v in comp.means if v is not None]
        left.plot(xs, ys, marker=".", label=_label(comp.name))
    more = len(result.components) - len(shown)
    left.set_title("reward components (mean per step)" + (f", the {len(shown)} largest of {len(result.components)}" if more else ""))
    left.set_xlabel("env steps")
    left.grid(alpha=0.3)
    left.legend(fontsize="small")
    xs = [s for s, v in zip(steps, result.fitness_curve, strict=False) if v is not None]
    right.plot(xs, [v for v in result.fitness_curve if v is not None], marker=".", color="#55a868")
    right.set_title("task score F of training episodes")
    right.set_xlabel("env steps")
    right.grid(alpha=0.3)
    return _png(fig)


PLOTTED_COMPONENTS = 12
"""Components drawn in the components plot at most (the largest by mean |value|)."""


def _largest(components: list[ComponentStats]) -> list[ComponentStats]:
    def size(comp: ComponentStats) -> float:
        values = [abs(v) for v in comp.means if v is not None and math.isfinite(v)]
        return sum(values) / len(values) if values else 0.0

    if len(components) <= PLOTTED_COMPONENTS:
        return components
    return sorted(components, key=size, reverse=True)[:PLOTTED_COMPONENTS]


def _label(name: str) -> str:
    """A component's name as a plot label: printable, short, and with `$` escaped (matplotlib
    reads `$...$` as math, and a name like `$\\frac{$` stopped the report)."""
    text = "".join(ch if ch.isprintable() else " " for ch in name)[:40]
    return text.replace("$", r"\$")


def final_title(final: FinalEvaluation) -> str:
    """The final evaluation's title (the table's caption and the plot's): seeds and the budget
    each trained, which is `tasks.budget` of the task's path."""
    return f"final evaluation, {len(final.seeds)} seeds × {final.timesteps:,} steps"


def _final_plot(info: RunInfo) -> str | None:
    import matplotlib.pyplot as plt

    final = info.summary.final
    if final is None:
        return None
    rows = [(n, s) for n, s in (("best", final.best), ("human", final.human), ("sparse", final.sparse)) if s]
    rows = [(n, s) for n, s in rows if s.fitness_mean is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.2))
    colours = {"best": "#dd8452", "human": "#4c72b0", "sparse": "#8c8c8c"}
    ax.bar(
        [n for n, _ in rows],
        [s.fitness_mean or 0.0 for _, s in rows],
        yerr=[s.fitness_std or 0.0 for _, s in rows],
        color=[colours[n] for n, _ in rows],
        capsize=6,
    )
    ax.set_ylabel("task score F")
    ax.set_title(final_title(final))
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


# ---------------------------------------------------------------- html


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _img(data: str | None, ident: str, alt: str) -> str:
    if data is None:
        return f'<p class="muted" id="{ident}">({alt}: nothing to plot)</p>'
    return f'<img id="{ident}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _video(info: RunInfo, best: Candidate | None, result: TrainResult | None) -> str:
    if best is None or result is None or not result.video_file:
        return '<p class="muted" id="video">(no rollout video)</p>'
    path = info.run_dir / best.name / result.video_file
    if not path.is_file():
        return '<p class="muted" id="video">(the rollout video is missing)</p>'
    if path.stat().st_size > MAX_VIDEO_BYTES:
        return f'<p id="video"><a href="{html.escape(path.as_uri())}">rollout video ({path.name})</a></p>'
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<video id="video" controls loop muted autoplay src="data:video/mp4;base64,{data}"></video>'


def _candidates_table(info: RunInfo) -> str:
    rows = []
    best = info.summary.best.name if info.summary.best else None
    for c in info.candidates:
        status = c.status.value
        row_class = "best" if c.name == best else ""
        rows.append(
            f'<tr class="{row_class}"><td>{c.iteration}</td><td>{html.escape(c.name)}</td>'
            f'<td>{c.origin}</td><td class="status {status}">{html.escape(status_text(c))}</td>'
            f"<td>{_fmt(c.fitness)}</td>"
            f"<td>{'–' if c.success_rate is None else f'{c.success_rate:.0%}'}</td>"
            f"<td>{_fmt(c.reward_correlation, 2)}</td><td>{_fmt(c.elo, 4)}</td>"
            f'<td class="msg">{html.escape(c.message)}</td></tr>'
        )
    head = "<tr><th>iter</th><th>candidate</th><th>origin</th><th>status</th><th>F</th><th>success</th>"
    head += "<th>corr. human</th><th>preference</th><th>message</th></tr>"
    return f'<table id="candidates">{head}{"".join(rows)}</table>'


def _confirmation_table(info: RunInfo) -> str:
    """The confirmation (`--confirm`): each retrained reward's F on the training seed and on the
    fresh seeds, the one that went on to the final evaluation marked."""
    scores = info.summary.confirmation
    if not scores:
        return ""
    origins = {c.name: c.origin for c in info.candidates}
    best = info.summary.best.name if info.summary.best else None
    fresh = max(len(values) for values in scores.values()) - 1
    rows = []
    for name, values in scores.items():
        cells = "".join(f"<td>{_fmt(v)}</td>" for v in [*values, *[None] * (fresh + 1 - len(values))])
        row_class = "best" if name == best else ""
        label = f"<td>{html.escape(name)}</td><td>{origins.get(name, '–')}</td>"
        rows.append(f'<tr class="{row_class}">{label}{cells}</tr>')
    head = "<tr><th>reward</th><th>origin</th><th>F, training seed</th>"
    head += "".join(f"<th>F, fresh seed {k + 1}</th>" for k in range(fresh)) + "</tr>"
    caption = (
        f"a challenger replaces the human reward only where it beats it by {optimise.CONFIRM_MARGIN:.0%} on the "
        "fresh seeds' mean and on most of them; the marked row went on"
    )
    table = f'<table id="confirmation"><caption>{caption}</caption>{head}{"".join(rows)}</table>'
    return f"<h2>Confirmation</h2>{table}"


def _optimiser_table(info: RunInfo) -> str:
    """The optimiser's trials (F of each, by study) and the parameters of each study's best."""
    trials = optimise.all_trials(info.run_dir / optimise.STUDY_FILE)
    if not trials:
        return ""
    rows = []
    studies = sorted({t.study for t in trials}, key=[t.study for t in trials].index)
    for study in studies:
        mine = [t for t in trials if t.study == study]
        done = [t for t in mine if t.state == "COMPLETE" and t.fitness is not None]
        best = max(done, key=lambda t: t.fitness or 0.0) if done else None
        for t in mine:
            label = "start (the elite)" if t.number == 0 else str(t.number)
            row_class = "best" if best is not None and t.number == best.number else ""
            rows.append(
                f'<tr class="{row_class}"><td>{html.escape(study)}</td><td>{label}</td>'
                f"<td>{t.state.lower()}</td><td>{_fmt(t.fitness)}</td></tr>"
            )
        if best is not None:
            values = ", ".join(f"{k} = {v:.4g}" for k, v in best.values.items())
            rows.append(
                f'<tr><td></td><td colspan="3" class="msg">best of {html.escape(study)}: '
                f"F {_fmt(best.fitness)} at {html.escape(values)}</td></tr>"
            )
    head = "<tr><th>study</th><th>trial</th><th>state</th><th>F</th></tr>"
    return f'<h2>Optimiser trials</h2><table id="optimiser">{head}{"".join(rows)}</table>'


def _final_table(info: RunInfo) -> str:
    final = info.summary.final
    if final is None:
        return '<p class="muted" id="final">(no final evaluation)</p>'
    rows = []
    for name, stats in (("best", final.best), ("human", final.human), ("sparse", final.sparse)):
        if stats is None:
            continue
        rows.append(
            f"<tr><td>{name}</td><td>{_fmt(stats.fitness_mean)} ± {_fmt(stats.fitness_std, 3)}</td>"
            f"<td>{'–' if stats.success_rate is None else f'{stats.success_rate:.0%}'}</td>"
            f"<td>{', '.join(stats.statuses)}</td></tr>"
        )
    hns = final.human_normalized_score
    hns_text = "undefined" if hns is None else f"{hns:.3f}"
    table = "<tr><th>reward</th><th>F (mean ± std)</th><th>success</th><th>runs</th></tr>" + "".join(rows)
    return (
        f'<table id="final"><caption>{html.escape(final_title(final))}</caption>{table}</table>'
        f'<p id="hns">human-normalised score <b>{hns_text}</b> '
        f"= (F<sub>best</sub> − F<sub>sparse</sub>) / |F<sub>human</sub> − F<sub>sparse</sub>|, "
        f"seeds {final.seeds}</p>"
    )


def _feedback_list(info: RunInfo) -> str:
    items = []
    for it in info.summary.iterations:
        fb = info.feedback(it.iteration)
        if fb is None:
            continue
        text = f"iteration {it.iteration}: {fb.mode}, elite {html.escape(fb.elite or '–')}"
        if fb.critique:
            text += f" — critique: “{html.escape(fb.critique)}”"
        if fb.ranking is not None:
            text += f" — ranking ({fb.ranking.source}): {html.escape(' > '.join(fb.ranking.order))}"
            for name, note in fb.ranking.comments.items():
                text += f"<br>&nbsp;&nbsp;{html.escape(name)}: {html.escape(note)}"
        items.append(f"<li>{text}</li>")
    return f'<ul id="feedback">{"".join(items)}</ul>' if items else ""


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: .2rem; } .muted { color: #888; } img { max-width: 100%; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; }
td, th { border-bottom: 1px solid #ddd; padding: .25rem .6rem; text-align: left; vertical-align: top; }
tr.best { background: #fff4e5; } td.msg { max-width: 420px; color: #555; }
.status.ok { color: #2a7a2a; } .status:not(.ok) { color: #b33; }
pre { background: #f6f6f6; padding: .8rem; overflow-x: auto; border-radius: 6px; }
video { max-width: 480px; border-radius: 6px; background: #000; }
.grid { display: flex; gap: 1.5rem; flex-wrap: wrap; align-items: flex-start; }
"""


def render(run_dir: Path) -> str:
    """The report of a run directory as one HTML document."""
    info = RunInfo(run_dir)
    summary = info.summary
    best = summary.best
    result = info.metrics(best.name) if best else None
    code_path = run_dir / "best_reward.py"
    code = code_path.read_text() if code_path.is_file() else ""
    model = html.escape(summary.model)
    head = (
        f"<h1>eureka solve {html.escape(summary.task)}</h1>"
        f'<p id="overview">status <b>{summary.status}</b> {html.escape(summary.message)}<br>'
        f"model {model}; {len(summary.iterations)} iterations; {len(info.candidates)} candidates; "
        f"{summary.llm_calls} LLM calls, {summary.tokens_in + summary.tokens_out:,} tokens "
        f'(<span id="tokens">{summary.tokens_in:,} in, {summary.tokens_out:,} out</span>), '
        f'<span id="cost">${summary.cost:.4f}</span>; {summary.env_steps:,} env steps; '
        f'<span id="wall">{wall_text(summary.wall_time, summary.part.wall_time, summary.parts)}</span>'
        f"{_part_html(summary)}<br>run directory {html.escape(str(run_dir))}</p>"
    )
    best_line = (
        f"<p>best reward <b>{html.escape(best.name)}</b>: F {_fmt(best.fitness)}, "
        f"success {'–' if best.success_rate is None else f'{best.success_rate:.0%}'}</p>"
        if best
        else "<p>no candidate trained</p>"
    )
    body = [
        head,
        "<h2>Fitness per iteration</h2>",
        _img(_fitness_plot(info), "fitness-plot", "fitness per iteration"),
        "<h2>Best reward</h2>",
        best_line,
        '<div class="grid">',
        _video(info, best, result),
        f'<pre id="best-code">{html.escape(code) or "(none)"}</pre>',
        "</div>",
        _img(
            _components_plot(result) if result else None, "components-plot", "reward components of the best"
        ),
        "<h2>Best vs human vs sparse</h2>",
        '<div class="grid">',
        _final_table(info),
        _img(_final_plot(info), "final-plot", "final evaluation"),
        "</div>",
        "<h2>Candidates</h2>",
        _candidates_table(info),
        _confirmation_table(info),
        _optimiser_table(info),
        _feedback_list(info),
    ]
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>eureka: '
        f"{html.escape(summary.task)}</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


def write_report(run_dir: Path) -> Path:
    """Write `report.html` in the run directory; return its path."""
    import matplotlib

    matplotlib.use("Agg")
    path = run_dir / REPORT_FILE
    path.write_text(render(run_dir))
    return path


def summary_json(info: RunInfo) -> dict[str, Any]:
    """The few numbers that describe a run (runs list, batch results)."""
    s = info.summary
    final = s.final
    return {
        "task": s.task,
        "run_dir": str(info.run_dir),
        "status": info.status,
        "message": info.message,
        "model": s.model,
        "best_fitness": s.best.fitness if s.best else None,
        "human_fitness": final.human.fitness_mean if final and final.human else None,
        "sparse_fitness": final.sparse.fitness_mean if final and final.sparse else None,
        "best_final_fitness": final.best.fitness_mean if final else None,
        "hns": info.hns,
        "success_rate": (final.best.success_rate if final else (s.best.success_rate if s.best else None)),
        "iterations": len(s.iterations),
        "tokens": s.tokens_in + s.tokens_out,
        "cost": s.cost,
        "wall_time": s.wall_time,
        "env_steps": s.env_steps,
        "parts": s.parts,
        "wall_time_part": s.part.wall_time,
    }


def _part_html(summary: Summary) -> str:
    """For a resumed run: what its latest part alone used (the numbers before are totals)."""
    if summary.parts <= 1:
        return ""
    part = summary.part
    return (
        f'<br><span id="part">this part: {part.llm_calls} LLM calls, '
        f"{part.tokens_in + part.tokens_out:,} tokens, ${part.cost:.4f}, {part.env_steps:,} env steps</span>"
    )
