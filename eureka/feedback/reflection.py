"""Reward reflection (Eureka): training statistics of a candidate as text for the next prompt."""

from __future__ import annotations

from eureka.llm import prompts
from eureka.types import Feedback, Task, TrainResult

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


def _analysis(feedback: Feedback) -> str:
    parts = []
    if feedback.analysis:
        parts.append(f"Trajectory analysis of the evaluation rollouts:\n{feedback.analysis}")
    if feedback.diagnosis:
        parts.append(f"Diagnosis of the failures:\n{feedback.diagnosis}")
    return "\n\n".join(parts)


def feedback_prompt(feedback: Feedback, elite: TrainResult, task: Task, good_code: str, bad_code: str) -> str:
    """The user message after the elite's reply, by feedback mode: the human's critique, the
    preferred and least preferred rewards (ranking), or the reward reflection; the statistics
    and the trajectory analysis come with each."""
    analysis = _analysis(feedback)
    if feedback.mode == "critique" and feedback.critique:
        stats = statistics(elite) + (f"\n\n{analysis}" if analysis else "")
        return prompts.render("human_critique", task, critique=feedback.critique, statistics=stats)
    text = reflection(elite, task)
    if analysis:
        text += f"\n\n{analysis}"
    if feedback.ranking is not None and feedback.worst and feedback.worst != feedback.elite:
        notes = []
        for name, note in feedback.ranking.comments.items():
            which = (
                "the preferred one"
                if name == feedback.elite
                else "the least preferred one"
                if name == feedback.worst
                else "another candidate"
            )
            notes.append(f"on {which}: {note}")
        comments = "; ".join(notes) or "none"
        preference = prompts.render(
            "preference", task, good_code=good_code, bad_code=bad_code, comments=comments
        )
        text = f"{preference}\n\nThe preferred reward's training statistics:\n{text}"
    return text
