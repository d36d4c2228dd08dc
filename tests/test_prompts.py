"""Prompts are files with named placeholders; a task folder may override any of them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import REPO

from eureka import tasks
from eureka.llm import prompts
from eureka.llm.prompts import REQUIRED, PromptError


def test_every_bundled_prompt_has_its_placeholders() -> None:
    assert set(REQUIRED) == {p.stem for p in (REPO / "prompts").glob("*.txt")}
    assert prompts.validate_all() == []


def test_render_fills_values_and_requires_all_of_them() -> None:
    text = prompts.render("execution_error", error="ZeroDivisionError at line 3")
    assert text.startswith("Running the reward function above failed:\nZeroDivisionError at line 3")
    with pytest.raises(PromptError) as err:
        prompts.render("reflection", checkpoints=10)
    assert str(err.value) == "prompt 'reflection' needs a value for {statistics}"


def _task_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "cartpole"
    shutil.copytree(REPO / "tasks" / "cartpole", folder)
    (folder / "prompts").mkdir()
    return folder


def test_task_override_is_used(tmp_path: Path) -> None:
    folder = _task_copy(tmp_path)
    (folder / "prompts" / "execution_error.txt").write_text("It broke: {error}. Try again.")
    task = tasks.load(str(folder))
    assert prompts.render("execution_error", task, error="boom") == "It broke: boom. Try again."
    assert prompts.render("code_tips", task) == prompts.render("code_tips")


def test_override_missing_a_placeholder_is_an_error(tmp_path: Path) -> None:
    folder = _task_copy(tmp_path)
    path = folder / "prompts" / "reflection.txt"
    path.write_text("We trained it over {checkpoints} checkpoints. Do better.")
    task = tasks.load(str(folder))
    with pytest.raises(PromptError) as err:
        prompts.load("reflection", task)
    assert str(err.value) == f"{path}: placeholder {{statistics}} is missing from the template"
    path.write_text("{checkpoints} {statistics} {score}")
    assert prompts.validate_all(task) == [
        f"{path}: unknown placeholder {{score}}; this prompt takes {{checkpoints}}, {{statistics}}"
    ]


def test_unknown_prompt_name() -> None:
    with pytest.raises(PromptError, match="unknown prompt 'sytem'; prompts are code_tips, critic"):
        prompts.load("sytem")
