"""Reward reflection (Eureka): training statistics of a candidate as text for the next prompt."""

from __future__ import annotations

from eureka import prompts
from eureka.types import Task, TrainResult

SAMPLES = 10
"""Values shown per curve, sampled evenly over training."""


def _sample(values: list[float | None], k: int = SAMPLES) -> list[float]:
    clean = [v for v in values if v is not None]
    if len(clean) <= k:
        return clean
    step = (len(clean) - 1) / (k - 1)
    return [clean[round(i * step)] for i in range(k)]


def _line(name: str, values: list[float | None]) -> str:
    shown = _sample(values)
    if not shown:
        return f"{name}: no values (no episode ended or the component was never returned)"
    listed = ", ".join(f"{v:.2f}" for v in shown)
    mean = sum(shown) / len(shown)
    return f"{name}: [{listed}], Max: {max(shown):.2f}, Mean: {mean:.2f}, Min: {min(shown):.2f}"


def statistics(result: TrainResult) -> str:
    """Every reward component, the task score and the episode length over training, with the
    final policy's score and the correlation with the human reward."""
    lines = [_line(c.name, c.means) for c in result.components]
    lines.append(_line("task_score", result.fitness_curve))
    lines.append(_line("episode_length", result.episode_length_curve))
    if result.fitness is not None:
        lines.append(
            f"final policy: task_score {result.fitness:.2f}, success rate {result.success_rate or 0:.0%}"
        )
    if result.reward_correlation is not None:
        lines.append(
            "correlation of this reward with the task's hand-written reward over training: "
            f"{result.reward_correlation:.2f}"
        )
    return "\n".join(lines)


def reflection(result: TrainResult, task: Task) -> str:
    return prompts.render(
        "reflection", task, checkpoints=len(result.checkpoint_steps), statistics=statistics(result)
    )


def error_feedback(message: str, task: Task) -> str:
    return prompts.render("execution_error", task, error=message)
