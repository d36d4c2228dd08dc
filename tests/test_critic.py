"""The Reward Critic: static checks, a sandboxed smoke test on real states, an LLM review."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, QueuedBackend, fenced

from eureka import tasks
from eureka.llm.client import LLM
from eureka.llm.context import environment_context
from eureka.reward.critic import review
from eureka.training.files import LOG_FILE, METRICS_FILE
from eureka.training.jobs import run_training
from eureka.training.session import CHECK_STEPS
from eureka.types import CheckReport, Status, TrainJob, TrainResult

HUMAN = (REPO / "tasks/cartpole/human_reward.py").read_text()
TASK = tasks.load("cartpole")
CONTEXT = environment_context(TASK)


ENVS = {"sb3": TASK.spec.training.n_envs, "batched": TASK.spec.training.batched.num_envs}  # type: ignore[union-attr]
"""Environments the smoke test steps together on each training path (CHECK_STEPS of each)."""


@pytest.mark.parametrize("backend", [pytest.param("sb3", marks=pytest.mark.slow), "batched"])
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


@pytest.mark.parametrize("backend", [pytest.param("sb3", marks=pytest.mark.slow), "batched"])
def test_smoke_failure_names_the_problem(tmp_path: Path, backend: str) -> None:
    code = (FIXTURES / "rewards/returns_nan.py").read_text()
    report = review(code, TASK, tmp_path / "cand", CONTEXT, run_training, backend=backend)
    assert report.status == Status.DIVERGED and report.stage == "smoke"
    n = ENVS[backend]
    assert report.message.startswith(f"compute_reward returned NaN or infinite values for {n} of {n} envir")


@pytest.mark.slow
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


# ---------------------------------------------------------------- smoke test and training in one worker


def _training(out: Path, backend: str = "batched") -> TrainJob:
    return TrainJob(
        task_folder=TASK.folder, reward_file=None, out_dir=out, timesteps=1000, video=False, backend=backend
    )


@pytest.mark.parametrize("backend", [pytest.param("sb3", marks=pytest.mark.slow), "batched"])
def test_the_smoke_test_and_the_training_share_one_worker(tmp_path: Path, backend: str) -> None:
    """With `then_train` the smoke test's worker goes on to train: the same verdict and message
    as a smoke test of its own, the training's result in its folder, one worker start."""
    out = tmp_path / "cand"
    report = review(
        HUMAN, TASK, out, CONTEXT, run_training, backend=backend, then_train=_training(out, backend)
    )
    assert report.status == Status.OK and report.stage == "passed"
    assert report.message == f"passed the smoke test on {CHECK_STEPS * ENVS[backend]} real states"
    trained = TrainResult.model_validate_json((out / METRICS_FILE).read_text())
    assert trained.status == Status.OK and trained.env_steps >= 1000 and trained.fitness is not None
    assert (out / LOG_FILE).read_text().count("status: ok") == 1  # the worker's last line, once
    assert not (out / "smoke").exists()


def test_a_failed_smoke_test_leaves_no_training_result(tmp_path: Path) -> None:
    code = (FIXTURES / "rewards/returns_nan.py").read_text()
    out = tmp_path / "cand"
    (out / "keep").mkdir(parents=True)
    report = review(code, TASK, out, CONTEXT, run_training, backend="batched", then_train=_training(out))
    alone = review(code, TASK, tmp_path / "alone", CONTEXT, run_training, backend="batched")
    assert (report.status, report.stage, report.message) == (alone.status, alone.stage, alone.message)
    assert report.status == Status.DIVERGED
    assert not (out / METRICS_FILE).exists()  # the loop would read it back as the training's
    assert (out / "smoke" / METRICS_FILE).is_file() and (out / "keep").is_dir()


def test_the_smoke_test_keeps_its_own_limit_when_training_follows(tmp_path: Path) -> None:
    code = (FIXTURES / "rewards/sleeps_forever.py").read_text()
    out = tmp_path / "cand"
    train = _training(out).model_copy(update={"timeout": 600.0})
    start = time.monotonic()
    report = review(code, TASK, out, CONTEXT, run_training, timeout=4, backend="batched", then_train=train)
    assert report.status == Status.TIMEOUT and report.stage == "smoke"
    # what it says of the stuck call: test_train's test_reward_that_never_returns_is_named_by_the_smoke_test
    assert report.message.startswith("the smoke test exceeded the wall-clock limit of 4 s and was killed")
    assert time.monotonic() - start < 60
