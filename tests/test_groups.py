"""Candidates trained in groups (`--group K`): a job in a group ends exactly as it would alone,
one failing job fails alone, a group's worker runs in one sandbox, jobs its dead worker did not
finish train again alone, and the executor and the loop put the right jobs together."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import REPO, QueuedBackend, fenced, solve_config

from eureka.llm.client import LLM
from eureka.loop import Loop, save_config
from eureka.training import group_worker, groups, train
from eureka.training.executors import LocalExecutor, Watched
from eureka.training.worker import write_result
from eureka.types import Status, Summary, TrainJob, TrainResult

CARTPOLE = REPO / "tasks/cartpole"
HUMAN = (CARTPOLE / "human_reward.py").read_text()
LATER = """
import torch

CALLS = [0]


def compute_reward(pole_angle: torch.Tensor):
    CALLS[0] += 1  # past the 32 steps of the fail-fast smoke test
    if CALLS[0] > 40:
        {failure}
    return 1.0 - pole_angle.abs(), {{}}
"""
RAISES_LATER = LATER.format(failure='raise ValueError("no more")')
NAN_LATER = LATER.format(failure='return pole_angle * float("nan"), {}')
HANGS_LATER = LATER.format(failure="while True:\n            pass")


def _job(
    tmp_path: Path, name: str, reward: str | None, seed: int = 0, timesteps: int = 3000, **extra: Any
) -> TrainJob:
    reward_file = None
    if reward is not None:
        tmp_path.mkdir(exist_ok=True)
        reward_file = tmp_path / f"{name}.py"
        reward_file.write_text(reward)
    return TrainJob(
        task_folder=CARTPOLE,
        reward_file=reward_file,
        out_dir=tmp_path / name,
        seed=seed,
        timesteps=timesteps,
        video=False,
        **{"device": "cpu", **extra},
    )


def _same(a: TrainResult, b: TrainResult) -> None:
    """Bitwise the same training: on the CPU, one thread, every float operation is repeated in the
    same order on the same numbers (its own generators restored around its turn)."""
    assert a.status == b.status == Status.OK, (a.message, b.message)
    for field in ("fitness", "eval_fitness", "fitness_curve", "reward_curve", "diagnostics", "env_steps"):
        assert getattr(a, field) == getattr(b, field), field
    assert a.components == b.components


def test_a_grouped_job_ends_as_alone_and_a_failing_one_fails_alone(tmp_path: Path) -> None:
    """Two trainings end bitwise as alone while four others raise, return NaN, cannot load their
    checkpoint, or hang past their own limit (counted over their own turns)."""
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    batch = [
        _job(tmp_path, "human", HUMAN, seed=0),
        _job(tmp_path, "raises", RAISES_LATER),
        _job(tmp_path, "nan", NAN_LATER),
        _job(tmp_path, "checkpoint", HUMAN, resume_from=broken),
        _job(tmp_path, "sparse", None, seed=1),
        _job(tmp_path, "hangs", HANGS_LATER),
    ]
    grouped = group_worker.train_group(batch, limits=[600.0] * 5 + [1.0])
    human, raises, nan, checkpoint, sparse, hangs = grouped
    _same(human, train.train(_job(tmp_path / "alone", "human", HUMAN, seed=0)))
    _same(sparse, train.train(_job(tmp_path / "alone", "sparse", None, seed=1)))
    assert raises.status == Status.CRASHED
    assert raises.message.startswith("compute_reward raised ValueError: no more")
    assert raises.env_steps > 0  # it trained until it raised, and says so
    assert nan.status != Status.OK and "finite" in nan.message
    assert checkpoint.status == Status.CRASHED
    assert checkpoint.message.startswith("training raised UnpicklingError")
    assert hangs.status == Status.TIMEOUT and hangs.message == (
        "training exceeded the wall-clock limit of 1 s (its own turns in a group) and was stopped"
    )
    for job, result in zip(batch, grouped, strict=True):
        assert TrainResult.model_validate_json((job.out_dir / "metrics.json").read_text()) == result
        assert "training cartpole" in (job.out_dir / "train.log").read_text() or result.status != Status.OK


def test_a_crash_message_quotes_its_own_reward_py_not_another_candidates(tmp_path: Path) -> None:
    """Two rewards named reward.py (in two folders) in one process: the one that raises is quoted
    from its own line 10, not from the other's, compiled after it."""
    raises = _job(tmp_path / "a", "reward", RAISES_LATER, timesteps=1000)
    other = _job(tmp_path / "b", "reward", HUMAN, timesteps=1000)
    assert raises.reward_file is not None and raises.reward_file.name == "reward.py"
    crashed, ok = group_worker.train_group([raises, other])
    assert ok.status == Status.OK, ok.message
    assert crashed.status == Status.CRASHED
    assert (
        crashed.message
        == 'compute_reward raised ValueError: no more (reward.py line 10: raise ValueError("no more"))'
    )


