"""Errors meant for the user: the CLI turns each into one line and an exit code."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class EurekaError(Exception):
    """Base class: a problem the user can fix; the message says how."""

    exit_code = 2


class TaskError(EurekaError):
    """A task folder is missing or malformed."""


class ConfigError(EurekaError):
    """A command-line option or config file is invalid."""


class RewardFileError(EurekaError):
    """A reward file given on the command line cannot be read."""


class RunFileError(EurekaError):
    """A file of a run directory does not hold what the run wrote there."""


class Interrupted(EurekaError):
    """The user stopped the run (Ctrl-C): work in flight is abandoned, nothing of it saved."""

    exit_code = 130


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
