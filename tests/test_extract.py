"""Extraction of reward code from a corpus of realistic LLM replies (tests/fixtures/replies).

Each `NN_name.md` is a reply exactly as a model sent it. Next to it, `NN_name.expected.py` holds
the code that extract_code must return, or an empty `NN_name.none` says that the reply holds no
code (extract_code returns None). Files are read as bytes so that line endings stay exact.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eureka.llm.extract import extract_code

REPLIES = Path(__file__).parent / "fixtures" / "replies"

KNOWN_BAD: dict[str, str] = {}
"""Replies extract_code is known to get wrong, with why (strict xfail: fixed ones must leave)."""
"""Replies on which extract_code disagrees with its documented semantics, and why."""


def _text(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def _cases() -> list[object]:
    cases = []
    for reply in sorted(REPLIES.glob("*.md")):
        name = reply.name.removesuffix(".md")
        marks = [pytest.mark.xfail(reason=KNOWN_BAD[name], strict=True)] if name in KNOWN_BAD else []
        cases.append(pytest.param(name, id=name, marks=marks))
    return cases


@pytest.mark.parametrize("name", _cases())
def test_extracts_expected_code(name: str) -> None:
    expected = REPLIES / f"{name}.expected.py"
    none_marker = REPLIES / f"{name}.none"
    assert expected.is_file() != none_marker.is_file(), (
        f"{name}: give exactly one of {expected.name} or {none_marker.name}"
    )
    result = extract_code(_text(REPLIES / f"{name}.md"))
    if none_marker.is_file():
        assert result is None
    else:
        assert result == _text(expected)


def test_corpus_is_large_and_has_none_cases() -> None:
    replies = sorted(REPLIES.glob("*.md"))
    nones = [r for r in replies if (REPLIES / f"{r.name.removesuffix('.md')}.none").is_file()]
    assert len(replies) >= 30
    assert len(nones) >= 5


def test_every_fixture_file_belongs_to_a_reply() -> None:
    names = {r.name.removesuffix(".md") for r in REPLIES.glob("*.md")}
    for path in REPLIES.iterdir():
        stem = path.name.removesuffix(".expected.py").removesuffix(".none").removesuffix(".md")
        assert stem in names, f"{path.name} has no reply {stem}.md"
    assert set(KNOWN_BAD) <= names


def test_windows_line_endings() -> None:
    lf = (
        "Here is the reward:\n\n```python\nimport torch\n\n\n"
        "def compute_reward(pole_angle):\n    upright = torch.cos(pole_angle)\n"
        '    return upright, {"upright": upright}\n```\n\nThis rewards an upright pole.\n'
    )
    result = extract_code(lf.replace("\n", "\r\n"))
    assert result is not None
    assert result.replace("\r\n", "\n") == extract_code(lf)


def test_a_helper_nested_past_the_parser_is_kept_for_the_checks_to_name() -> None:
    """Deciding which earlier blocks the answer uses parses them; one nested too deeply for
    Python's parser is kept (the checks then say so), not a RecursionError out of extraction."""
    deep = "def h(x):\n    return " + "-" * 100_000 + "x\n"
    reply = f"```python\n{deep}```\n\n```python\ndef compute_reward(a):\n    return h(a), {{}}\n```\n"
    code = extract_code(reply)
    assert code is not None and code.startswith("def h(x):") and code.endswith("return h(a), {}\n")
