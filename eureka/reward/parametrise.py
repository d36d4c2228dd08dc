"""A reward as a family of rewards to search (BARFI / R*): its numeric constants (weights,
temperatures, thresholds) on a log scale around their values, plus blend weights over its named
components (log-scale multipliers) and the human reward's total, plus a peak on each cost (a
component that stayed <= 0 in training: a distance, an effort) and a bonus on the task's success
signal (BARFI's primary reward: what F measures, per step) that the search may switch on,
rendered back into ordinary reward code.

    family = Family.of(elite_code, components=("upright", "centred"), human=human_code)
    code = family.render({"c0": 0.3, "w_upright": 2.0, "w_human": 0.2})

At the family's start values `render` returns the elite's own code (constants as written). Only
source is rewritten here; the results are checked by the critic before they train.
"""

from __future__ import annotations

import ast
import builtins
import math
import random
import symtable
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from eureka.reward import checks, compose
from eureka.reward.checks import ENTRY

LOG_SPAN = 3.0
"""A constant c is searched in [c / LOG_SPAN, c * LOG_SPAN] on a log scale, and a component's
multiplier in [1 / LOG_SPAN, LOG_SPAN]. Narrow enough that most of a 30-trial budget lands near
the elite (a tenfold span put most trials far from it, where they scored worse)."""
MAX_CONSTANTS = 12
"""At most this many constants are searched (the first ones in the code); the rest stay."""
NO_TUNE_KEYWORDS = {"dim", "axis", "keepdim", "p"}
PEAK_WEIGHT = 2.0
"""A peak's weight is searched in [0, PEAK_WEIGHT] times its cost's typical size (0: no peak)."""
BONUS_WEIGHT = 2.0
"""The success bonus's weight is searched in [0, BONUS_WEIGHT] times the elite's typical reward
per step (0: no bonus): at the top, a step where the task succeeds pays three times the usual."""
SIGNAL = "success_signal"
BONUS = "success_bonus"
"""The bonus's component in a reward that has one."""
BONUS_PARAM = "bonus"
"""The bonus's weight among a family's parameters (no component's multiplier, `w_<name>`, or
constant, `c<i>`, has this name)."""
RESERVED = {"w_total", "w_human"}
"""Parameters of every family: a component named `total` or `human` gets no multiplier."""


@dataclass(frozen=True)
class Peak:
    """A cost component (<= 0 throughout training) and its sizes there, so the family can add
    `weight * exp(min(cost / width, 0))`: a bonus of at most `weight` that grows sharply as the
    cost nears 0, the shape of Eureka's and DeepMind Control's `exp(-distance / temperature)`
    terms (a linear distance pulls as hard from far as from near, and leaves the last
    centimetres unrewarded)."""

    component: str
    size: float
    """The cost's largest magnitude over the training's checkpoints (the peak's weight unit)."""
    width: float
    """The cost's magnitude at the last checkpoint (where the trained policy keeps it): the width
    the search starts from, so the peak sharpens what the policy already achieves."""

    @classmethod
    def of(cls, component: str, means: list[float | None]) -> Peak | None:
        """The peak of a component from its per-checkpoint means; None unless every finite mean
        is <= 0 and one is below 0."""
        finite = [m for m in means if m is not None and math.isfinite(m)]
        if not finite or any(m > 0 for m in finite):
            return None
        size = max(-m for m in finite)
        if size <= 0:
            return None
        width = next(-m for m in reversed(finite) if m < 0)  # one is below 0: size > 0
        return cls(component, float(f"{size:.4g}"), float(f"{max(width, size / 100):.4g}"))


@dataclass(frozen=True)
class Param:
    """One searched number."""

    name: str
    start: float
    """The value in the elite (where the search starts)."""
    low: float
    high: float
    log: bool


