"""The Trajectory Analyzer on real evaluation rollouts of bundled tasks (both training paths)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, QueuedBackend

from eureka import tasks
from eureka.feedback import analyzer
from eureka.llm.client import LLM
from eureka.training import jobs
from eureka.types import EvalEpisode, Status, TrainJob, TrainResult


def _train(tmp_path: Path, task: str, timesteps: int, backend: str) -> TrainResult:
    folder = REPO / "tasks" / task
    reward = tmp_path / "reward.py"
    reward.write_text((folder / "human_reward.py").read_text())
    job = TrainJob(
        task_folder=folder,
        reward_file=reward,
        out_dir=tmp_path / "run",
        timesteps=timesteps,
        video=False,
        backend=backend,  # type: ignore[arg-type]
    )
    result = jobs.run_training(job)
    assert result.status == Status.OK, result.message
    return result


@pytest.mark.parametrize("backend", ["batched", "sb3"])
@pytest.mark.slow
def test_a_barely_trained_cartpole_fails_early_and_the_summary_says_why(tmp_path: Path, backend: str) -> None:
    result = _train(tmp_path, "cartpole", 2048, backend)
    episodes = result.eval_episodes
    assert len(episodes) == tasks.load("cartpole").spec.training.eval_episodes
    assert all(set(e.components) == {"alive", "upright", "centred", "calm"} for e in episodes)
    assert all(
        set(e.final_state) == {"cart_position", "cart_velocity", "pole_angle", "pole_angular_velocity"}
        for e in episodes
    )
    text = analyzer.analyze(result, tasks.load("cartpole"))
    lines = text.splitlines()
    assert lines[0].startswith(f"Evaluation rollouts of the trained policy: {len(episodes)} episodes, ")
    early = [e for e in episodes if e.terminated]
    if early:  # a policy this young lets the pole fall: the termination is named with its steps
        assert f"- {len(early)} ended early by a termination condition at step" in text
        failed_angles = [abs(float(e.final_state["pole_angle"])) for e in early]
        assert (
            max(failed_angles) > 0.2 or max(abs(float(e.final_state["cart_position"])) for e in early) > 2.4
        )
    assert "State at the end of the episodes (mean ± std), the fields that differ most first:" in text
    assert "Reward components per step, mean over these episodes (share of |total|): alive 1 (" in text


def test_summary_of_successes_and_failures_names_the_separating_field() -> None:
    task = tasks.load("cartpole")

    def episode(length: int, angle: float, position: float, success: bool) -> EvalEpisode:
        return EvalEpisode(
            length=length,
            terminated=length < 500,
            fitness=float(length),
            success=success,
            final_state={
                "pole_angle": angle,
                "cart_position": position,
                "cart_velocity": 0.0,
                "pole_angular_velocity": 0.0,
            },
            components={"upright": 0.9, "centred": 0.05},
        )

    result = TrainResult(
        status="ok",
        eval_episodes=[
            episode(500, 0.01, 1.0, True),
            episode(500, -0.02, 1.1, True),
            episode(40, 0.21, 0.9, False),
            episode(55, -0.22, 1.0, False),
        ],
    )
    text = analyzer.analyze(result, task)
    assert "2 succeeded (task_score ≥ 475); task_score per episode: 500, 500, 40, 55" in text
    assert (
        "- 2 ended early by a termination condition at steps 40, 55 (0 of them counted as a success)" in text
    )
    assert "- 2 ran until the time limit (500 steps) (2 of them counted as a success)" in text
    fields = text.split("the fields that differ most first:\n")[1].splitlines()
    assert fields[0] == "  |pole_angle| (rad): 0.015 ± 0.005 when succeeded, 0.215 ± 0.005 when failed"
    assert "upright dominates the reward" in text
    assert analyzer.analyze(TrainResult(status="ok"), task) == ""


def test_the_llm_diagnosis_uses_the_trajectory_prompt() -> None:
    backend = QueuedBackend(["The pole falls because upright is too weak; weight it up."])
    task = tasks.load("cartpole")
    text = analyzer.diagnose("2 ended early", task, LLM(backend), "CONTEXT")
    assert text == "The pole falls because upright is too weak; weight it up."
    (messages,) = backend.history
    assert messages[0] == {"role": "system", "content": "CONTEXT"}
    assert messages[1]["content"].startswith("Here is a summary of evaluation rollouts of the policy")
    assert "2 ended early" in messages[1]["content"]
