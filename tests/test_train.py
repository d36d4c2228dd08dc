"""`eureka train` end to end through the CLI: real training (SB3, and the batched path cartpole
takes by default) in the sandbox worker with tiny budgets, and every kind of broken reward ending
with its status and message."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import FAKE_KEY, FIXTURES, REPO, human_job, worker_in_process
from typer.testing import CliRunner

from eureka.cli import app
from eureka.reward import critic
from eureka.training.files import METRICS_FILE, SMOKE_FILE
from eureka.types import Status, TrainResult

runner = CliRunner()
REWARDS = FIXTURES / "rewards"


def train_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["train", *args, "--json", "--no-video"])
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
    assert lines, result.output
    return result.exit_code, json.loads(lines[-1])


def train_reward(tmp_path: Path, code: str, *args: str) -> tuple[int, dict[str, Any]]:
    """`eureka train cartpole` on `code` written to a file, run directories under `tmp_path`."""
    reward = tmp_path / "reward_under_test.py"
    reward.write_text(code)
    return train_json(
        "cartpole", "--reward", str(reward), "--timesteps", "1000", "--runs-dir", str(tmp_path), *args
    )


@pytest.mark.parametrize(
    ("backend", "policy"),
    [pytest.param("sb3", "policy.zip", marks=pytest.mark.slow), ("batched", "policy.pt")],
)
def test_human_reward_trains_and_reports_components(backend: str, policy: str) -> None:
    code, out = train_json(
        "cartpole", "--reward", "human", "--timesteps", "3000", "--seed", "1", "--backend", backend
    )
    assert code == 0, out
    assert out["status"] == "ok"
    assert out["fitness"] is not None and out["fitness"] > 0
    assert 0.0 <= out["success_rate"] <= 1.0
    assert out["env_steps"] >= 3000
    assert {c["name"] for c in out["components"]} == {"alive", "upright", "centred", "calm"}
    alive = next(c for c in out["components"] if c["name"] == "alive")
    assert alive["means"] == [1.0] * len(out["checkpoint_steps"])
    run_dir = Path(out["run_dir"])
    assert (run_dir / policy).is_file()
    assert (run_dir / "reward.py").read_text() == (REPO / "tasks/cartpole/human_reward.py").read_text()
    assert (run_dir / "config.yaml").is_file() and (run_dir / "train.log").is_file()
    assert json.loads((run_dir / "check.json").read_text())["stage"] == "passed"  # smoke-tested first
    path = (
        "SB3 PPO (--backend sb3)"
        if backend == "sb3"
        else "batched PPO on a native batched port of CartPole-v1"
    )
    assert out["training_path"] == path
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok"
    for file in run_dir.rglob("*"):
        if file.is_file() and file.suffix in {".json", ".yaml", ".log", ".py"}:
            assert FAKE_KEY not in file.read_text(errors="replace"), file


@pytest.mark.slow
def test_sparse_reward_trains_on_the_success_signal() -> None:
    code, out = train_json("cartpole", "--reward", "sparse", "--timesteps", "2000")
    assert code == 0 and out["status"] == "ok"
    assert [c["name"] for c in out["components"]] == ["success"]


@pytest.mark.slow
def test_custom_environment_task_trains() -> None:
    code, out = train_json("point_mass", "--reward", "human", "--timesteps", "2048")
    assert code == 0 and out["status"] == "ok"
    assert {c["name"] for c in out["components"]} == {"progress", "reached", "clearance", "effort"}


@pytest.mark.parametrize(
    ("fixture", "status", "message"),
    [
        ("syntax_error.py", "check_failed", "reward.py line 3: syntax error: expected ':'"),
        (
            "unknown_field.py",
            "check_failed",
            "parameter `pole_tip_height` of `compute_reward` is not a state field; valid names: "
            "cart_position, cart_velocity, pole_angle, pole_angular_velocity, prev_cart_position, "
            "prev_cart_velocity, prev_pole_angle, prev_pole_angular_velocity, action",
        ),
        ("no_entry.py", "check_failed", "the code defines no top-level function `compute_reward`"),
        (
            "raises.py",
            "crashed",
            "compute_reward raised KeyError: 'balance' (reward.py line 5: "
            'scale = {"upright": 1.0}["balance"])',
        ),
        (
            "returns_nan.py",
            "diverged",
            "compute_reward returned NaN or infinite values for 8 of 8 environments "
            "(non-finite components: upright)",
        ),
        (
            "wrong_shape.py",
            "check_failed",
            "the total reward must have shape [N] = [8] (one value per environment), got [8, 2]",
        ),
    ],
)
def test_broken_rewards_end_with_a_status_and_message(fixture: str, status: str, message: str) -> None:
    reward = str(REWARDS / fixture)
    code, out = train_json("cartpole", "--reward", reward, "--timesteps", "1000", "--backend", "sb3")
    assert code == 1
    assert out["status"] == status
    assert out["message"] == message
    assert "Traceback" not in out["message"]
    assert json.loads((Path(out["run_dir"]) / "metrics.json").read_text())["status"] == status


def test_reward_that_never_returns_is_named_by_the_smoke_test(monkeypatch: pytest.MonkeyPatch) -> None:
    # not the task's 20-minute training limit; long enough to start on a loaded machine and step
    monkeypatch.setattr(critic, "SMOKE_TIMEOUT", 20.0)
    code, out = train_json("cartpole", "--reward", str(REWARDS / "sleeps_forever.py"), "--timesteps", "1000")
    assert code == 1
    assert out["status"] == "timeout"
    assert out["message"].startswith(
        "the smoke test exceeded the wall-clock limit of 20 s and was killed after 0 of its 256 "
        "random-action steps: one call of the reward had run for "
    ), out["message"]
    assert out["message"].endswith(
        "without returning (a loop that never ends, or work that grows without bound?); "
        "the reward must return at once"
    )
    run_dir = Path(out["run_dir"])
    assert json.loads((run_dir / "check.json").read_text())["stage"] == "smoke"
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "timeout"
    assert not (run_dir / "policy.pt").exists() and not (run_dir / "train.log").exists()  # never trained


@pytest.mark.slow
def test_reward_that_mutates_its_inputs_does_not_corrupt_training() -> None:
    code, out = train_json("cartpole", "--reward", str(REWARDS / "mutates_input.py"), "--timesteps", "1000")
    assert code == 0 and out["status"] == "ok"


def test_a_component_that_is_nan_while_the_total_is_finite_trains_and_reads_back(tmp_path: Path) -> None:
    """Its mean per episode is NaN: written as NaN (not null, which reading back refused, and the
    training was taken as crashed with its F lost)."""
    code, out = train_reward(
        tmp_path,
        "import torch\ndef compute_reward(pole_angle):\n    r = 1 - pole_angle.abs()\n"
        "    return r, {'upright': r, 'bad': r / 0 * 0}\n",
    )
    assert code == 0 and out["status"] == "ok" and out["fitness"] is not None, out
    saved = TrainResult.model_validate_json((Path(out["run_dir"]) / METRICS_FILE).read_text())
    assert saved.status == Status.OK and saved.eval_episodes
    assert all(math.isnan(e.components["bad"]) for e in saved.eval_episodes)


def test_what_a_reward_raises_reaches_the_user_as_one_short_printable_line(tmp_path: Path) -> None:
    """Not a clear-screen escape, not a fake 'Traceback' line, not 100 KB."""
    reward = tmp_path / "loud.py"
    reward.write_text(
        "def compute_reward(pole_angle):\n"
        "    raise ValueError('\\x1b[2J\\x1b[31mred' + 'x' * 100000 "
        "+ '\\nTraceback (most recent call last):')\n"
        "    return pole_angle, {}\n"
    )
    code, out = train_json(
        "cartpole", "--reward", str(reward), "--timesteps", "1000", "--runs-dir", str(tmp_path)
    )
    assert code == 1 and out["status"] == "crashed"
    message = out["message"]
    assert message.startswith("compute_reward raised ValueError:  [2J [31mredxxx")
    assert message.isprintable() and len(message) == 2000 and message.endswith("…")
    saved = TrainResult.model_validate_json((Path(out["run_dir"]) / METRICS_FILE).read_text())
    assert saved.message == message


@pytest.mark.parametrize("backend", ["batched", "sb3"])
def test_a_reward_that_assumes_the_number_of_environments_fails_the_smoke_test(
    backend: str, tmp_path: Path
) -> None:
    """It passed a smoke test on one batch size and crashed in training, where the evaluation
    steps another number of environments."""
    reward = tmp_path / "fixed.py"
    reward.write_text(
        "import torch\ndef compute_reward(pole_angle):\n    r = torch.ones(64)\n    return r, {'a': r}\n"
    )
    args = ["--timesteps", "1000", "--backend", backend, "--runs-dir", str(tmp_path)]
    _, out = train_json("cartpole", "--reward", str(reward), *args)
    assert out["status"] == "check_failed", out["message"]
    # on the batched path the smoke test's own batch is 64 environments: the half batch finds it
    assert "got [64]" in out["message"]


@pytest.mark.parametrize(
    ("returns", "message"),
    [
        ('float("nan")', "episode_fitness returned nan; it must return the episode's F as one finite number"),
        ('"good"', "episode_fitness returned 'good'; it must return the episode's F as one finite number"),
        (
            "1 / 0",
            "episode_fitness: running the task's code raised ZeroDivisionError: division by zero "
            "(fitness.py line 5)",
        ),
    ],
)
def test_a_custom_fitness_that_returns_no_number_is_named(returns: str, message: str, tmp_path: Path) -> None:
    """Not an F of NaN taken as the policy's score (or a crash pointing at eureka's own fitness.py)."""
    import shutil

    import yaml

    folder = tmp_path / "cartpole"
    shutil.copytree(REPO / "tasks/cartpole", folder)
    spec = yaml.safe_load((folder / "task.yaml").read_text())
    spec["fitness"]["metric"] = "custom"
    (folder / "task.yaml").write_text(yaml.safe_dump(spec))
    fitness = (folder / "fitness.py").read_text()
    (folder / "fitness.py").write_text(
        f"\n\n\ndef episode_fitness(episode):\n    return {returns}\n\n" + fitness
    )
    _, out = train_json(
        str(folder), "--reward", "human", "--timesteps", "1000", "--runs-dir", str(tmp_path / "runs")
    )
    assert out["status"] == "crashed" and out["fitness"] is None
    assert out["message"] == f"{folder / 'fitness.py'}: {message}"


def test_a_reward_that_ends_its_process_quietly_is_named(tmp_path: Path) -> None:
    """Not 'the worker exited with code 0: ' and nothing more."""
    _, out = train_reward(
        tmp_path,
        "import torch\ndef compute_reward(pole_angle):\n    if pole_angle.numel() > 0:\n"
        "        torch.os._exit(0)\n    return pole_angle, {}\n",
    )
    assert out["status"] == "crashed"
    assert out["message"] == (
        "the worker exited with code 0 before it wrote its result, saying nothing (the reward's code "
        "may have ended the process: os._exit, sys.exit)"
    )


def test_a_log_filled_by_prints_keeps_its_start_and_end(tmp_path: Path) -> None:
    """A reward that prints in a loop fills train.log to the sandbox's 512 MiB limit, per candidate."""
    from eureka.training.jobs import LOG_HEAD, LOG_TAIL, trim_log

    log = tmp_path / "train.log"
    log.write_bytes(b"start\n" + b"spam " * 2_000_000 + b"\nthe last line\n")
    trim_log(log)
    text = log.read_bytes()
    assert text.startswith(b"start\n") and text.endswith(b"the last line\n")
    assert len(text) < LOG_HEAD + LOG_TAIL + 100 and b"bytes of this log cut by eureka" in text
    short = tmp_path / "short.log"
    short.write_text("all of it\n")
    trim_log(short)
    assert short.read_text() == "all of it\n"


