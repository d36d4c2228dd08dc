"""The Reward Critic: static checks, a sandboxed smoke test on real states, an LLM review."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, QueuedBackend, fenced

from eureka import tasks
from eureka.llm.client import LLM
from eureka.llm.context import environment_context
from eureka.reward.critic import review
from eureka.training.jobs import run_training
from eureka.training.session import CHECK_STEPS
from eureka.types import CheckReport, Status

HUMAN = (REPO / "tasks/cartpole/human_reward.py").read_text()
TASK = tasks.load("cartpole")
CONTEXT = environment_context(TASK)


ENVS = {"sb3": TASK.spec.training.n_envs, "batched": TASK.spec.training.batched.num_envs}  # type: ignore[union-attr]
"""Environments the smoke test steps together on each training path (CHECK_STEPS of each)."""


@pytest.mark.parametrize("backend", ["sb3", "batched"])
def test_good_code_passes_the_smoke_test(tmp_path: Path, backend: str) -> None:
    report = review(HUMAN, TASK, tmp_path / "cand", CONTEXT, run_training, backend=backend)
    assert report.status == Status.OK and report.stage == "passed"
    assert report.message == f"passed the smoke test on {CHECK_STEPS * ENVS[backend]} real states"
    assert CheckReport.model_validate_json((tmp_path / "cand/check.json").read_text()) == report


def test_static_failure_never_runs_code(tmp_path: Path) -> None:
    report = review(
        "import os\ndef compute_reward(pole_angle):\n    return pole_angle, {}\n",
        TASK,
        tmp_path / "cand",
        CONTEXT,
        run_training,
    )
    assert report.status == Status.CHECK_FAILED and report.stage == "static"
    assert report.message == "import of `os` is not allowed; only torch, math and typing may be imported"
    assert not (tmp_path / "cand/smoke").exists()


@pytest.mark.parametrize("backend", ["sb3", "batched"])
def test_smoke_failure_names_the_problem(tmp_path: Path, backend: str) -> None:
    code = (FIXTURES / "rewards/returns_nan.py").read_text()
    report = review(code, TASK, tmp_path / "cand", CONTEXT, run_training, backend=backend)
    assert report.status == Status.DIVERGED and report.stage == "smoke"
    n = ENVS[backend]
    assert report.message.startswith(f"compute_reward returned NaN or infinite values for {n} of {n} envir")


def test_llm_critic_revision_is_kept_only_when_it_passes(tmp_path: Path) -> None:
    better = HUMAN.replace("0.3 * centred", "0.6 * centred")
    backend = QueuedBackend(
        [
            "VERDICT: REVISE\nThe centring term is too weak.\n" + fenced(better),
            "VERDICT: REVISE\n" + fenced("def compute_reward(pole_tip):\n    return pole_tip, {}\n"),
            "VERDICT: OK",
        ]
    )
    llm = LLM(backend)
    kept = review(HUMAN, TASK, tmp_path / "a", CONTEXT, run_training, llm=llm)
    assert kept.revised_by_critic and kept.code.strip() == better.strip()
    assert (tmp_path / "a/reward.py").read_text().strip() == better.strip()
    rejected = review(HUMAN, TASK, tmp_path / "b", CONTEXT, run_training, llm=llm)
    assert not rejected.revised_by_critic and rejected.code == HUMAN
    assert (tmp_path / "b/reward.py").read_text() == HUMAN
    fine = review(HUMAN, TASK, tmp_path / "c", CONTEXT, run_training, llm=llm)
    assert fine.status == Status.OK and not fine.revised_by_critic
    assert "candidate reward function" in backend.history[0][0]["content"]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "def compute_reward(pole_angle):\n    r = (1 - pole_angle.abs()).mean().item()\n"
            "    return r, {}\n",
            "the total reward is a single Python float",
        ),
        (
            "import torch\ndef compute_reward(pole_angle):\n"
            "    return torch.ones_like(pole_angle) * pole_angle.abs().mean(), {}\n",
            "the total reward was one number for all",
        ),
    ],
)
def test_a_reward_that_is_the_same_for_every_environment_is_rejected(
    tmp_path: Path, code: str, message: str
) -> None:
    report = review(code, TASK, tmp_path / "cand", CONTEXT, run_training, backend="batched")
    assert report.status == Status.CHECK_FAILED and report.stage == "smoke"
    assert report.message.startswith(message) and "\n" not in report.message
