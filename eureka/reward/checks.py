"""Static checks of reward code (no execution): each a small named check whose message is
written to be shown to the LLM in the next prompt. The first, cheap layer in front of the
sandbox, not the security boundary."""

from __future__ import annotations

import ast
from collections.abc import Callable

from eureka.llm.extract import parse

ENTRY = "compute_reward"
"""The function a reward defines (the reward contract; eureka/reward/contract.py runs it)."""


def valid_parameters(fields: list[str]) -> list[str]:
    """Every parameter name a reward may take: the state fields, `prev_<field>`, `action`."""
    return [*fields, *(f"prev_{f}" for f in fields), "action"]


ALLOWED_IMPORTS = {"torch", "math", "typing"}
FORBIDDEN_NAMES = {
    "exec",
    "eval",
    "compile",
    "open",
    "__import__",
    "globals",
    "locals",
    "vars",
    "getattr",
    "setattr",
    "delattr",
    "breakpoint",
    "input",
    "os",
    "sys",
    "subprocess",
    "socket",
    "builtins",
    "importlib",
    "shutil",
    "pathlib",
}

Check = Callable[[ast.Module, list[str]], list[str]]
RETURN_HINT = "it must return (total_reward, components_dict)"


def _entry_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    return [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == ENTRY]


def _check_single_entry(tree: ast.Module, fields: list[str]) -> list[str]:
    found = _entry_functions(tree)
    if not found and any(isinstance(n, ast.AsyncFunctionDef) and n.name == ENTRY for n in tree.body):
        return [f"`{ENTRY}` must be a plain `def`, not `async def`: it is called, not awaited"]
    if not found:
        return [f"the code defines no top-level function `{ENTRY}`"]
    if len(found) > 1:
        return [f"the code defines `{ENTRY}` {len(found)} times; define it exactly once"]
    return []


def _check_parameters(tree: ast.Module, fields: list[str]) -> list[str]:
    valid = valid_parameters(fields)
    problems = []
    for fn in _entry_functions(tree)[:1]:
        args = fn.args
        if args.vararg or args.kwarg:
            problems.append(f"`{ENTRY}` must name its parameters; *args and **kwargs are not bound")
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
            if arg.arg not in valid:
                problems.append(
                    f"parameter `{arg.arg}` of `{ENTRY}` is not a state field; "
                    f"valid names: {', '.join(valid)}"
                )
    return problems


def _check_returns(tree: ast.Module, fields: list[str]) -> list[str]:
    for fn in _entry_functions(tree)[:1]:
        returns = [n for n in ast.walk(fn) if isinstance(n, ast.Return)]
        if not returns:
            return [f"`{ENTRY}` never returns; {RETURN_HINT}"]
        for ret in returns:
            if isinstance(ret.value, ast.Tuple) and len(ret.value.elts) != 2:
                return [f"`{ENTRY}` returns {len(ret.value.elts)} values; {RETURN_HINT}"]
    return []


def _check_imports(tree: ast.Module, fields: list[str]) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or "."]
        for name in names:
            if name.split(".")[0] not in ALLOWED_IMPORTS:
                problems.append(
                    f"import of `{name}` is not allowed; only torch, math and typing may be imported"
                )
    return problems


def _check_forbidden_names(tree: ast.Module, fields: list[str]) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            problems.append(f"line {node.lineno}: `{node.id}` is not allowed in reward code")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr.endswith("__"):
            problems.append(
                f"line {node.lineno}: dunder attribute `{node.attr}` is not allowed in reward code"
            )
    return sorted(set(problems))


CHECKS: list[Check] = [
    _check_single_entry,
    _check_parameters,
    _check_returns,
    _check_imports,
    _check_forbidden_names,
]


def check_source(source: str, fields: list[str], filename: str = "reward.py") -> list[str]:
    """Every problem the static checks find in reward source; empty when it passes."""
    try:
        tree = parse(source, filename=filename)
    except SyntaxError as exc:
        where = filename if exc.lineno is None else f"{filename} line {exc.lineno}"
        return [f"{where}: syntax error: {exc.msg}"]
    problems: list[str] = []
    try:
        for check in CHECKS:
            problems += check(tree, fields)
    except RecursionError:
        return [f"{filename}: the code nests too deeply to check: compute long expressions in steps"]
    return problems
