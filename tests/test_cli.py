"""The task commands through typer's runner, as a user runs them; the options of solve and
batch against SolveConfig."""

from __future__ import annotations

import runpy
import shutil
import sys
from pathlib import Path

import pytest
import typer
from conftest import REPO
from typer.testing import CliRunner

from eureka import tasks
from eureka.cli import app, worker_count
from eureka.llm.context import environment_context
from eureka.types import SolveConfig

runner = CliRunner()


def test_tasks_list_shows_every_task_with_budget_and_threshold() -> None:
    result = runner.invoke(app, ["tasks", "list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in ("cartpole", "pendulum", "reacher", "point_mass", "half_cheetah_backward"):
        assert name in result.output
    assert "CartPole-v1" in result.output and "100,000" in result.output and "475" in result.output


def test_tasks_show_prints_exactly_the_context() -> None:
    result = runner.invoke(app, ["tasks", "show", "cartpole"])
    assert result.exit_code == 0
    assert result.stdout == environment_context(tasks.load("cartpole")) + "\n"
    assert "    pole_angle: torch.Tensor  # [N] (rad) Angle of the pole from vertical" in result.stdout
    assert "prev_<field>" in result.stdout
    assert "Task score: steps the pole stayed balanced" in result.stdout


def test_context_shows_shapes_of_vector_fields() -> None:
    text = environment_context(tasks.load("reacher"))
    assert "    target_position: torch.Tensor  # [N, 2] (m) x, y of the target" in text
    assert "a float tensor [N, 2]: torques at the shoulder and the elbow" in text


def test_unknown_task_is_one_line_with_suggestion() -> None:
    result = runner.invoke(app, ["tasks", "show", "pendulm"])
    assert result.exit_code == 2
    assert result.output.startswith("error: unknown task 'pendulm' (did you mean 'pendulum'?)")
    assert "Traceback" not in result.output


def test_tasks_check_reports_ok_and_failures(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ok = runner.invoke(app, ["tasks", "check", "cartpole", "point_mass"])
    assert ok.exit_code == 0, ok.output
    assert "ok cartpole" in ok.output and "ok point_mass" in ok.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "task.yaml").write_text("name: broken\n")
    bad = runner.invoke(app, ["tasks", "check", str(broken)])
    assert bad.exit_code == 1
    assert "FAILED" in bad.output and "missing key 'description'" in bad.output


def test_solve_and_batch_options_take_their_defaults_and_help_from_solve_config() -> None:
    fields = SolveConfig.model_fields
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    for command in ("solve", "batch"):
        for param in commands[command].params:
            if param.name not in fields or param.name in ("task", "model"):
                continue
            field = fields[param.name]
            assert param.default is None, f"{command} --{param.name} has a default of its own"
            assert param.help == " ".join((field.description or "").split()), param.name
            assert param.show_default == ("auto" if field.default_factory else str(field.default)), param.name
    assert set(fields) <= {p.name for p in commands["solve"].params}  # every field is an option of solve
    assert worker_count("auto") == SolveConfig(task="cartpole", model="m").workers
    shown = runner.invoke(app, ["solve", "--help"])
    assert shown.exit_code == 0 and "Rounds of evolution" in shown.output


def test_python_dash_m_eureka_runs_the_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["eureka", "--help"])
    with pytest.raises(SystemExit) as done:
        runpy.run_module("eureka", run_name="__main__")
    assert done.value.code == 0
    assert "solve" in capsys.readouterr().out


def test_run_directories_made_in_the_same_second_are_distinct(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Several `eureka train` of one task started together (bench/seeds.py, a CI matrix) each get
    their own folder: the name is taken by an atomic mkdir, not checked first."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from eureka.runs.rundir import new_run_dir

    start = threading.Barrier(16)

    def one(_: int) -> str:
        start.wait()
        return str(new_run_dir("cartpole", tmp_path, label="train"))

    with ThreadPoolExecutor(16) as pool:
        made = list(pool.map(one, range(16)))
    assert len(set(made)) == 16
    names = sorted(Path(p).name for p in made)
    assert sorted(p.name for p in (tmp_path / "cartpole").iterdir()) == names


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--timesteps", "0", "--timesteps: Input should be greater than 0"),
        ("--timesteps", "-5", "--timesteps: Input should be greater than 0"),
        ("--seed", "-3", "--seed: Input should be greater than or equal to 0"),
        ("--max-cost", "-1", "--max-cost: Input should be greater than 0"),
        ("--max-tokens", "0", "--max-tokens: Input should be greater than 0"),
        ("--temperature", "-1", "--temperature: Input should be greater than or equal to 0"),
        ("--threads", "0", "--threads: Input should be greater than or equal to 1"),
    ],
)
def test_an_option_out_of_range_is_refused_before_a_run_starts(
    option: str, value: str, message: str, tmp_path: Path
) -> None:
    """Not a budget of 0 read as the task's default, a negative budget trained, or a negative
    seed that fails every training."""
    runs = ["--runs-dir", str(tmp_path / "runs"), "--no-video"]
    solve = runner.invoke(app, ["solve", "cartpole", "--model", "none", option, value, *runs])
    assert solve.exit_code == 2 and solve.output.strip() == f"error: {message}"
    if option in ("--timesteps", "--seed"):
        train = runner.invoke(app, ["train", "cartpole", option, value, *runs])
        assert train.exit_code == 2 and train.output.strip() == f"error: {message}"
    assert not (tmp_path / "runs").exists()