def test_missing_reward_file_is_a_clear_error(tmp_path: Path) -> None:
    runs = ["--runs-dir", str(tmp_path / "runs")]
    result = runner.invoke(app, ["train", "cartpole", "--reward", "nope.py", *runs])
    assert result.exit_code == 2
    assert (
        "error: reward 'nope.py' is not a file; give a path to a .py file, 'human' or 'sparse'"
        in result.output
    )
    latin1 = tmp_path / "latin1.py"
    latin1.write_bytes(b"def compute_reward(pole_angle):\n    return pole_angle, {}  # \xe9t\xe9\n")
    result = runner.invoke(app, ["train", "cartpole", "--reward", str(latin1), *runs])
    assert result.exit_code == 2
    assert " ".join(result.output.split()) == (
        f"error: reward '{latin1}': not UTF-8 text (invalid continuation byte at byte 61); save it as UTF-8"
    )
    assert not (tmp_path / "runs").exists()  # no run directory for a reward that cannot be read


def test_a_sparse_reward_on_a_task_without_a_success_signal_is_refused_before_a_run(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "cartpole"  # F is the episode's length: it needs no success signal
    shutil.copytree(REPO / "tasks/cartpole", folder)
    fitness = (folder / "fitness.py").read_text()
    (folder / "fitness.py").write_text(fitness.replace("def success_signal(", "def _unused_signal("))
    result = runner.invoke(
        app, ["train", str(folder), "--reward", "sparse", "--runs-dir", str(tmp_path / "runs")]
    )
    assert result.exit_code == 2
    assert " ".join(result.output.split()) == (
        "error: task cartpole has no success_signal in fitness.py, so it has no sparse reward; give "
        "--reward human or a reward file, or add success_signal(...) to fitness.py"
    )
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_human_readable_output() -> None:
    result = runner.invoke(app, ["train", "cartpole", "--timesteps", "2000", "--no-video"])
    assert result.exit_code == 0, result.output
    for expected in (
        "training path: batched PPO on a native batched port of CartPole-v1",
        "ok trained",
        "fitness F",
        "success rate",
        "training statistics",
        "steps/s",
        "run directory:",
    ):
        assert expected in result.output


@pytest.mark.parametrize("backend", ["sb3", "batched"])
def test_the_workers_entry_point_checks_then_trains(
    tmp_path: Path, backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the sandboxed worker runs, called in this process (so the quick suite's coverage
    check, tests/fast_coverage.py, sees the code that otherwise runs only in workers): a
    smoke-first job passes its smoke test, trains, and writes metrics.json."""
    out = tmp_path / "job"
    job = human_job(REPO / "tasks/cartpole", out, 1000, backend).model_copy(update={"smoke_first": True})
    result = worker_in_process(job)
    assert result.status == Status.OK and result.env_steps >= 1000, result.message
    assert {c.name for c in result.components} == {"alive", "upright", "centred", "calm"}
    assert (out / SMOKE_FILE).read_text().startswith("passed the smoke test on ")
    if backend == "sb3":  # SB3's PPO learns in whole rollouts: the log says the budget rounds up
        said = re.search(r"the budget of 1,000 runs ([\d,]+) steps", capsys.readouterr().out)
        assert said and int(said.group(1).replace(",", "")) == result.env_steps > 1000


DEFERRED_DYNAMO = """
import sys, torch
from eureka.training import worker
worker.defer_dynamo()
net = torch.nn.Linear(3, 1)
opt = torch.optim.Adam(net.parameters())
net(torch.ones(2, 3)).sum().backward()
opt.step()
opt.load_state_dict(opt.state_dict())
assert type(sys.modules["torch._dynamo"]).__name__ == "_DynamoOnDemand", "an optimiser loaded torch._dynamo"
import torch._dynamo.config  # a submodule: the real package loads
assert torch._dynamo.is_compiling() is False and type(sys.modules["torch._dynamo"]).__name__ == "module"
print("deferred")
"""


@pytest.mark.slow
def test_the_worker_defers_torch_dynamo_until_something_compiles() -> None:
    """The worker's start-up skips torch._dynamo's import (an optimiser asks for it only to
    mark methods as not compiled); anything more than that loads the real module."""
    command = [sys.executable, "-c", DEFERRED_DYNAMO]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "deferred", done.stderr[-2000:]


def test_an_environment_reward_of_nan_fails_the_training_with_what_to_fix(tmp_path: Path) -> None:
    """F of an env_return task summed the NaN: `ok, F nan`, HNS nan and NaN tokens in metrics.json."""
    import numpy as np

    from eureka import tasks
    from eureka.errors import TaskError
    from eureka.training.fitness import Fitness
    from eureka.types import Episode

    fitness = Fitness(tasks.load("acrobot"))  # env_return
    episode = Episode(
        states={}, env_rewards=np.array([1.0, math.nan]), signal=None, length=2, terminated=False
    )
    with pytest.raises(TaskError) as caught:
        fitness.of(episode)
    assert str(caught.value) == (
        f"{fitness.where}: fitness.metric env_return: the environment's rewards in an episode sum to nan; F "
        f"must be finite: fix the environment's reward (eureka tasks check {fitness.where.parent} finds it "
        "on a random rollout)"
    )


def test_smoke_watch_writes_the_steps_and_the_seconds_inside_the_reward(tmp_path: Path) -> None:
    """SmokeWatch rewrites, each interval, the steps done, the seconds so far, those inside the
    reward (its finished calls) and the call under way; the file goes when the smoke test ends."""
    import threading
    import time

    import torch

    from eureka.reward.contract import RewardFunction
    from eureka.training.files import SMOKE_PROGRESS_FILE
    from eureka.training.session import SmokeWatch

    release = threading.Event()

    def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        release.wait(10.0)
        return pole_angle, {}

    reward = RewardFunction(compute_reward, "reward.py", ["pole_angle"])
    path = tmp_path / SMOKE_PROGRESS_FILE

    def read_until(ready: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            try:
                seen = json.loads(path.read_text())
            except (OSError, ValueError):
                seen = None
            if seen is not None and ready(seen):
                return seen
            time.sleep(0.01)
        raise AssertionError(f"never saw it: {path.read_text() if path.exists() else 'no file'}")

    with SmokeWatch(tmp_path, 256, reward, every=0.02) as watch:
        first = json.loads(path.read_text())  # written on entry
        assert (first["steps"], first["of"], first["reward_seconds"], first["call_seconds"]) == (
            0,
            256,
            0.0,
            0.0,
        )
        release.set()
        for i in range(3):
            reward({"pole_angle": torch.zeros(4)}, 4)
            watch.done = i + 1
        done = read_until(lambda seen: seen["steps"] == 3)
        assert done["call_seconds"] == 0.0 and 0 <= done["reward_seconds"] <= done["seconds"]
        release.clear()
        caller = threading.Thread(target=reward, args=({"pole_angle": torch.zeros(4)}, 4))
        caller.start()
        stuck = read_until(lambda seen: seen["call_seconds"] > 0.1)  # the call under way
        assert stuck["steps"] == 3
        release.set()
        caller.join()
    assert not path.exists()  # only a smoke test killed while stepping leaves it


def test_a_smoke_test_killed_at_its_limit_says_what_was_slow() -> None:
    """The orchestrator's message from SmokeWatch's last file: one call that never returned, one
    that held the interpreter (the file stopped changing), a reward slow on every call, the
    task's environment, the start; nothing readable: killed before the first step."""
    from eureka.training.jobs import smoke_overdue

    def said(limit: float, age: float = 0.0, **seen: float) -> str:
        progress = {"steps": 10, "of": 256, "seconds": 20.0, "reward_seconds": 0.0, "call_seconds": 0.0}
        return smoke_overdue(limit, json.dumps(progress | seen), age)

    head = "the smoke test exceeded the wall-clock limit of 30 s and was killed"
    head += " after 10 of its 256 random-action steps"
    assert said(30, call_seconds=12.0) == (
        f"{head}: one call of the reward had run for 12.0 s without returning (a loop that never ends, or "
        "work that grows without bound?); the reward must return at once"
    )
    assert said(30, age=9.0, seconds=12.0).startswith(f"{head}: nothing ran for its last 9 s: one call")
    assert said(30, reward_seconds=15.0) == (
        f"{head}: the reward took 15 of its 20 s (1.5 s a call); make it cheaper: whole-batch tensor "
        "operations, no Python loops over environments"
    )
    assert said(30, reward_seconds=1.0) == (
        f"{head}: the task's environment took 19 of its 20 s (1.9 s a step), the reward 1.0 s: the "
        "environment, not the reward, is too slow for this limit (a task's environment must step in well "
        "under a second)"
    )
    assert said(120, seconds=2.0).endswith(
        "random-action steps: starting took about 118 s of it (importing, loading the reward's module, "
        "building the task's environment)"
    )
    for never in (None, "", "[1, 2]", '{"steps": "x"}', '{"steps": Infinity, "of": 1}'):
        assert smoke_overdue(120.0, never) == (
            "the smoke test exceeded the wall-clock limit of 120 s and was killed before its first step: "
            "the worker was still starting (importing, loading the reward's module, building the task's "
            "environment)"
        )
    assert (
        said(120, seconds=float("nan"))
        == "the smoke test exceeded the wall-clock limit of 120 s and was killed"
    )
