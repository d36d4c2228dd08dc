"""Static checks of reward code: one message per problem, written for the next prompt."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import pytest

from eureka.llm.extract import AST_LOCK
from eureka.reward import compose, parametrise
from eureka.reward.checks import check_source
from eureka.reward.contract import compile_reward

FIELDS = ["pole_angle", "cart_position"]
GOOD = "import torch\n\ndef compute_reward(pole_angle):\n    return pole_angle, {'a': pole_angle}\n"


def test_good_code_passes() -> None:
    assert check_source(GOOD, FIELDS) == []


def test_syntax_error() -> None:
    assert check_source("def compute_reward(:\n", FIELDS) == [
        "reward.py line 1: syntax error: invalid syntax"
    ]


@pytest.mark.parametrize(
    "expression", ["+".join(["pole_angle"] * 20000), "-" * 100000 + "pole_angle"], ids=["sum", "minus"]
)
def test_code_nested_past_the_parsers_limits_is_a_syntax_error_that_says_what_to_do(expression: str) -> None:
    source = f"def compute_reward(pole_angle):\n    r = {expression}\n    return r, {{'a': r}}\n"
    (problem,) = check_source(source, FIELDS)
    # where the limit is met (the parser's RecursionError or MemoryError, or the checks' own
    # recursion) depends on the Python version
    nested = r"reward\.py: .*the code nests too deeply .*: compute long expressions in steps.*"
    assert re.fullmatch(nested, problem), problem
    assert check_source("def compute_reward(pole_angle):\n    return 1\x00\n", FIELDS) == [
        "reward.py: syntax error: source code string cannot contain null bytes"
    ]


def test_missing_and_duplicate_entry() -> None:
    assert check_source("def reward(pole_angle):\n    return 1\n", FIELDS) == [
        "the code defines no top-level function `compute_reward`"
    ]
    assert check_source(GOOD + GOOD, FIELDS) == [
        "the code defines `compute_reward` 2 times; define it exactly once"
    ]


def test_unknown_parameter_lists_valid_names() -> None:
    assert check_source("def compute_reward(speed):\n    return speed, {}\n", FIELDS) == [
        "parameter `speed` of `compute_reward` is not a state field; valid names: "
        "pole_angle, cart_position, prev_pole_angle, prev_cart_position, action"
    ]


def test_varargs_are_rejected() -> None:
    assert check_source("def compute_reward(**state):\n    return 1, {}\n", FIELDS) == [
        "`compute_reward` must name its parameters; *args and **kwargs are not bound"
    ]


def test_return_shape() -> None:
    assert check_source("def compute_reward(pole_angle):\n    pole_angle\n", FIELDS) == [
        "`compute_reward` never returns; it must return (total_reward, components_dict)"
    ]
    assert check_source("def compute_reward(pole_angle):\n    return 1, 2, 3\n", FIELDS) == [
        "`compute_reward` returns 3 values; it must return (total_reward, components_dict)"
    ]


def test_imports_and_forbidden_names() -> None:
    source = (
        "import os\nfrom numpy import array\n"
        "def compute_reward(pole_angle):\n"
        "    open('/etc/passwd')\n"
        "    x = pole_angle.__class__\n"
        "    return pole_angle, {}\n"
    )
    assert check_source(source, FIELDS) == [
        "import of `os` is not allowed; only torch, math and typing may be imported",
        "import of `numpy` is not allowed; only torch, math and typing may be imported",
        "line 4: `open` is not allowed in reward code",
        "line 5: dunder attribute `__class__` is not allowed in reward code",
    ]


@pytest.mark.parametrize(
    "parse",
    [
        lambda: check_source(GOOD, FIELDS),
        lambda: compose.parse(GOOD),
        lambda: parametrise.substitute(GOOD.replace("pole_angle, {", "2.0 * pole_angle, {"), [3.0]),
        lambda: compile_reward(GOOD, "reward.py", FIELDS, path="<lock test>"),
    ],
    ids=["check_source", "compose", "parametrise", "compile_reward"],
)
def test_reward_source_is_parsed_one_thread_at_a_time(parse: Callable[[], object]) -> None:
    """CPython 3.11's AST converter keeps its recursion depth interpreter-wide: two threads
    converting at once can fail with "SystemError: AST constructor recursion depth mismatch"
    (it ended a solve whose candidates were checked in threads), so every parse takes AST_LOCK."""
    done: list[object] = []
    with AST_LOCK:  # another thread is parsing: this one waits for it
        waiting = threading.Thread(target=lambda: done.append(parse()))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and not done
    waiting.join(30)
    assert len(done) == 1


def test_an_async_compute_reward_is_named_as_such() -> None:
    assert check_source("async def compute_reward(pole_angle):\n    return pole_angle, {}\n", FIELDS) == [
        "`compute_reward` must be a plain `def`, not `async def`: it is called, not awaited"
    ]
