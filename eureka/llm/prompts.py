"""Prompts as files with named placeholders (prompts/*.txt), overridable per task.

Each prompt declares the placeholders it must contain; a template that lacks one, or names
one that is not supplied, is an error naming the file and the placeholder.
"""

from __future__ import annotations

import string
from pathlib import Path

from eureka.errors import EurekaError
from eureka.types import Task

REQUIRED: dict[str, set[str]] = {
    "system": {"signature_example"},
    "task": {"context"},
    "code_tips": set(),
    "reflection": {"checkpoints", "statistics"},
    "execution_error": {"error"},
    "critic": {"context", "code"},
    "trajectory": {"summary"},
    "human_critique": {"critique", "statistics"},
    "preference": {"good_code", "bad_code", "comments"},
}
"""Every prompt and the placeholders its template must use."""


class PromptError(EurekaError):
    """A prompt template is missing or uses the wrong placeholders."""


def bundled_prompts_dir() -> Path:
    package = Path(__file__).resolve().parent.parent  # eureka/
    for candidate in (package.parent / "prompts", package / "_bundled" / "prompts"):
        if candidate.is_dir():
            return candidate
    return package.parent / "prompts"


def template_path(name: str, task: Task | None = None) -> Path:
    """The task's override `tasks/<name>/prompts/<prompt>.txt` if present, else the bundled one."""
    if name not in REQUIRED:
        raise PromptError(f"unknown prompt '{name}'; prompts are {', '.join(sorted(REQUIRED))}")
    if task is not None:
        override = task.folder / "prompts" / f"{name}.txt"
        if override.is_file():
            return override
    return bundled_prompts_dir() / f"{name}.txt"


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def load(name: str, task: Task | None = None) -> str:
    """A prompt template, checked against the placeholders it must use."""
    path = template_path(name, task)
    if not path.is_file():
        raise PromptError(f"prompt file {path} is missing")
    text = path.read_text()
    try:
        used = placeholders(text)
    except ValueError as exc:
        raise PromptError(f"{path}: {exc} (write literal braces as {{{{ and }}}})") from None
    missing = REQUIRED[name] - used
    unknown = used - REQUIRED[name]
    if missing:
        raise PromptError(f"{path}: placeholder {{{sorted(missing)[0]}}} is missing from the template")
    if unknown:
        raise PromptError(
            f"{path}: unknown placeholder {{{sorted(unknown)[0]}}}; "
            f"this prompt takes {', '.join('{' + p + '}' for p in sorted(REQUIRED[name])) or 'none'}"
        )
    return text


def render(name: str, task: Task | None = None, **values: object) -> str:
    """Fill a prompt's placeholders; every required value must be given."""
    text = load(name, task)
    absent = REQUIRED[name] - set(values)
    if absent:
        raise PromptError(f"prompt '{name}' needs a value for {{{sorted(absent)[0]}}}")
    return text.format(**{k: v for k, v in values.items() if k in REQUIRED[name]}).strip()


def validate_all(task: Task | None = None) -> list[str]:
    """Problems with every prompt a task would use (for `tasks check`)."""
    problems = []
    for name in REQUIRED:
        try:
            load(name, task)
        except PromptError as exc:
            problems.append(str(exc))
    return problems
