"""The Trajectory Analyzer (Auto MC-Reward): evaluation rollouts of a trained candidate as a
compact text for the next prompt: how episodes ended, what the state looked like at the end of
succeeded and failed episodes, and which reward components dominated.

Rule-based and deterministic; it reads only numbers the worker wrote (never runs reward code).
`--analyzer llm` adds the model's diagnosis on top of this summary (see `diagnose`).
"""

from __future__ import annotations

import math
import statistics

from eureka.llm import prompts
from eureka.llm.client import LLM
from eureka.types import EvalEpisode, Task, TrainResult

MAX_FIELDS = 6
"""State fields listed per summary: those that separate success from failure the most."""


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.3e}"


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{_fmt(mean)} ± {_fmt(std)}"


def _scalar(value: float | list[float]) -> float:
    """A state value as one number: itself, or the norm of a vector field."""
    if isinstance(value, list):
        return math.sqrt(sum(v * v for v in value))
    return float(value)


def _steps(episodes: list[EvalEpisode]) -> str:
    lengths = sorted(e.length for e in episodes)
    shown = ", ".join(str(n) for n in lengths[:8]) + (", …" if len(lengths) > 8 else "")
    return f"step{'s' if len(lengths) > 1 else ''} {shown}"


def _endings(episodes: list[EvalEpisode], task: Task) -> list[str]:
    terminated = [e for e in episodes if e.terminated]
    truncated = [e for e in episodes if not e.terminated]
    lines = []
    if terminated:
        ok = sum(e.success for e in terminated)
        lines.append(
            f"- {len(terminated)} ended early by a termination condition at {_steps(terminated)}"
            f" ({ok} of them counted as a success)"
        )
    if truncated:
        ok = sum(e.success for e in truncated)
        lines.append(
            f"- {len(truncated)} ran until the time limit ({max(e.length for e in truncated)} steps)"
            f" ({ok} of them counted as a success)"
        )
    return lines


def _separation(good: list[float], bad: list[float]) -> float:
    spread = statistics.pstdev(good + bad) or 1.0
    return abs(statistics.fmean(good) - statistics.fmean(bad)) / spread


def _separating_fields(episodes: list[EvalEpisode], unit: dict[str, str]) -> list[str]:
    """Final state of succeeded vs failed episodes, the most different fields first. A field
    whose sign does not matter (an angle that fails either way) is compared by magnitude."""
    good = [e for e in episodes if e.success]
    bad = [e for e in episodes if not e.success]
    names = list(episodes[0].final_state) if episodes else []
    rows: list[tuple[float, str]] = []
    for name in names:
        is_vector = isinstance(episodes[0].final_state[name], list)
        g = [_scalar(e.final_state[name]) for e in good]
        b = [_scalar(e.final_state[name]) for e in bad]
        magnitude = is_vector
        if good and bad:
            score = _separation(g, b)
            if not is_vector:
                by_size = _separation([abs(v) for v in g], [abs(v) for v in b])
                if by_size > score:
                    score, magnitude = by_size, True
                    g, b = [abs(v) for v in g], [abs(v) for v in b]
        else:
            score = 0.0
        label = (f"|{name}|" if magnitude else name) + (f" ({unit[name]})" if unit.get(name) else "")
        if good and bad:
            rows.append((score, f"  {label}: {_mean_std(g)} when succeeded, {_mean_std(b)} when failed"))
        else:
            rows.append((score, f"  {label}: {_mean_std(g or b)}"))
    rows.sort(key=lambda r: -r[0])
    return [text for _, text in rows[:MAX_FIELDS]]


def _components(episodes: list[EvalEpisode]) -> list[str]:
    names = list(episodes[0].components) if episodes else []
    if not names:
        return []
    means = {n: statistics.fmean(e.components.get(n, 0.0) for e in episodes) for n in names}
    total = sum(abs(v) for v in means.values()) or 1.0
    parts = [f"{n} {_fmt(v)} ({abs(v) / total:.0%})" for n, v in means.items()]  # in the reward's order
    lines = [f"Reward components per step, mean over these episodes (share of |total|): {', '.join(parts)}"]
    top, share = max(means.items(), key=lambda kv: abs(kv[1]))
    if len(names) > 1 and abs(share) / total > 0.8:
        lines.append(
            f"- {top} dominates the reward; the other components barely affect what the policy learns"
        )
    bad = [e for e in episodes if not e.success]
    good = [e for e in episodes if e.success]
    if bad and good:
        diffs = []
        for n in names:
            g = statistics.fmean(e.components.get(n, 0.0) for e in good)
            b = statistics.fmean(e.components.get(n, 0.0) for e in bad)
            diffs.append(f"{n} {_fmt(g)} vs {_fmt(b)}")
        lines.append(f"- succeeded vs failed episodes: {', '.join(diffs)}")
    return lines


def analyze(result: TrainResult, task: Task) -> str:
    """The rule-based summary of a candidate's evaluation rollouts ('' when it has none)."""
    episodes = result.eval_episodes
    if not episodes:
        return ""
    n = len(episodes)
    succeeded = sum(e.success for e in episodes)
    score = task.spec.fitness
    lines = [
        f"Evaluation rollouts of the trained policy: {n} episodes"
        + ("" if score.threshold is None else f", {succeeded} succeeded (task_score ≥ {score.threshold:g})")
        + "; task_score per episode: "
        + ", ".join(_fmt(e.fitness) for e in episodes[:10])
        + ("" if n <= 10 else ", …"),
        "How the episodes ended:",
        *_endings(episodes, task),
        "State at the end of the episodes (mean ± std), the fields that differ most first:",
        *_separating_fields(episodes, {k: f.unit for k, f in task.spec.state.items()}),
        *_components(episodes),
    ]
    return "\n".join(lines)


def diagnose(summary: str, task: Task, llm: LLM, context: str) -> str:
    """The model's diagnosis of failure causes and suggested fixes for a rollout summary."""
    prompt = prompts.render("trajectory", task, summary=summary)
    messages = [{"role": "system", "content": context}, {"role": "user", "content": prompt}]
    return llm.sample(messages, 1, purpose="analyzer")[0].text.strip()
