"""F measured outside the training process (eureka/training/scoring.py): the worker's parent
reads the policy the training saved, without unpickling anything, and measures the same F.

The trainings run in this process through the worker's entry point without the fork (a fork
of the test runner would copy its threads); `scoring.measure` is what the parent runs after it.
The fork itself, the kill of leftover processes and the forged results are the hostile
corpus's cases (tests/hostile/forge_*.py), run in the sandbox."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import REPO, human_job, worker_in_process
from pydantic import ValidationError

from eureka import tasks
from eureka.training import scoring
from eureka.types import Status, TrainJob, TrainResult


def _trained(tmp_path: Path, task: str, backend: str, timesteps: int) -> tuple[TrainJob, TrainResult]:
    job = human_job(REPO / "tasks" / task, tmp_path / "job", timesteps, backend)
    result = worker_in_process(job)
    assert result.status == Status.OK, result.message
    return job, result


@pytest.mark.parametrize(
    ("task", "backend", "timesteps"),
    [
        ("cartpole", "batched", 1000),
        ("cartpole", "sb3", 1000),
        pytest.param("hopper", "sb3", 2048, id="hopper-sb3-normalised", marks=pytest.mark.slow),
    ],
)
def test_the_saved_policy_scores_what_its_training_process_measured(
    tmp_path: Path, task: str, backend: str, timesteps: int
) -> None:
    """The same evaluation episodes, to the bit (same weights, seeds and code), from the
    parameters alone (SB3's observation statistics from the .npz where the task normalises);
    what the training process claimed is only quoted, and its per-episode components kept."""
    job, trained = _trained(tmp_path, task, backend, timesteps)
    claimed = trained.model_copy(update={"fitness": 1e9})
    result = scoring.measure(job, tasks.load(str(job.task_folder)), claimed, time.monotonic())
    assert result.status == Status.OK
    assert result.fitness == trained.fitness and result.eval_fitness == trained.eval_fitness
    assert result.success_rate == trained.success_rate
    assert [e.components for e in result.eval_episodes] == [e.components for e in trained.eval_episodes]
    assert (
        result.message
        == f"trained (the training process reported F 1e+09; the saved policy scores {trained.fitness:.6g})"
    )
    assert (
        scoring.measure(job, tasks.load(str(job.task_folder)), trained, time.monotonic()).message == "trained"
    )


def test_a_policy_file_that_would_run_code_when_unpickled_is_refused(tmp_path: Path) -> None:
    """A policy.pt replaced by a pickle that calls os.system: weights_only refuses it, the job
    is crashed with one line, and the command never ran."""
    job, trained = _trained(tmp_path, "cartpole", "batched", 1000)
    canary = tmp_path / "ran"
    (job.out_dir / "policy.pt").write_bytes(f"cos\nsystem\n(S'touch {canary}'\ntR.".encode())
    result = scoring.measure(job, tasks.load(str(job.task_folder)), trained, time.monotonic())
    assert result.status == Status.CRASHED and result.fitness is None and not result.eval_episodes
    assert result.message.startswith("measuring F on the saved policy failed: UnpicklingError")
    assert "\n" not in result.message
    assert not canary.exists()


def test_a_failed_training_keeps_no_claim_about_its_policy(tmp_path: Path) -> None:
    """A result that is not ok is passed on without the F it may carry."""
    job, trained = _trained(tmp_path, "cartpole", "batched", 1000)
    failed = trained.model_copy(update={"status": Status.DIVERGED, "message": "diverged", "fitness": 1e9})
    result = scoring.measure(job, tasks.load(str(job.task_folder)), failed, time.monotonic())
    assert result.status == Status.DIVERGED and result.fitness is None and result.eval_fitness == []
    assert result.components == trained.components


@pytest.mark.parametrize("name", ["/etc/passwd", "../rung_0/policy.pt", "..", ""])
def test_a_result_naming_a_file_outside_its_folder_is_not_read(name: str) -> None:
    """File names in a result written where a reward ran (group mode, an older worker) are
    plain names: the halving loop copies `checkpoint_file` and the report embeds `video_file`
    from the job's folder on the host."""
    for field in ("policy_file", "video_file", "checkpoint_file"):
        with pytest.raises(ValidationError, match="is not the name of a file in the job's folder"):
            TrainResult.model_validate({"status": "ok", field: name})
    plain = TrainResult.model_validate({"status": "ok", "checkpoint_file": "policy.pt"})
    assert plain.checkpoint_file == "policy.pt"
