"""Reward functions in the reward contract: compile, bind parameters by name, call, validate.

This module executes reward code, so it is only used inside the sandbox worker (and for the
task's own trusted code). The static checks that need no execution live in eureka/reward/checks.py.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import math
import time
import traceback
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

from eureka.llm.extract import AST_LOCK
from eureka.reward import checks
from eureka.reward.checks import ENTRY, valid_parameters
from eureka.types import Status


class Stop(BaseException):
    """Raised by eureka itself into running reward code (a job's time is up): passed on, never
    taken for the reward's own raise. Not an Exception, so the reward's `except Exception` does
    not stop it either."""


class RewardError(Exception):
    """A reward broke its contract; `status` says how the candidate ends."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _named(exc: BaseException) -> str:
    """`KeyError: 'x'`, or the type alone when the exception says nothing (`KeyboardInterrupt`)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _user_frame(exc: BaseException, filename: str, path: str) -> str:
    """` (reward.py line 7: x = a / b)` for the innermost frame in the reward's own file (compiled
    as `path`, its lines in linecache under that name: several rewards named reward.py may live
    in one process, in a group)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    if not frames:
        return ""
    frame = frames[-1]
    line = (frame.line or "").strip()
    return f" ({filename} line {frame.lineno}: {line})" if line else f" ({filename} line {frame.lineno})"


def _torch_defaults() -> tuple[torch.dtype, torch.device]:
    return torch.get_default_dtype(), torch.get_default_device()


def _restore_defaults(saved: tuple[torch.dtype, torch.device], where: str) -> None:
    """Put back torch's default dtype and device where the reward's code changed them (the
    policy, the environments and eureka's own tensors are made under them: a float64 default
    made the policy's layers float64 and training crashed on 'mat1 and mat2 must have the same
    dtype'), saying so once in the log."""
    dtype, device = _torch_defaults()
    if (dtype, device) == saved:
        return
    torch.set_default_dtype(saved[0])
    torch.set_default_device(saved[1])
    changed = f"dtype to {dtype}" if dtype != saved[0] else f"device to {device}"
    print(
        f"note: {where} set torch's default {changed}; eureka put it back (the policy and the "
        "environments keep theirs): convert inside compute_reward instead",
        flush=True,
    )


