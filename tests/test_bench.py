"""The benchmarks run in their quick mode (figures printed, not asserted: speed is measured by
the scripts, not by timed tests)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import REPO

from eureka.types import Status


@pytest.mark.slow
def test_speed_benchmark_quick_mode_prints_its_table() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench/speed.py"), "--quick", "--tasks", "cartpole"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    print(done.stdout)  # the figures, in the test log
    lines = done.stdout.splitlines()
    assert lines[0].split()[:4] == ["task", "pipeline", "envs", "steps/s"]
    rows = [line.split()[:2] for line in lines[1:] if line.strip() and ": batched runs" not in line]
    assert rows == [["cartpole", "sb3-default"], ["cartpole", "sb3-task"], ["cartpole", "batched"]]
    assert "cartpole: batched runs" in done.stdout


@pytest.mark.slow
def test_sandbox_overhead_benchmark_runs() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench/sandbox_overhead.py"),
            "--repeats",
            "1",
            "--timesteps",
            "500",
            "--modes",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    print(done.stdout)
    assert "critic smoke test (cartpole)" in done.stdout
    assert "candidate: smoke test + 500 steps, one worker" in done.stdout
    assert "saved per candidate" in done.stdout


def _bench(name: str) -> ModuleType:
    """The benchmark script bench/`name`.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_no_key_defaults_are_the_settings_of_the_measured_table() -> None:
    """`eureka solve T` with no key (or --model none) runs what bench/optimiser.py measured for
    the README's table, `--bonus --trainings 32 --iterations 3 --confirm 5 --confirm-seeds 3`:
    so the figures there are the defaults' figures, and the run stays within 32 trainings."""
    import typer

    from eureka.cli import app
    from eureka.llm.client import NO_MODEL
    from eureka.training import optimise
    from eureka.types import SolveConfig

    measured = _bench("optimiser").arm_settings("optuna", 32, 3, 5, 3)
    config = optimise.offline_defaults(SolveConfig(task=str(REPO / "tasks/cartpole"), model=NO_MODEL), set())
    assert {key: getattr(config, key) for key in measured} == measured
    assert (config.iterations, config.bonus, config.human_init) == (3 + 1, True, True)  # + the human's
    proposals = (config.iterations - 1) * (config.tune + config.structure)
    most = 1 + proposals + config.confirm + 2 * (config.confirm_seeds - 1)
    assert most <= 32
    solve = typer.main.get_command(app).commands["solve"]  # type: ignore[attr-defined]
    (model,) = [p for p in solve.params if p.name == "model"]
    said = f"--iterations {config.iterations} --tune {config.tune} --structure {config.structure} --bonus"
    said += f" --confirm {config.confirm} --confirm-seeds {config.confirm_seeds}"
    assert said in getattr(model, "help", "")  # --help says them


@pytest.mark.slow
def test_library_pipelines_train_our_environment_under_the_human_reward(tmp_path: Path) -> None:
    """skrl and rsl-rl (the benchmark's comparison for eureka's own PPO) drive the same batched
    env, reward and episode scoring: skrl learns CartPole through the adapter; rsl-rl, which
    has no discrete policy, says so and runs Pendulum."""
    third_party = _bench("third_party")
    cartpole = REPO / "tasks/cartpole"
    learned = third_party.train("skrl", cartpole, 30_000, 0, 1, tmp_path / "skrl")
    assert learned.status == Status.OK, learned.message
    assert learned.backend == "skrl:CartPole"
    assert learned.env_steps >= 20_000 or learned.solved_after_steps is not None
    assert learned.fitness is not None and learned.fitness >= 50  # random play scores ~22
    refused = third_party.train("rsl-rl", cartpole, 4_000, 0, 1, tmp_path / "rsl-cartpole")
    assert refused.status == Status.CRASHED and "discrete" in refused.message
    pendulum = third_party.train("rsl-rl", REPO / "tasks/pendulum", 30_000, 0, 1, tmp_path / "rsl")
    assert pendulum.status == Status.OK, pendulum.message
    assert pendulum.env_steps >= 30_000 and pendulum.steps_per_second > 0
    assert pendulum.fitness is not None  # 200-step episodes ended, scored by the task's F
