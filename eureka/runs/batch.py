"""Batch runs for CI: `eureka solve` on many tasks, then results.json, a JUnit XML file and a
markdown table for a job summary. A failing task never stops the others.

Exit code: 0 when every task passed, 1 when a task missed its `min_hns`, 2 when a task's run
failed or could not start (errors win over missed thresholds)."""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree as ET

import yaml
from pydantic import BaseModel, Field, ValidationError

from eureka import tasks
from eureka.errors import ConfigError, EurekaError
from eureka.runs.display import wall_text
from eureka.runs.report import read_run, summary_json
from eureka.types import Strict

RESULTS_FILE = "results.json"
JUNIT_FILE = "junit.xml"
MARKDOWN_FILE = "summary.md"


class SuiteEntry(Strict):
    """One task of a suite, with the solve options that differ from the suite's defaults."""

    task: str
    min_hns: float | None = None
    """The task passes when its human-normalised score reaches this (None: when its run is ok)."""
    options: dict[str, Any] = Field(default_factory=dict)
    """SolveConfig fields for this task (model, iterations, samples, timesteps, ...)."""


class Suite(Strict):
    """suite.yaml: defaults for every task, then the tasks."""

    defaults: dict[str, Any] = Field(default_factory=dict)
    min_hns: float | None = None
    tasks: list[SuiteEntry | str]


class TaskResult(BaseModel):
    """One task's line in results.json."""

    task: str
    outcome: Literal["passed", "failed", "error"]
    message: str = ""
    min_hns: float | None = None
    run_dir: str | None = None
    status: str | None = None
    best_fitness: float | None = None
    best_final_fitness: float | None = None
    human_fitness: float | None = None
    sparse_fitness: float | None = None
    hns: float | None = None
    success_rate: float | None = None
    iterations: int = 0
    tokens: int = 0
    cost: float = 0.0
    wall_time: float = 0.0
    env_steps: int = 0
    parts: int = 1
    """1 + how often the task's run was resumed; the usage numbers are totals over its parts."""
    wall_time_part: float = 0.0


class BatchResult(BaseModel):
    tasks: list[TaskResult]
    wall_time: float

    @property
    def exit_code(self) -> int:
        outcomes = {t.outcome for t in self.tasks}
        return 2 if "error" in outcomes else 1 if "failed" in outcomes else 0