OUT_OF_MEMORY = LATER.format(failure="raise MemoryError()")
ALLOCATOR = LATER.format(failure='raise RuntimeError("DefaultCPUAllocator: can\'t allocate memory: 8 GB")')
SETS_TORCH = (
    "torch.set_default_dtype(torch.float64)\ntorch.set_num_threads(2)\ntorch.set_grad_enabled(False)\n"
)


def test_a_job_out_of_memory_in_a_group_has_no_result_and_one_cannot_change_anothers_torch(
    tmp_path: Path,
) -> None:
    """Memory is the group's: a job that ran out of it writes no result (the host trains it again
    alone). A reward that sets torch's dtype, threads and grad mode at import keeps them to itself."""
    batch = [
        _job(tmp_path, "memory", OUT_OF_MEMORY, timesteps=1000),
        _job(tmp_path, "allocator", ALLOCATOR, timesteps=1000),
        _job(
            tmp_path,
            "sets",
            HUMAN.replace("import torch\n", "import torch\n" + SETS_TORCH, 1),
            timesteps=1000,
        ),
        _job(tmp_path, "human", HUMAN, timesteps=1000),
    ]
    memory, allocator, _, human = group_worker.train_group(batch)
    assert memory is None and allocator is None
    for job in batch[:2]:
        assert not (job.out_dir / "metrics.json").exists()
        assert "the host trains it again alone" in (job.out_dir / "train.log").read_text()
    _same(human, train.train(_job(tmp_path / "alone", "human", HUMAN, timesteps=1000)))
    assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()
    assert group_worker._out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))


def test_a_group_trains_in_one_sandbox_and_hands_each_job_its_folder(tmp_path: Path) -> None:
    batch = [_job(tmp_path, name, HUMAN, seed=i, timesteps=1000) for i, name in enumerate("ab")]
    seen: list[dict[str, Any]] = []
    a, b = LocalExecutor().run_group(batch, [seen.append, None])
    assert a.status == b.status == Status.OK, (a.message, b.message)
    assert a.eval_fitness != b.eval_fitness  # two seeds, two trainings
    assert seen and seen[-1]["env_steps"] >= 1000
    for job in batch:
        written = TrainJob.model_validate_json((job.out_dir / "job.json").read_text())
        assert written.out_dir == job.out_dir.resolve()
        assert written.reward_file == job.out_dir.resolve() / "inputs/reward_file" / f"{job.out_dir.name}.py"
        assert (job.out_dir / "policy.pt").is_file()
        log = (job.out_dir / groups.GROUP_LOG).read_text()  # trained in the group, not again alone
        assert "a: ok trained" in log and "b: ok trained" in log and "again alone" not in log
    assert not list(tmp_path.glob(".group-*"))  # the scratch folder is gone


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_a_grouped_job_ends_as_alone_where_alone_repeats(tmp_path: Path) -> None:
    """On a GPU some kernels may add in a different order from run to run: the group must give
    what alone gives wherever two trainings alone agree with each other."""
    batch = [
        _job(tmp_path / "group", name, HUMAN, seed=i, timesteps=50_000, device="cuda")
        for i, name in enumerate(("a", "b"))
    ]
    grouped = group_worker.train_group(batch)
    alone = [
        train.train(_job(tmp_path / f"alone{r}", "a", HUMAN, seed=0, timesteps=50_000, device="cuda"))
        for r in (1, 2)
    ]
    assert grouped[1].status == Status.OK, grouped[1].message
    if alone[0].eval_fitness != alone[1].eval_fitness:
        pytest.skip(f"two trainings alone differ on this GPU: {alone[0].fitness} and {alone[1].fitness}")
    _same(grouped[0], alone[0])