def test_everyday_mistakes_are_one_line(tmp_path: Path) -> None:
    """A file given as --runs-dir, an env.py without its class, a path that looks like an emoji
    code (`:x:` became ❌), a runs directory holding a damaged run (it hid the whole list)."""
    a_file = tmp_path / "file.txt"
    a_file.write_text("")
    result = runner.invoke(app, ["train", "cartpole", "--timesteps", "1000", "--runs-dir", str(a_file)])
    assert result.exit_code == 2
    assert " ".join(result.output.split()) == (
        f"error: cannot make run directories under {a_file / 'cartpole'}: a part of that path is a file"
    )
    env_py = tmp_path / "env.py"
    env_py.write_text("")
    result = runner.invoke(app, ["tasks", "new", "x", "--env", str(env_py), "--dir", str(tmp_path)])
    assert (
        " ".join(result.output.split())
        == f"error: --env {env_py}: name the class in it too, as {env_py}:ClassName"
    )
    missing = tmp_path / "missing.py"
    result = runner.invoke(app, ["tasks", "new", "x", "--env", f"{missing}:X", "--dir", str(tmp_path)])
    assert " ".join(result.output.split()) == f"error: --env {missing}:X: {missing} is not a file"
    # train's own limits: a negative timeout was "exceeded" at once, 0 threads trained
    for option, value, said in (
        ("--timeout", "-5", "--timeout -5: give a wall-clock limit in seconds > 0 (or none: the task's)"),
        ("--timeout", "0", "--timeout 0: give a wall-clock limit in seconds > 0 (or none: the task's)"),
        ("--threads", "0", "--threads 0: give at least 1 (or none: all cores)"),
    ):
        result = runner.invoke(app, ["train", "cartpole", option, value, "--runs-dir", str(tmp_path / "t")])
        assert result.exit_code == 2 and " ".join(result.output.split()) == f"error: {said}"
    # a syntax error in the task's human reward names that file, not the run's copy (reward.py)
    folder = tmp_path / "hs"
    shutil.copytree(REPO / "tasks" / "cartpole", folder)
    (folder / "task.yaml").write_text(
        (folder / "task.yaml").read_text().replace("name: cartpole", "name: hs")
    )
    human = folder / "human_reward.py"
    lines = len(human.read_text().splitlines())
    human.write_text(human.read_text() + "def broken(:\n")
    result = runner.invoke(app, ["train", str(folder), "--runs-dir", str(tmp_path / "t")])
    assert result.exit_code == 2 and " ".join(result.output.split()) == (
        f"error: {human} line {lines + 1}: syntax error: invalid syntax "
        f"(eureka tasks check {folder} checks it)"
    )
    assert not (tmp_path / "t").exists()
    damaged = tmp_path / "runs" / "cartpole" / "20260101-000000"
    damaged.mkdir(parents=True)
    (damaged / "summary.json").write_text("{")
    listed = runner.invoke(app, ["runs", "list", "--runs-dir", str(tmp_path / "runs")])
    assert listed.exit_code == 0 and "Traceback" not in listed.output
    assert (  # not dropped without a word
        "note: left out 1 run(s) whose summary.json cannot be read: cartpole/20260101-000000 (eureka runs "
        "show DIR says why)"
    ) in " ".join(listed.output.split())
    shown = runner.invoke(app, ["runs", "show", str(damaged)])
    assert shown.exit_code == 2 and " ".join(shown.output.split()).startswith(
        f"error: {damaged / 'summary.json'}: damaged (Invalid JSON: EOF while parsing an object"
    )
