"""Task folders: discovery, strict loading of task.yaml, and loading of the task's own code."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import typing
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from eureka.errors import EurekaError, TaskError, did_you_mean
from eureka.types import Task, TaskSpec

TASK_FILE = "task.yaml"
HUMAN_REWARD_FILE = "human_reward.py"
TODO_MARKER = "# EUREKA-TODO:"
"""Starts a line that `eureka tasks new` leaves for the author (e.g. in human_reward.py when the
environment's reward could not be read); `tasks check` fails while one is left."""
NOTE_MARKER = "# EUREKA-NOTE:"
"""Starts a line that `eureka tasks new` leaves as advice (an environment reward term the human
reward leaves out); `tasks check` shows it as a note."""
ENTRY_POINT_GROUP = "eureka.tasks"


def bundled_tasks_dir() -> Path:
    """The tasks shipped with eureka: `tasks/` beside the package (source checkout) or inside it."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "tasks", package / "_bundled" / "tasks"):
        if candidate.is_dir():
            return candidate
    return package.parent / "tasks"


def search_path(extra: list[Path] | None = None) -> list[Path]:
    """Folders scanned for tasks, first match wins: given folders, $EUREKA_TASKS_PATH,
    ./tasks, installed packages (entry-point group `eureka.tasks`), then the bundled tasks."""
    dirs = list(extra or [])
    env = os.environ.get("EUREKA_TASKS_PATH", "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(Path.cwd() / "tasks")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dirs.append(Path(str(ep.load())))
    dirs.append(bundled_tasks_dir())
    unique: list[Path] = []
    for d in dirs:
        resolved = d.resolve()
        if resolved.is_dir() and resolved not in unique:
            unique.append(resolved)
    return unique


def discover(extra: list[Path] | None = None) -> dict[str, Path]:
    """Map of task name (folder name) to folder for every folder holding a task.yaml."""
    found: dict[str, Path] = {}
    for root in search_path(extra):
        for folder in sorted(root.iterdir()):
            if (folder / TASK_FILE).is_file() and folder.name not in found:
                found[folder.name] = folder
    return found


def resolve(name_or_path: str, extra: list[Path] | None = None) -> Path:
    """The folder of a task given by name or by path; unknown names get a suggestion."""
    as_path = Path(name_or_path)
    if (as_path / TASK_FILE).is_file():
        return as_path.resolve()
    if as_path.is_dir():
        raise TaskError(f"{as_path}: not a task folder (it has no {TASK_FILE})")
    known = discover(extra)
    if name_or_path in known:
        return known[name_or_path]
    hint = did_you_mean(name_or_path, known)
    listing = ", ".join(sorted(known)) or "none found"
    raise TaskError(f"unknown task '{name_or_path}'{hint}; known tasks: {listing}")


def _describe_errors(path: Path, error: ValidationError, model: type[BaseModel]) -> str:
    """One line per problem, naming the file and the key, with a suggestion for typos."""
    lines = []
    for err in error.errors():
        loc = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            parent = _model_at(model, err["loc"][:-1])
            fields = list(parent.model_fields) if parent else []
            hint = did_you_mean(str(err["loc"][-1]), fields)
            lines.append(f"{path}: unknown key '{loc}'{hint}")
        elif err["type"] == "missing":
            lines.append(f"{path}: missing key '{loc}'")
        else:
            lines.append(f"{path}: key '{loc}': {err['msg']}")
    return "\n".join(lines)


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at `loc` (for key suggestions)."""
    current: Any = model
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        if typing.get_origin(current) is dict:  # a mapping of names to records: skip the name
            current = typing.get_args(current)[1]
            if parts:
                parts.pop(0)
        elif typing.get_origin(current) is not None:  # Optional[...] and friends
            models = [a for a in typing.get_args(current) if isinstance(a, type) and issubclass(a, BaseModel)]
            current = models[0] if models else None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last one
    silently: a state field defined twice lost its first definition)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"key '{key}' is given twice (line {mark.line + 1}); keep one", None
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: where (line and column, counted from 1) and what, without the
    parser's `in "<unicode string>"` lines."""
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{what}" + (f" ({context})" if context else "")


def load(name_or_path: str, extra: list[Path] | None = None) -> Task:
    """Load and validate a task by name or folder path."""
    folder = resolve(name_or_path, extra)
    path = folder / TASK_FILE
    try:
        raw = yaml.load(path.read_text(), Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise TaskError(f"{path}: not valid YAML: {yaml_problem(exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:  # unreadable, or not text
        raise TaskError(f"{path}: cannot be read: {exc}") from None
    if not isinstance(raw, dict):
        raise TaskError(f"{path}: must be a mapping of keys to values, got {type(raw).__name__}")
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as exc:
        raise TaskError(_describe_errors(path, exc, TaskSpec)) from None
    if spec.name != folder.name:
        raise TaskError(f"{path}: name '{spec.name}' must match the folder name '{folder.name}'")
    if not spec.state:
        raise TaskError(f"{path}: 'state' must list at least one state field")
    for source in sorted(p for p in folder.glob("*.py") if p.is_file()):  # read as text: rewards, TODOs
        read_utf8(source, str(source), TaskError)
    return Task(spec=spec, folder=folder)


def read_utf8(path: Path, name: str, error: type[EurekaError]) -> str:
    """The text of `path`, or `error` saying that `name` is not UTF-8 or cannot be read."""
    try:
        return path.read_bytes().decode()
    except UnicodeDecodeError as exc:
        raise error(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise error(f"{name}: cannot be read: {exc.strerror or exc}") from None


def load_module(task: Task, filename: str) -> ModuleType | None:
    """Import a Python file of the task folder (state.py, fitness.py, env.py), or None."""
    path = task.file(filename)
    if path is None:
        return None
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"eureka_task_{task.name}_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise TaskError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    folder = str(task.folder)
    # `from env import GOAL` in a task file must find this folder's env.py, not another
    # task's that an earlier import left in sys.modules under the same plain name
    siblings = {p.stem for p in task.folder.glob("*.py")}
    saved = {name: sys.modules.pop(name) for name in siblings if name in sys.modules}
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise TaskError(f"{path}: importing it raised {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(folder)
        for name in siblings:
            loaded = sys.modules.get(name)
            origin = getattr(loaded, "__file__", None)
            if origin and Path(origin).resolve().parent == task.folder.resolve():
                del sys.modules[name]
        sys.modules.update(saved)
    return module


def training_path(task: Task, override: str | None = None) -> str:
    """`sb3` or `batched`: the override (unless `auto`), else the task's `training.backend`,
    where `auto` means batched when the task has a `training.batched` section."""
    choice = override if override and override != "auto" else task.spec.training.backend
    if choice == "auto":
        return "batched" if task.spec.training.batched is not None else "sb3"
    return choice


def budget(task: Task, override: str | None = None, timesteps: int | None = None) -> int:
    """The env steps one training of `task` takes: `timesteps` when given, else the budget of
    the path it trains on (`training.batched.timesteps` on the batched path, when set, else
    `training.timesteps`). The one rule the loop, the trainers, the CLI and reports share."""
    if timesteps:
        return timesteps
    training = task.spec.training
    if training_path(task, override) == "batched" and training.batched and training.batched.timesteps:
        return training.batched.timesteps
    return training.timesteps
