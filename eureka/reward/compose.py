"""Reward code built from other rewards (R*'s structure evolution): merge several rewards into one
module under prefixed names, and recombine their named components (crossover, drop, add).

Every function here only rewrites source (AST in, code out); nothing is executed. The results
are ordinary rewards in the contract, checked by the critic before they train. A recombined
reward's total is the sum of its chosen components: the structure is which terms it has; how
they are weighted is left to the optimiser (eureka/reward/parametrise.py).
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass

from eureka.reward import checks
from eureka.reward.checks import ENTRY

RETURN_TYPE = "tuple[torch.Tensor, dict[str, torch.Tensor]]"
VECTOR_HELPER = '''
def _as_vector(value, like):
    """`value` as a float tensor of shape [N], N being the batch of `like`."""
    value = torch.as_tensor(value, device=like.device).float()
    n = like.shape[0]
    return value.reshape(-1).expand(n) if value.numel() == 1 else value.reshape(n)
'''


@dataclass(frozen=True)
class Parent:
    """A trained reward whose components may be recombined."""

    code: str
    components: tuple[str, ...]
    """Names of the components it returns (from its training's statistics)."""


class ComposeError(ValueError):
    """The source cannot be rewritten (a syntax error, no compute_reward)."""


def entry(tree: ast.Module) -> ast.FunctionDef:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == ENTRY:
            return node
    raise ComposeError(f"no function {ENTRY}")


def parse(code: str) -> ast.Module:
    try:
        tree = checks.parse(code)
    except SyntaxError as exc:
        raise ComposeError(f"syntax error: {exc.msg}") from None
    entry(tree)
    return tree


def parameters(code: str) -> list[str]:
    """The parameter names of a reward's compute_reward, in order."""
    return [a.arg for a in entry(parse(code)).args.args]


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in self.names:
            return ast.copy_location(ast.Name(self.names[node.id], node.ctx), node)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.name = self.names.get(node.name, node.name)
        return self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.name = self.names.get(node.name, node.name)
        return self.generic_visit(node)


def prefixed(code: str, prefix: str) -> tuple[list[ast.stmt], list[ast.stmt]]:
    """(imports, other statements) of `code` with every top-level name renamed `<prefix><name>`,
    so several rewards can live in one module; `compute_reward` becomes `<prefix>compute_reward`.
    A local name that shadows a top-level one is renamed too, which keeps the code equivalent."""
    tree = parse(code)
    names = {n: f"{prefix}{n}" for n in _top_level_names(tree)}
    tree = _Rename(names).visit(tree)
    imports: list[ast.stmt] = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
    rest: list[ast.stmt] = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
    return imports, rest


def module(imports: list[ast.stmt], body: list[ast.stmt], wrapper: str) -> str:
    """One module: the imports (deduplicated, `import torch` always), the merged bodies, the
    vector helper and the new compute_reward."""
    seen = {"import torch"}
    lines = ["import torch"]
    for stmt in imports:
        text = ast.unparse(stmt)
        if text not in seen:
            seen.add(text)
            lines.append(text)
    merged = ast.unparse(ast.Module(body=body, type_ignores=[]))
    return "\n".join(lines) + "\n\n" + merged + "\n\n" + VECTOR_HELPER + "\n" + wrapper.strip() + "\n"


def signature(params: list[str]) -> str:
    args = ", ".join(f"{p}: torch.Tensor" for p in params)
    return f"def {ENTRY}({args}) -> {RETURN_TYPE}:"


def call(function: str, params: list[str]) -> str:
    return f"{function}(" + ", ".join(f"{p}={p}" for p in params) + ")"


def union(lists: list[list[str]]) -> list[str]:
    out: list[str] = []
    for names in lists:
        out += [n for n in names if n not in out]
    return out


def recombine(parents: list[Parent], picks: list[tuple[int, str]]) -> str:
    """A reward whose components are `picks` (parent index, component name), its total their sum."""
    if not picks:
        raise ComposeError("a recombined reward needs at least one component")
    used = sorted({i for i, _ in picks})
    imports: list[ast.stmt] = []
    body: list[ast.stmt] = []
    params: dict[int, list[str]] = {}
    for i in used:
        imp, rest = prefixed(parents[i].code, f"_p{i}_")
        imports += imp
        body += rest
        params[i] = parameters(parents[i].code)
    everything = union([params[i] for i in used])
    if not everything:
        raise ComposeError("the parents take no parameters")
    lines = [signature(everything)]
    for i in used:
        lines.append(f"    _, parts_{i} = " + call(f"_p{i}_{ENTRY}", params[i]))
    names: list[str] = []
    entries = []
    for i, name in picks:
        label = name if name not in names else f"{name}_{i}"
        names.append(label)
        entries.append(f"        {label!r}: _as_vector(parts_{i}[{name!r}], {everything[0]}),")
    lines += ["    components = {", *entries, "    }"]
    lines += ["    total = sum(components.values())", "    return total, components"]
    return module(imports, body, "\n".join(lines))


# ---------------------------------------------------------------- the operators


def crossover(a: Parent, b: Parent, rng: random.Random) -> str | None:
    """Components drawn from both parents: each of a's kept with probability 1/2, each of b's
    taken with probability 1/2, at least one from each; None when either has no components."""
    if not a.components or not b.components:
        return None
    keep = [n for n in a.components if rng.random() < 0.5] or [rng.choice(a.components)]
    take = [n for n in b.components if rng.random() < 0.5] or [rng.choice(b.components)]
    return recombine([a, b], [(0, n) for n in keep] + [(1, n) for n in take])


def drop(a: Parent, rng: random.Random) -> str | None:
    """The parent without one of its components; None when it has fewer than two."""
    if len(a.components) < 2:
        return None
    gone = rng.choice(a.components)
    return recombine([a], [(0, n) for n in a.components if n != gone])


def add(a: Parent, b: Parent, rng: random.Random) -> str | None:
    """The parent's components plus one of another reward's (one it does not have by name)."""
    new = [n for n in b.components if n not in a.components]
    if not a.components or not new:
        return None
    return recombine([a, b], [(0, n) for n in a.components] + [(1, rng.choice(new))])


OPERATORS = ("crossover", "drop", "add")


def propose(parents: list[Parent], count: int, rng: random.Random) -> list[tuple[str, str]]:
    """Up to `count` distinct (operator, code) proposals from the parents (the first is the elite),
    cycling through the operators; fewer when the parents offer no more."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < count and tries < 20 * max(1, count):
        op = OPERATORS[tries % len(OPERATORS)]
        tries += 1
        elite, others = parents[0], parents[1:]
        other = rng.choice(others) if others else None
        code: str | None
        if op == "drop":
            code = drop(elite, rng)
        elif other is None:
            continue
        elif op == "crossover":
            code = crossover(elite, other, rng)
        else:
            code = add(elite, other, rng)
        if code is not None and code not in seen:
            seen.add(code)
            out.append((op, code))
    return out