def load_suite(path: Path) -> Suite:
    try:
        return Suite.model_validate(yaml.safe_load(path.read_text()) or {})
    except OSError as exc:
        raise ConfigError(f"suite file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"suite file {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"suite file {path}: not valid YAML: {tasks.yaml_problem(exc)}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None


def entries(names: list[str], suite: Suite | None, min_hns: float | None) -> list[SuiteEntry]:
    """The tasks to run: named on the command line and/or from the suite, in that order."""
    out: list[SuiteEntry] = []
    if suite is not None:
        for item in suite.tasks:
            entry = SuiteEntry(task=item) if isinstance(item, str) else item
            options = {**suite.defaults, **entry.options}
            threshold = entry.min_hns if entry.min_hns is not None else suite.min_hns
            out.append(entry.model_copy(update={"options": options, "min_hns": threshold}))
    out += [SuiteEntry(task=n) for n in names]
    if min_hns is not None:  # the command line wins
        out = [e.model_copy(update={"min_hns": min_hns}) for e in out]
    if not out:
        raise ConfigError("give task names, or --suite suite.yaml")
    seen: dict[tuple[str, str], str] = {}
    for entry in out:  # the same task with the same options would train the same runs again
        key = (_identity(entry.task), json.dumps(entry.options, sort_keys=True, default=str))
        if key in seen:
            raise ConfigError(
                f"task {entry.task} is listed twice with the same options (as {seen[key]} before): "
                "list it once, or give the other a different seed in the suite's options"
            )
        seen[key] = entry.task
    return out


def _identity(task: str) -> str:
    """The task's folder where it resolves (a name and a path to the same folder are one task)."""
    try:
        return str(tasks.resolve(task).resolve())
    except EurekaError:
        return task


Solve = Callable[[SuiteEntry], Path]
"""Runs one task's solve and returns its run directory (raises on a user error)."""


def judge(entry: SuiteEntry, run_dir: Path | None, error: str | None) -> TaskResult:
    """passed / failed / error for one task from its run directory."""
    if error is not None or run_dir is None:
        return TaskResult(task=entry.task, outcome="error", message=error or "no run", min_hns=entry.min_hns)
    info = read_run(run_dir)
    if info is None:
        return TaskResult(
            task=entry.task, outcome="error", message=f"{run_dir} has no summary", min_hns=entry.min_hns
        )
    numbers = summary_json(info)
    for key in ("task", "message"):
        numbers.pop(key)
    status = info.summary.status
    if status != "ok":
        outcome, message = "error", f"the run ended {status}: {info.summary.message}"
    elif entry.min_hns is None:
        outcome, message = "passed", info.summary.message
    elif info.hns is None:
        outcome, message = "failed", f"human-normalised score undefined; needs ≥ {entry.min_hns:g}"
    elif info.hns >= entry.min_hns:
        outcome, message = "passed", f"human-normalised score {info.hns:.3f} ≥ {entry.min_hns:g}"
    else:
        outcome, message = "failed", f"human-normalised score {info.hns:.3f} < {entry.min_hns:g}"
    return TaskResult(task=entry.task, outcome=outcome, message=message, min_hns=entry.min_hns, **numbers)


def attempt(entry: SuiteEntry, solve: Solve) -> tuple[Path | None, str | None]:
    """Run one task's solve: its run directory, or the one-line error that stopped it. A task's
    crash never reaches the caller, so one failing task never stops the others."""
    try:
        tasks.load(entry.task)
        return solve(entry), None
    except EurekaError as exc:
        return None, str(exc).splitlines()[0]
    except Exception as exc:
        traceback.print_exc()
        return None, f"{type(exc).__name__}: {exc}"


def run_batch(
    todo: list[SuiteEntry], solve: Solve, out_dir: Path, on_done: Callable[[TaskResult], None] | None = None
) -> BatchResult:
    """Solve every task in turn, write results.json, junit.xml and summary.md into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    results: list[TaskResult] = []
    for entry in todo:
        run_dir, error = attempt(entry, solve)
        result = judge(entry, run_dir, error)
        results.append(result)
        if on_done is not None:
            on_done(result)
        write_outputs(BatchResult(tasks=results, wall_time=time.monotonic() - start), out_dir)
    batch = BatchResult(tasks=results, wall_time=time.monotonic() - start)
    write_outputs(batch, out_dir)
    return batch


def write_outputs(batch: BatchResult, out_dir: Path) -> None:
    (out_dir / RESULTS_FILE).write_text(
        json.dumps(
            {
                "exit_code": batch.exit_code,
                "wall_time": batch.wall_time,
                "tasks": [t.model_dump() for t in batch.tasks],
            },
            indent=2,
        )
    )
    (out_dir / JUNIT_FILE).write_text(junit_xml(batch))
    (out_dir / MARKDOWN_FILE).write_text(markdown(batch))


def junit_xml(batch: BatchResult) -> str:
    """One test suite, one test case per task: a failure below min_hns, an error when the run failed."""
    failures = sum(t.outcome == "failed" for t in batch.tasks)
    errors = sum(t.outcome == "error" for t in batch.tasks)
    suite = ET.Element(
        "testsuite",
        name="eureka",
        tests=str(len(batch.tasks)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        time=f"{batch.wall_time:.3f}",
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    for t in batch.tasks:
        case = ET.SubElement(
            suite, "testcase", classname="eureka.solve", name=t.task, time=f"{t.wall_time:.3f}"
        )
        if t.outcome == "failed":
            ET.SubElement(case, "failure", message=t.message, type="threshold").text = t.message
        elif t.outcome == "error":
            ET.SubElement(case, "error", message=t.message, type="run").text = t.message
        out = f"run_dir={t.run_dir} best_F={t.best_fitness} hns={t.hns} cost={t.cost:.4f} tokens={t.tokens}"
        ET.SubElement(case, "system-out").text = out
    root = ET.Element("testsuites", tests=str(len(batch.tasks)), failures=str(failures), errors=str(errors))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _cell(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def markdown(batch: BatchResult) -> str:
    """A table for a CI job summary (e.g. $GITHUB_STEP_SUMMARY)."""
    marks = {"passed": "✅ passed", "failed": "❌ failed", "error": "💥 error"}
    lines = [
        "| task | result | best F | human F | sparse F | HNS | success | iterations | tokens | cost | wall |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in batch.tasks:
        success = "–" if t.success_rate is None else f"{t.success_rate:.0%}"
        lines.append(
            f"| {t.task} | {marks[t.outcome]} | {_cell(t.best_fitness)} | {_cell(t.human_fitness)} | "
            f"{_cell(t.sparse_fitness)} | {_cell(t.hns, 3)} | {success} | {t.iterations} | {t.tokens:,} | "
            f"${t.cost:.4f} | {wall_text(t.wall_time, t.wall_time_part, t.parts)} |"
        )
    notes = [f"- **{t.task}**: {t.message}" for t in batch.tasks if t.outcome != "passed"]
    return "\n".join(["## eureka batch", "", *lines, "", *notes, ""])


def solve_config(entry: SuiteEntry, overrides: dict[str, Any], default_model: str) -> Any:
    """The SolveConfig of one task: suite defaults and task options, then the command line's
    flags; `{task}` in the model string becomes the task's name. With no model anywhere (and no
    key: `default_model` is the embedded one) or with model none, the offline defaults apply as
    in `eureka solve` (human init, the optimiser, structure operators), under what was set."""
    from eureka.training.optimise import check_human_init, offline_defaults
    from eureka.types import SolveConfig

    fields = {**entry.options, **{k: v for k, v in overrides.items() if v is not None}}
    given = set(fields)
    model = str(fields.pop("model", None) or default_model).replace("{task}", entry.task)
    if fields.get("feedback") in ("critique", "rank"):
        raise ConfigError(f"{entry.task}: a batch cannot ask a human; use feedback auto or synthetic")
    try:
        config = SolveConfig(task=str(tasks.load(entry.task).folder), model=model, **fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(
            f"{entry.task}: option {'.'.join(str(x) for x in first['loc'])}: {first['msg']}"
        ) from None
    config = offline_defaults(config, given)
    try:
        check_human_init(config)
    except ConfigError as exc:
        raise ConfigError(f"{entry.task}: {exc}") from None
    return config
