"""What a user sees of a solve run: the live table and the plain lines."""

from __future__ import annotations

import io

from rich.console import Console

from eureka.runs.display import LiveReporter, PlainReporter
from eureka.types import Progress


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=160, color_system=None), out


def test_a_slow_llm_call_is_shown_while_it_waits_and_cleared_after() -> None:
    console, out = _console()
    plain = PlainReporter(console)
    plain(Progress("wait", "waiting for openai/gpt-4o (attempt 2/3, 45 s)"))
    plain(Progress("wait", ""))  # it answered: nothing to print
    assert out.getvalue() == "waiting for openai/gpt-4o (attempt 2/3, 45 s)\n"

    live = LiveReporter(_console()[0], "openai/gpt-4o")
    live(Progress("wait", "waiting for openai/gpt-4o (attempt 1/3, 10 s)"))
    shown, text = _console()
    shown.print(live._render())
    assert "waiting for openai/gpt-4o (attempt 1/3, 10 s)" in text.getvalue()
    live(Progress("wait", ""))
    cleared, text = _console()
    cleared.print(live._render())
    assert "waiting for" not in text.getvalue()