DIES_AFTER_THE_FIRST = """
import json, sys
from pathlib import Path
first = json.loads(Path(sys.argv[1]).read_text())["jobs"][0]
Path(first["out_dir"], "metrics.json").write_text('{"status": "ok", "message": "first", "fitness": 7.0}')
Path(first["out_dir"], "policy.pt").write_text("weights")
sys.exit(3)
"""


def test_jobs_a_dead_group_did_not_finish_train_again_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(groups, "WORKER", [sys.executable, "-c", DIES_AFTER_THE_FIRST])
    batch = [_job(tmp_path, "first", HUMAN), _job(tmp_path, "second", HUMAN, seed=1)]
    again: list[Path] = []

    def alone(job: TrainJob, **_: Any) -> TrainResult:
        again.append(job.out_dir)
        return TrainResult(status=Status.OK, message="alone")

    first, second = groups.run_group(batch, alone=alone)
    assert (first.message, first.fitness) == ("first", 7.0)
    assert (tmp_path / "first/policy.pt").read_text() == "weights"
    assert again == [tmp_path / "second"] and second.message == "alone"
    assert "exit 3" in (tmp_path / "second" / groups.GROUP_LOG).read_text()
    assert not list(tmp_path.glob(".group-*"))


def test_the_plan_groups_alike_jobs_evenly_and_leaves_the_rest_alone(tmp_path: Path) -> None:
    batch = [_job(tmp_path, f"j{i}", HUMAN, seed=i) for i in range(5)]
    batch += [
        _job(tmp_path, "smoke", HUMAN, check_only=True),
        _job(tmp_path, "sb3", HUMAN, backend="sb3"),
        _job(tmp_path, "cuda", HUMAN).model_copy(update={"device": "cuda"}),
    ]
    assert groups.plan(batch, 4) == [[0, 1, 2], [3, 4], [7], [5], [6]]
    assert groups.plan(batch, 1) == [[i] for i in range(8)]

    class Plain:  # an executor without run_group (Ray's): every job alone
        def __init__(self) -> None:
            self.ran: list[str] = []

        def run(self, job: TrainJob) -> TrainResult:
            self.ran.append(job.out_dir.name)
            return TrainResult(status=Status.OK, message=job.out_dir.name)

    plain = Plain()
    results = groups.run_groups(plain, batch[:5], 4, workers=2)
    assert [r.message for r in results] == ["j0", "j1", "j2", "j3", "j4"]
    assert sorted(plain.ran) == ["j0", "j1", "j2", "j3", "j4"]


def test_an_executor_that_cannot_group_still_trains_workers_jobs_at_once(tmp_path: Path) -> None:
    """Ray's executor has no run_group: `--group 4` must not run its jobs one after another."""
    together = threading.Barrier(4, timeout=30)  # broken unless 4 jobs run at once

    class Plain:
        name = "plain"

        def run(self, job: TrainJob, on_progress: Any = None) -> TrainResult:
            together.wait()
            return TrainResult(status=Status.OK, message=job.out_dir.name)

        def cancel(self) -> None: ...

        def close(self) -> None: ...

    watched = Watched(Plain(), tmp_path, lambda _: None)
    assert not watched.can_group
    batch = [_job(tmp_path, f"j{i}", HUMAN, seed=i) for i in range(4)]
    results = groups.run_groups(watched, batch, 4, workers=4)
    assert [r.message for r in results] == ["j0", "j1", "j2", "j3"]


def test_a_jobs_files_move_to_its_folder_with_its_result_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "scratch"
    source.mkdir()
    for name in ("metrics.json", "policy.pt", "train.log", "z.txt"):
        (source / name).write_text(name)
    moved: list[str] = []
    rename = Path.rename
    monkeypatch.setattr(Path, "rename", lambda self, to: (moved.append(self.name), rename(self, to))[1])
    groups._move(source, tmp_path / "job")
    assert len(moved) == 4 and moved[-1] == "metrics.json"
    assert (tmp_path / "job/policy.pt").read_text() == "policy.pt"


class InProcess:
    """An executor that trains in this process (real training, no sandbox), recording groups;
    one job or group at a time (a group worker owns its process's output)."""

    name = "in-process"

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.lock = threading.Lock()

    def run(self, job: TrainJob, on_progress: Any = None) -> TrainResult:
        with self.lock:
            result = train.train(job)
        write_result(job.out_dir, result)
        return result

    def run_group(self, batch: list[TrainJob], on_progress: Any = None) -> list[TrainResult]:
        self.groups.append([str(job.out_dir.relative_to(job.out_dir.parents[1])) for job in batch])
        with self.lock:
            return group_worker.train_group(batch)

    def cancel(self) -> None: ...

    def close(self) -> None: ...


