"""Parameter search as a mutation operator (R*-style): perturb the numeric constants of the
elite reward (weights, temperatures, thresholds) to make extra candidates."""

from __future__ import annotations

import ast
import math
import random


class _Perturb(ast.NodeTransformer):
    def __init__(self, rng: random.Random, spread: float) -> None:
        self.rng = rng
        self.spread = spread
        self.changed = 0
        self._skip: set[int] = set()

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        if isinstance(node.op, ast.Pow):  # exponents keep their meaning (x ** 2)
            self._skip.add(id(node.right))
        return self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        for sub in ast.walk(node.slice):  # indices, not weights
            self._skip.add(id(sub))
        return self.generic_visit(node)

    def visit_keyword(self, node: ast.keyword) -> ast.AST:
        if node.arg in {"dim", "axis", "keepdim", "p"}:
            self._skip.add(id(node.value))
        return self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if id(node) in self._skip or isinstance(value, bool) or not isinstance(value, float):
            return node
        if value == 0.0 or value in (1.0, -1.0):
            return node
        factor = math.exp(self.rng.uniform(-math.log(self.spread), math.log(self.spread)))
        self.changed += 1
        return ast.copy_location(ast.Constant(float(f"{value * factor:.4g}")), node)


def perturb(code: str, rng: random.Random, spread: float = 2.0) -> str | None:
    """`code` with each float constant (other than 0 and ±1) scaled by a log-uniform factor in
    [1/spread, spread]; None when there is nothing to tune."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    transformer = _Perturb(rng, spread)
    new_tree = ast.fix_missing_locations(transformer.visit(tree))
    if transformer.changed == 0:
        return None
    return ast.unparse(new_tree) + "\n"