class RewardFunction:
    """A `compute_reward` (or other contract function) whose parameters are bound by name."""

    def __init__(
        self,
        fn: Callable[..., Any],
        filename: str,
        fields: list[str],
        entry: str = ENTRY,
        pair: bool = True,
        path: str | None = None,
    ) -> None:
        self.fn = fn
        self.filename = filename
        self.path = path or filename
        """The name its code was compiled under (unique in the process; `filename` is shown)."""
        self.entry = entry
        self.pair = pair
        params = inspect.signature(fn).parameters
        valid = valid_parameters(fields)
        unknown = [p for p in params if p not in valid]
        if unknown:
            raise RewardError(
                Status.CHECK_FAILED,
                f"{entry} has parameter(s) {', '.join(unknown)} that are not state fields; "
                f"valid names: {', '.join(valid)}",
            )
        self.params = list(params)
        self.seconds = 0.0
        """Seconds spent inside the function so far (its finished calls)."""
        self.calling_since: float | None = None
        """time.monotonic() when the call under way began (None between calls)."""
        self._batch = 0
        self._seen: list[torch.Tensor] | None = None
        self._unchecked: _Nonfinite | None = None
        """While the check is deferred: the first non-finite call since the last look, kept in
        device counters (no wait at a call, and nothing kept on the host per call)."""

    @contextmanager
    def varying(self) -> Iterator[None]:
        """Within, every total is kept; on leaving, a total that was one number for the whole
        batch at every call, but a different number from call to call, is a RewardError: it
        follows the batch (a mean or sum over the environments), not each environment's own
        state, so it cannot tell the policy which environment did well. A total that is the
        same constant everywhere passes: with terminations it is a real reward (CartPole's own
        is +1 per step), and a sparse bonus that random actions never reach looks like one."""
        self._seen = []
        try:
            yield
            calls = [s for s in self._seen if s.numel() > 1]
        finally:
            self._seen = None
        uniform = bool(calls) and all(bool((s == s[0]).all()) for s in calls)
        values = {float(s[0]) for s in calls}
        if uniform and len(values) > 1:
            raise RewardError(
                Status.CHECK_FAILED,
                f"the total reward was one number for all {calls[0].numel()} environments at each of "
                f"{len(calls)} smoke-test steps ({min(values):.4g} to {max(values):.4g}): it follows the "
                "whole batch (a mean or sum over environments?), not each environment's own state; "
                "compute one value per environment from its own state tensors",
            )

    def __call__(
        self, batch: Mapping[str, torch.Tensor], n: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Call the reward on a batch of `n` environments; validate and return its output."""
        args = {p: batch[p].clone() for p in self.params}  # the reward may not mutate the state
        defaults = _torch_defaults()
        self.calling_since = began = time.monotonic()
        try:
            out = self.fn(**args)
        except Stop:
            raise
        except BaseException as exc:  # SystemExit, KeyboardInterrupt too: the reward's own raise
            raise RewardError(
                Status.CRASHED,
                f"{self.entry} raised {_named(exc)}" + _user_frame(exc, self.filename, self.path),
            ) from None
        finally:
            self.calling_since = None  # first: a look in between undercounts, never counts twice
            self.seconds += time.monotonic() - began
            _restore_defaults(defaults, f"{self.entry} in {self.filename}")
        device = next(iter(batch.values())).device if batch else torch.device("cpu")
        if not self.pair:
            return _as_batch(out, n, f"the value of {self.entry}", device, scalars=True), {}
        total, components = validate_output(out, n, device, finite=self._unchecked is None)
        if self._unchecked is not None:
            self._batch = n
            self._unchecked.add(total, components)
        if self._seen is not None:
            if not self._seen and n > 1:
                self._fewer(batch, n, device)
            self._seen.append(total.detach().flatten().cpu())
        return total, components

    def _fewer(self, batch: Mapping[str, torch.Tensor], n: int, device: torch.device) -> None:
        """The smoke test's first states again, half as many: a reward that assumes the number
        of environments (`torch.ones(64)`) passes a test on one batch size and fails in
        training, where the evaluation steps another number of them."""
        m = max(1, n // 2)
        args = {
            p: batch[p][:m].clone() if batch[p].shape[:1] == (n,) else batch[p].clone() for p in self.params
        }
        try:
            out = self.fn(**args)
            validate_output(out, m, device, finite=False)
        except Stop:
            raise
        except RewardError as exc:
            raise RewardError(
                exc.status,
                f"{exc.message} (called on {m} environments instead of {n}: the reward must follow "
                "the state tensors' shapes, not assume a number of environments)",
            ) from None
        except BaseException as exc:
            raise RewardError(
                Status.CRASHED,
                f"{self.entry} raised {_named(exc)} when called on {m} environments instead of {n}"
                + _user_frame(exc, self.filename, self.path),
            ) from None

    def defer_finite_check(self, on: bool = True) -> None:
        """From now on (until called with False), count each output's NaN and infinity on the
        device for `first_nonfinite` instead of checking them at every call: a check reads a
        value back from the device, a wait for everything before it on a GPU."""
        self._unchecked = _Nonfinite() if on else None

    def first_nonfinite(self) -> tuple[int, RewardError] | None:
        """Among the calls since the last look (while deferred): the index of the first whose
        total was not finite, with the error an immediate check would have raised; one read from
        the device."""
        found = self._unchecked.look() if self._unchecked is not None else None
        if found is None:
            return None
        first, count, culprits = found
        return first, _nonfinite_error(count, self._batch, culprits)


class _Nonfinite:
    """The deferred NaN check's device counters, preallocated at the first call and updated in
    place (a captured CUDA graph replays the update): calls since the last look, and of the first
    of them whose total was not finite its index, how many environments' totals were, and which
    components (of the names the first call returned) were too."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.calls = torch.zeros(0)
        self.found = torch.zeros(0)
        """int64 [index (-1: none yet), count, then per name: non-finite in how many environments]."""

    def add(self, total: torch.Tensor, components: Mapping[str, torch.Tensor]) -> None:
        if not self.found.numel():
            self.names = list(components)
            self.calls = torch.zeros(1, dtype=torch.long, device=total.device)
            self.found = torch.zeros(2 + len(self.names), dtype=torch.long, device=total.device)
            self.found[:1].fill_(-1)
        if list(components) == self.names:
            values = [total, *components.values()]
        else:  # a reward whose components vary: only the first call's names can be culprits
            values = [total, *(components.get(k, torch.zeros_like(total)) for k in self.names)]
        # per row: how many environments' values are NaN or infinite (the total's, then each component's)
        counts = (~torch.isfinite(torch.stack(values))).sum(1)
        take = (counts[:1] > 0) & (self.found[:1] < 0)
        torch.where(take, torch.cat((self.calls, counts)), self.found, out=self.found)
        self.calls += 1

    def look(self) -> tuple[int, int, list[str]] | None:
        """(index, count, culprit components) of the first non-finite call since the last look,
        or None; the counters start again."""
        if not self.found.numel():
            return None
        first, count, *flags = self.found.tolist()
        self.calls.zero_()
        self.found.zero_()
        self.found[:1].fill_(-1)
        if first < 0:
            return None
        return first, count, [name for name, bad in zip(self.names, flags, strict=True) if bad]


PER_ENVIRONMENT = (
    "not one value per environment: compute a tensor of shape [N] from the state tensors "
    "(no .item(), and no .mean() or .sum() over the batch)"
)


def _as_batch(value: Any, n: int, what: str, device: torch.device, scalars: bool = False) -> torch.Tensor:
    """`value` as a float tensor of shape [n], or a RewardError that says what is wrong. A single
    number is spread over the batch only when `scalars` (never for a reward's total or its
    components: every environment would get the same value)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not scalars:
            raise RewardError(
                Status.CHECK_FAILED,
                f"{what} is a single Python {type(value).__name__} ({value:g}), {PER_ENVIRONMENT}",
            )
        value = torch.full((n,), float(value), device=device)
    if not isinstance(value, torch.Tensor):
        raise RewardError(
            Status.CHECK_FAILED, f"{what} must be a torch.Tensor of shape [N], got {type(value).__name__}"
        )
    if value.is_complex() or value.dtype not in (
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.float64,
        torch.bool,
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.uint8,
    ):
        raise RewardError(
            Status.CHECK_FAILED, f"{what} must be a real-valued tensor, got dtype {value.dtype}"
        )
    if value.dim() == 0:
        if not scalars:
            raise RewardError(
                Status.CHECK_FAILED,
                f"{what} is a 0-dim tensor (one number for the whole batch), {PER_ENVIRONMENT}",
            )
        value = value.expand(n)
    if value.dim() == 2 and value.shape[1] == 1:
        value = value[:, 0]
    if tuple(value.shape) != (n,):
        raise RewardError(
            Status.CHECK_FAILED,
            f"{what} must have shape [N] = [{n}] (one value per environment), got {list(value.shape)}",
        )
    if value.device != device:
        raise RewardError(
            Status.CHECK_FAILED, f"{what} is on device {value.device}; it must stay on {device}"
        )
    return value.detach().to(torch.float32)


MAX_COMPONENTS = 64
"""Named components a reward may return (every one goes into the next prompt's statistics)."""
MAX_NAME = 100
"""Characters in a component's name (shown in the next prompt and in the plots)."""


def validate_output(
    out: Any, n: int, device: torch.device, finite: bool = True
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Check `(total, components)` against the reward contract (with `finite`, that the total
    holds no NaN or infinity too)."""
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        got = (
            type(out).__name__
            if not isinstance(out, (tuple, list))
            else f"{type(out).__name__} of {len(out)}"
        )
        raise RewardError(
            Status.CHECK_FAILED,
            f"compute_reward must return a pair (total reward tensor, dict of component tensors), got {got}",
        )
    if not isinstance(out[1], dict):
        raise RewardError(
            Status.CHECK_FAILED,
            "the second item compute_reward returns must be a dict of named component tensors "
            f"(e.g. {{'upright': upright}}), got {type(out[1]).__name__}",
        )
    if len(out[1]) > MAX_COMPONENTS:
        raise RewardError(
            Status.CHECK_FAILED,
            f"compute_reward returns {len(out[1])} components; return at most {MAX_COMPONENTS} named "
            "terms (each is shown to the model and plotted: group small terms into one)",
        )
    total = _as_batch(out[0], n, "the total reward", device)
    components: dict[str, torch.Tensor] = {}
    for name, value in out[1].items():
        if not isinstance(name, str):
            raise RewardError(Status.CHECK_FAILED, f"component names must be strings, got {name!r}")
        if not name.strip() or not name.isprintable() or len(name) > MAX_NAME:
            raise RewardError(
                Status.CHECK_FAILED,
                f"component name {name!r:.60}: give each component a short name on one line (at most "
                f"{MAX_NAME} characters, e.g. 'upright'); it is shown to the model and plotted",
            )
        components[name] = _as_batch(value, n, f"component '{name}'", device)
    if finite and not bool(torch.isfinite(total).all()):
        raise _nonfinite(total, components)
    return total, components


def _nonfinite(total: torch.Tensor, components: dict[str, torch.Tensor]) -> RewardError:
    """The error for a total that holds NaN or infinity, naming the components that do."""
    culprits = [k for k, v in components.items() if not bool(torch.isfinite(v).all())]
    return _nonfinite_error(int((~torch.isfinite(total)).sum()), len(total), culprits)


def _nonfinite_error(bad: int, n: int, culprits: list[str]) -> RewardError:
    """The error for a total NaN or infinite in `bad` of `n` environments, `culprits` the
    components that are too."""
    where = f" (non-finite components: {', '.join(culprits)})" if culprits else ""
    return RewardError(
        Status.DIVERGED,
        f"compute_reward returned NaN or infinite values for {bad} of {n} environments{where}",
    )


COMPILERS = {"torch.jit.script", "torch.jit.script_if_tracing", "torch.compile"}
"""Functions that only change how a function runs, not what it computes: Eureka's own rewards
(IsaacGym) are written under `@torch.jit.script`, which cannot compile code that came from a
string; the reward runs as eager PyTorch instead."""


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> what it imports: `import torch as th` (th -> torch), `from torch.jit import
    script` (script -> torch.jit.script)."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(
                {
                    a.asname or a.name.split(".")[0]: a.name if a.asname else a.name.split(".")[0]
                    for a in node.names
                }
            )
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
    return out


class _WithoutCompilers(ast.NodeTransformer):
    """Drops COMPILERS decorators (called or not) and turns `torch.jit.script(f)` into `f`."""

    def __init__(self, aliases: dict[str, str]) -> None:
        self.aliases = aliases

    def compiler(self, node: ast.expr) -> bool:
        name = ast.unparse(node.func if isinstance(node, ast.Call) else node)
        head, _, rest = name.partition(".")
        full = self.aliases.get(head, head) + (f".{rest}" if rest else "")
        return full in COMPILERS

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.decorator_list = [d for d in node.decorator_list if not self.compiler(d)]
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if node.args and not isinstance(node.args[0], ast.Starred) and self.compiler(node.func):
            return node.args[0]
        return node


def without_compilers(tree: ast.Module) -> ast.Module:
    """`tree` without the COMPILERS (as decorators or calls, under any import alias)."""
    return ast.fix_missing_locations(_WithoutCompilers(_aliases(tree)).visit(tree))


def compile_reward(source: str, filename: str, fields: list[str], path: str | None = None) -> RewardFunction:
    """Execute reward source (inside the sandbox) and bind its `compute_reward`. Messages name
    it `filename`; its code is compiled as `path` (default: `filename`), which must be unique in
    the process: its lines are kept in linecache under it (a group trains several reward.py)."""
    namespace: dict[str, Any] = {"torch": torch, "math": math, "typing": typing}
    where = path or filename
    # so tracebacks can quote the reward's own lines
    linecache.cache[where] = (len(source), None, source.splitlines(True), where)
    try:
        with AST_LOCK:
            code = compile(without_compilers(checks.parse(source, where)), where, "exec")
    except SyntaxError as exc:
        line = filename if exc.lineno is None else f"{filename} line {exc.lineno}"
        raise RewardError(Status.CHECK_FAILED, f"{line}: syntax error: {exc.msg}") from None
    defaults = _torch_defaults()
    try:
        exec(code, namespace)
    except Stop:
        raise
    except BaseException as exc:  # SystemExit, KeyboardInterrupt too: the code's own raise
        raise RewardError(
            Status.CRASHED,
            f"running {filename} at import raised {_named(exc)}" + _user_frame(exc, filename, where),
        ) from None
    finally:
        _restore_defaults(defaults, filename)
    fn = namespace.get(ENTRY)
    if not callable(fn):
        raise RewardError(Status.CHECK_FAILED, f"{filename} defines no function '{ENTRY}'")
    return RewardFunction(fn, filename, fields, path=where)
