"""Proves the quick suite (`make test-fast`) exercises every module of eureka/ and sandbox/.

    python tests/fast_coverage.py [extra pytest arguments]

Runs `pytest -m "not slow"` with a call tracer in every test process and lists each module with
how it was reached; exits 1 naming the modules no fast test exercised. A module counts when a
test process called one of its functions (importing it is not enough), or, for a module that
defines no function (`__init__`, `__main__`), when its code ran in a test process. Code that runs only in
sandboxed workers is invisible here (the sandbox gives them a clean environment), so the quick
suite also calls the worker's entry point in-process (test_train.py).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("eureka", "sandbox")
OUT_VARIABLE = "EUREKA_FAST_COVERAGE_DIR"


def modules() -> dict[str, Path]:
    """Every module of the packages: dotted name -> file."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def defines_functions(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(tree))


# ---------------------------------------------------------------- the plugin (in each test process)

_called: set[str] = set()
_prefixes = tuple(str(ROOT / p) + os.sep for p in PACKAGES)


_ran: set[str] = set()


def _trace(frame: FrameType, event: str, arg: Any) -> None:
    code = frame.f_code
    if code.co_filename.startswith(_prefixes):
        (_ran if code.co_name == "<module>" else _called).add(code.co_filename)
    return None  # no line events: only calls are counted


def pytest_configure(config: Any) -> None:
    if os.environ.get(OUT_VARIABLE):
        sys.settrace(_trace)
        threading.settrace(_trace)


def pytest_unconfigure(config: Any) -> None:
    out = os.environ.get(OUT_VARIABLE)
    if not out:
        return
    sys.settrace(None)
    files = [getattr(m, "__file__", None) for m in list(sys.modules.values())]
    imported = {
        str(Path(f).resolve())
        for f in files
        if isinstance(f, str) and str(Path(f).resolve()).startswith(_prefixes)
    } | _ran  # a module run as __main__ (runpy) is not left in sys.modules
    record = {"called": sorted(_called), "imported": sorted(imported)}
    (Path(out) / f"{os.getpid()}.json").write_text(json.dumps(record))


# ---------------------------------------------------------------- the check


def main(extra: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="eureka-fast-coverage-") as tmp:
        env = {
            **os.environ,
            OUT_VARIABLE: tmp,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
        }
        argv = [sys.executable, "-m", "pytest", "-m", "not slow", "-p", "fast_coverage", "-q", *extra]
        done = subprocess.run(argv, cwd=ROOT, env=env, check=False)
        called: set[str] = set()
        imported: set[str] = set()
        for record in Path(tmp).glob("*.json"):
            data = json.loads(record.read_text())
            called |= set(data["called"])
            imported |= set(data["imported"])
    missing = []
    for name, path in modules().items():
        key = str(path.resolve())
        if key in called:
            how = "called"
        elif key in imported and not defines_functions(path):
            how = "imported (no functions)"
        else:
            how = "NOT EXERCISED" + (" (imported only)" if key in imported else "")
            missing.append(name)
        print(f"{name:45s} {how}")
    print(f"\n{len(modules()) - len(missing)} of {len(modules())} modules exercised by the quick suite")
    if missing:
        print("not exercised by any fast test: " + ", ".join(missing))
    return 1 if missing or done.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