def _solve(tmp_path: Path, replies: list[str], **settings: Any) -> tuple[Summary, InProcess, Path]:
    """A loop run on cartpole in this process (groups recorded): its summary, executor, folder."""
    config = solve_config(iterations=1, samples=len(replies), timesteps=1000, **settings)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_config(run_dir, config)
    executor = InProcess()
    llm = LLM(QueuedBackend([fenced(r) for r in replies]), transcript=run_dir / "transcript.jsonl")
    summary = Loop(config, run_dir, llm, lambda _: None, executor=executor).run()
    assert summary.status == "ok", summary.message
    return summary, executor, run_dir


def test_the_loop_smoke_tests_alone_then_trains_in_groups(tmp_path: Path) -> None:
    stronger = HUMAN.replace("0.5 * upright", "2.0 * upright")
    summary, executor, _ = _solve(tmp_path, [HUMAN, stronger, HUMAN], group=2, eval_seeds=1)
    first, final = executor.groups  # the third candidate, a group of one, trained alone
    assert first == ["iter_0/cand_0", "iter_0/cand_1"]
    assert len(final) == 2 and all(name.startswith("final/") for name in final)
    trained = summary.iterations[0].candidates
    assert [c.status for c in trained] == [Status.OK] * 3
    assert trained[0].fitness == trained[2].fitness  # one reward and seed, in a group and alone


def test_under_group_the_confirmation_never_trains_the_human_reward_beside_a_challenger(
    tmp_path: Path,
) -> None:
    """`--group 2` with the confirmation: the search may group candidates, but on the fresh seeds
    the human reward (the task's own code) trains in a process of its own, never in a model's
    reward's, whose code could change the figures it is compared with."""
    stronger = HUMAN.replace("0.5 * upright", "2.0 * upright")
    settings = {"group": 2, "human_init": True, "confirm": 2, "confirm_seeds": 2, "eval_seeds": 0}
    summary, executor, run_dir = _solve(tmp_path, [stronger], **settings)
    assert len(summary.confirmation) == 2  # the human reward and the other, retrained
    assert executor.groups == [["iter_0/cand_0", "iter_0/cand_1"]]  # the search's group only
    confirmed = sorted(str(p.relative_to(run_dir)) for p in run_dir.glob("iter_0/*/confirm_seed*"))
    assert confirmed[:2] == ["iter_0/cand_0/confirm_seed1", "iter_0/cand_1/confirm_seed1"]


def test_the_final_evaluation_trains_the_tasks_own_rewards_in_shared_processes(tmp_path: Path) -> None:
    """Without --group, the human and sparse rewards of the final evaluation (the task's own code,
    not a model's) share processes on a CPU, never with a model's reward: the plan that ends
    first for jobs of equal length, then the one with fewest sandboxed processes."""
    batch = [_job(tmp_path, f"j{i}", HUMAN, seed=i) for i in range(6)]
    trusted = [False, False, True, True, True, True]  # best x2, then human x2 and sparse x2
    assert groups.plan_trusted(batch, trusted, 1, workers=2) == [[2, 3], [4, 5], [0], [1]]
    assert groups.plan_trusted(batch, trusted, 1, workers=1) == [[2, 3, 4, 5], [0], [1]]
    assert groups.plan_trusted(batch, trusted, 2, workers=4) == [[0, 1], [2, 3], [4, 5]]  # never mixed
    assert groups.plan_trusted(batch, trusted, 1, workers=2, on_cpu=False) == [[i] for i in range(6)]
    assert groups.plan_trusted(batch[:2], [True, True], 1, workers=2) == [[0], [1]]  # no slower
    summary, executor, _ = _solve(tmp_path, [HUMAN], workers=2, eval_seeds=2)
    assert sorted(executor.groups) == [  # the best reward is the human one here: trained once
        ["final/human_seed1000", "final/human_seed1001"],
        ["final/sparse_seed1000", "final/sparse_seed1001"],
    ]
    final = summary.final
    assert final is not None and final.sparse is not None
    assert final.human.statuses == final.sparse.statuses == ["ok", "ok"]