def _tunable(tree: ast.AST) -> list[ast.Constant]:
    """The float constants that act as weights, scales or thresholds, in source order: not 0 or ±1,
    not exponents (x ** 2), indices, or dim/axis arguments."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            skip |= {id(n) for n in ast.walk(node.right)}
        elif isinstance(node, ast.Subscript):
            skip |= {id(n) for n in ast.walk(node.slice)}
        elif isinstance(node, ast.keyword) and node.arg in NO_TUNE_KEYWORDS:
            skip |= {id(n) for n in ast.walk(node.value)}
    found = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant)
        and isinstance(n.value, float)
        and id(n) not in skip
        and n.value not in (0.0, 1.0, -1.0)
    ]
    return sorted(found, key=lambda n: (n.lineno, n.col_offset))


def substitute(code: str, values: list[float]) -> str:
    """`code` with its tunable constants (in source order) replaced by `values` (4 significant
    digits); constants past the end of `values` stay."""
    tree = checks.parse(code)
    for node, value in zip(_tunable(tree), values, strict=False):
        node.value = float(f"{value:.4g}")
    return ast.unparse(tree) + "\n"


def perturb(code: str, rng: random.Random, spread: float = 2.0) -> str | None:
    """`code` with each tunable constant scaled by a log-uniform factor in [1/spread, spread]
    (today's random search, kept as the baseline); None when there is nothing to tune."""
    try:
        constants = [n.value for n in _tunable(checks.parse(code))]
    except SyntaxError:
        return None
    if not constants:
        return None
    factors = [spread ** rng.uniform(-1.0, 1.0) for _ in constants]
    return substitute(code, [c * f for c, f in zip(constants, factors, strict=True)])


def success_reward(fitness_source: str) -> str | None:
    """The task's success signal (fitness.py's `success_signal`: 1 on a step where the task is
    achieved) as a reward in the contract, its total the signal: the definitions it uses, the
    imports they need and a `compute_reward` with its parameters. None where it cannot be taken
    out whole: fitness.py has no success signal (or two); it takes other than plain named
    parameters; a name it uses is bound twice, changed (`x += 1`) or only inside a block; a star
    import; or it needs what reward code may not use (numpy, the task's other modules)."""
    try:
        tree = ast.parse(fitness_source)
    except SyntaxError:
        return None
    bound: dict[str, list[ast.stmt]] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return None
        for name in _binds(node):
            bound.setdefault(name, []).append(node)
    signal = bound.get(SIGNAL, [None])
    if len(signal) != 1 or not isinstance(signal[0], ast.FunctionDef):
        return None
    args = signal[0].args
    if args.posonlyargs or args.kwonlyargs or args.vararg or args.kwarg or args.defaults:
        return None
    needed: list[ast.stmt] = []
    todo: list[ast.stmt] = [signal[0]]
    while todo:  # the definitions the signal uses, and theirs
        node = todo.pop()
        if node in needed:
            continue
        needed.append(node)
        for name in sorted(_free_names(node) & set(bound)):
            (only,) = bound[name] if len(bound[name]) == 1 else (None,)
            if only is None or not _plain_binding(only):
                return None
            todo.append(only)
    kept = [node for node in tree.body if node in needed]  # source order
    params = [a.arg for a in args.args]
    wrapper = "\n".join(
        [
            compose.signature(params),
            f"    signal = {compose.call(SIGNAL, params)}",
            "    return signal, {'success': signal}",
        ]
    )
    body = ast.unparse(ast.Module(body=kept, type_ignores=[]))
    header = "" if "torch" in {n for node in kept for n in _binds(node)} else "import torch\n"
    code = header + body + "\n\n\n" + wrapper + "\n"
    if _free_names(ast.parse(code)) - set(dir(builtins)):  # something it uses was left behind
        return None
    return None if checks.check_source(code, params) else code


def _binds(node: ast.stmt) -> list[str]:
    """The top-level names a statement of a module binds (anywhere in it: `if` blocks too)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    names: list[str] = []
    for inner in [node] if isinstance(node, (ast.Import, ast.ImportFrom)) else ast.walk(node):
        if isinstance(inner, (ast.Import, ast.ImportFrom)):
            names += [(a.asname or a.name).split(".")[0] for a in inner.names]
        elif isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(inner.name)
        elif isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
            names.append(inner.id)
    return names


def _plain_binding(node: ast.stmt) -> bool:
    """A statement that binds its names once and whole: an import, a def or class, `x = ...`."""
    kinds = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)
    return isinstance(node, kinds)


def _free_names(node: ast.AST) -> set[str]:
    """The module-level names a statement (or module) reads and does not bind itself: what its
    code needs from around it (a function's parameters and locals are its own)."""
    body = node.body if isinstance(node, ast.Module) else [cast(ast.stmt, node)]
    module = ast.Module(body=body, type_ignores=[])
    table = symtable.symtable(ast.unparse(module), "<fitness>", "exec")
    own = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    used = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    tables = list(table.get_children())
    while tables:  # functions, classes, comprehensions: their reads of module-level names
        inner = tables.pop()
        used |= {s.get_name() for s in inner.get_symbols() if s.is_global() and s.is_referenced()}
        tables += inner.get_children()
    return used - own


def _identifier(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _first_per_identifier(names: Sequence[str], prefix: str) -> list[int]:
    """The indices of the names whose parameter `<prefix><identifier>` is theirs alone: not a
    family's own (RESERVED), nor an earlier name's with the same identifier (`a-b` after `a_b`)."""
    out: list[int] = []
    taken = set(RESERVED)
    for i, name in enumerate(names):
        param = f"{prefix}{_identifier(name)}"
        if param not in taken:
            taken.add(param)
            out.append(i)
    return out


def _weighted(components: tuple[str, ...]) -> list[str]:
    """The components that get a multiplier `w_<name>` (`_first_per_identifier`)."""
    return [components[i] for i in _first_per_identifier(components, "w_")]


@dataclass
class Family:
    """The searched parameters of one reward and how to render a point of them."""

    code: str
    components: tuple[str, ...] = ()
    human: str | None = None
    params: list[Param] = field(default_factory=list)
    peaks: tuple[Peak, ...] = ()
    success: str | None = None
    """The task's success signal as a reward (`success_reward`), when the family may add a bonus."""
    unit: float = 1.0
    """The elite's typical reward per step (the bonus's weight unit)."""

    @classmethod
    def of(
        cls,
        code: str,
        components: tuple[str, ...] = (),
        human: str | None = None,
        peaks: tuple[Peak, ...] = (),
        success: str | None = None,
        unit: float = 1.0,
    ) -> Family:
        """The family around `code`: its constants, a multiplier per component (the blend adds
        (m - 1) x the component to the total: m = 2 counts it twice), when `human` is another
        reward a weight on the human reward's total, for each of `peaks` (costs among the
        components) a weight (0: off) and a width, and with `success` (the task's success signal
        as a reward) the weight of a bonus on it (0: off; in units of `unit`, the elite's typical
        reward per step). The total's own weight stays 1 (`w_total` renders but is not searched:
        the learners scale rewards by their running spread, so only the weights relative to the
        total matter)."""
        tree = compose.parse(code)
        params = []
        for i, node in enumerate(_tunable(tree)[:MAX_CONSTANTS]):
            value = abs(cast(float, node.value))
            params.append(Param(f"c{i}", value, value / LOG_SPAN, value * LOG_SPAN, log=True))
        for name in _weighted(components):
            params.append(Param(f"w_{_identifier(name)}", 1.0, 1.0 / LOG_SPAN, LOG_SPAN, log=True))
        if human is not None and human.strip() != code.strip():
            compose.parse(human)
            params.append(Param("w_human", 0.0, 0.0, 2.0, log=False))
        else:
            human = None
        peaks = tuple(p for p in peaks if p.component in components)
        peaks = tuple(peaks[i] for i in _first_per_identifier([p.component for p in peaks], "p_"))
        for peak in peaks:
            name, width = _identifier(peak.component), peak.width
            params.append(Param(f"p_{name}", 0.0, 0.0, PEAK_WEIGHT, log=False))
            params.append(Param(f"s_{name}", width, width / LOG_SPAN, width * LOG_SPAN, log=True))
        if success is not None and BONUS not in components:  # a bonus once, not on a bonused reward
            compose.parse(success)
            unit = abs(unit) if math.isfinite(unit) and unit else 1.0
            params.append(Param(BONUS_PARAM, 0.0, 0.0, BONUS_WEIGHT * unit, log=False))
        else:
            success, unit = None, 1.0
        return cls(code, tuple(components), human, params, peaks, success, unit)

    @property
    def start(self) -> dict[str, float]:
        return {p.name: p.start for p in self.params}

    def render(self, values: Mapping[str, float]) -> str:
        """The reward at `values` (missing names keep their start value)."""
        point = {"w_total": 1.0, **self.start, **values}
        constants = [point[p.name] for p in self.params if p.name.startswith("c") and p.name[1:].isdigit()]
        code = substitute(self.code, constants)
        weights = {n: point[f"w_{_identifier(n)}"] - 1.0 for n in _weighted(self.components)}
        w_total = point["w_total"]
        w_human = point.get("w_human", 0.0)
        peaks = {}
        for peak in self.peaks:
            name = _identifier(peak.component)
            weight, width = point[f"p_{name}"] * peak.size, point[f"s_{name}"]
            if weight > 0 and width > 0:
                peaks[peak.component] = (weight, width)
        w_success = point.get(BONUS_PARAM, 0.0) if self.success is not None else 0.0
        if w_total == 1.0 and not any(weights.values()) and not w_human and not peaks and not w_success:
            return code
        return self._blend(code, w_total, weights, w_human, peaks, w_success)

    def _blend(
        self,
        code: str,
        w_total: float,
        weights: dict[str, float],
        w_human: float,
        peaks: dict[str, tuple[float, float]],
        w_success: float = 0.0,
    ) -> str:
        imports, body = compose.prefixed(code, "_base_")
        params = compose.parameters(code)
        lists = [params]
        others = {
            "_human_": self.human if w_human else None,
            "_success_": self.success if w_success else None,
        }
        calls: dict[str, str] = {}
        for prefix, other in others.items():
            if other is not None:
                other_imports, other_body = compose.prefixed(other, prefix)
                imports += other_imports
                body += other_body
                lists.append(compose.parameters(other))
                calls[prefix] = compose.call(f"{prefix}{ENTRY}", lists[-1])
        everything = compose.union(lists)
        if not everything:
            raise compose.ComposeError("the reward takes no parameters")
        like = everything[0]
        lines = [
            compose.signature(everything),
            f"    total, components = {compose.call(f'_base_{ENTRY}', params)}",
            f"    blended = {w_total:.4g} * _as_vector(total, {like})",
        ]
        for name, weight in weights.items():
            if weight:
                lines += [
                    f"    if {name!r} in components:",
                    f"        blended = blended + {weight:.4g} * _as_vector(components[{name!r}], {like})",
                ]
        if peaks or w_success:
            lines.append("    components = dict(components)")
        for name, (weight, width) in peaks.items():
            label = name + "_peak"
            while label in self.components:
                label += "_"
            value = f"_as_vector(components[{name!r}], {like})"
            lines += [
                f"    if {name!r} in components:",
                f"        peak = {weight:.4g} * torch.exp(({value} / {width:.4g}).clamp(max=0.0))",
                f"        components[{label!r}] = peak",
                "        blended = blended + peak",
            ]
        if "_human_" in calls:
            lines += [
                f"    human_total, _ = {calls['_human_']}",
                f"    blended = blended + {w_human:.4g} * _as_vector(human_total, {like})",
            ]
        if "_success_" in calls:
            lines += [
                f"    success, _ = {calls['_success_']}",
                f"    components[{BONUS!r}] = {w_success:.4g} * _as_vector(success, {like})",
                f"    blended = blended + components[{BONUS!r}]",
            ]
        lines.append("    return blended, components")
        return compose.module(imports, body, "\n".join(lines))
