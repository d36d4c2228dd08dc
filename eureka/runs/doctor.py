"""`eureka doctor`: what this machine gives eureka (isolation, rendering, GPU, the embedded
model, provider keys, a browser) and what to install for the rest. Reports; never fails."""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import sandbox
from eureka.llm.client import LOCAL_WEIGHTS, PROVIDER_KEYS

RENDER_TIMEOUT_S = 60.0
"""Wall-clock limit of the render probe (a cold MuJoCo + EGL start on a busy machine)."""
RENDER_PROBE = """
import mujoco
model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='0.1'/></worldbody></mujoco>")
data = mujoco.MjData(model)
mujoco.mj_forward(model, data)
renderer = mujoco.Renderer(model, 48, 64)
renderer.update_scene(data)
print("rendered", renderer.render().shape)
"""
"""One 64x48 frame, rendered in the sandbox exactly as rollout videos are."""
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@dataclass(frozen=True)
class Finding:
    """One line of the doctor's report."""

    topic: str
    ok: bool
    """Available and working (False: missing, or working only in part)."""
    summary: str
    """What is there and in use, in one line."""
    hint: str = ""
    """What to install or set for the rest; empty when nothing is missing."""


def diagnose(render: bool = True) -> list[Finding]:
    """Every check, in the order they are printed; `render=False` skips the render probe."""
    checks: list[Callable[[], Finding]] = [_isolation, _gpu, _local_model, _provider_keys, _browser]
    if render:
        checks.insert(1, _rendering)
    return [check() for check in checks]


def _isolation() -> Finding:
    status = {name: sandbox.isolation_status(name) for name in sandbox.MECHANISMS}
    works = [name for name, (ok, _) in status.items() if ok]
    missing = [f"{name}: {why}" for name, (ok, why) in status.items() if not ok]
    hints = [sandbox.INSTALL_HINTS[name] for name, (ok, _) in status.items() if not ok]
    try:
        used = sandbox.resolve_isolation("auto", warn=False)
    except sandbox.SandboxUnavailable as exc:
        return Finding("isolation", False, str(exc), "; ".join(hints))
    forced = os.environ.get(sandbox.ISOLATION_VARIABLE, "auto").strip().lower() or "auto"
    summary = f"{used} in use" + (f" ({sandbox.ISOLATION_VARIABLE}={forced})" if forced != "auto" else "")
    summary += f"; works here: {', '.join(works) or 'none'}"
    if missing:
        summary += f"; not: {'; '.join(missing)}"
    if used == "none":
        hint = "generated code runs UNISOLATED: " + " or ".join(hints)
        return Finding("isolation", False, summary, hint if forced == "auto" else "")
    return Finding("isolation", True, summary, "; ".join(hints) if used != "bwrap" else "")


def _rendering() -> Finding:
    gl = os.environ.get("MUJOCO_GL", "egl")
    libraries = {name: _library(name) for name in ("EGL", "OSMesa")}
    found = ", ".join(f"lib{n} {'found' if ok else 'missing'}" for n, ok in libraries.items())
    summary = f"MUJOCO_GL={gl} ({found})"
    with tempfile.TemporaryDirectory(prefix="eureka-doctor-") as tmp:
        try:
            isolation = sandbox.resolve_isolation("auto", warn=False)
        except sandbox.SandboxUnavailable:
            isolation = "none"
        out = sandbox.run(
            [sys.executable, "-c", RENDER_PROBE],
            Path(tmp) / "work",
            Path(tmp) / "render.log",
            sandbox.Policy(timeout_s=RENDER_TIMEOUT_S, isolation=isolation, extra_env={"MUJOCO_GL": gl}),  # type: ignore[arg-type]
        )
    if out.returncode == 0 and "rendered" in out.output_tail:
        return Finding("rendering", True, f"{summary}: a frame rendered in the sandbox ({out.wall_time:.1f} s)")
    why = "timed out" if out.timed_out else (out.output_tail.strip().splitlines() or ["no output"])[-1][:160]
    other = "osmesa" if gl == "egl" else "egl"
    hint = (
        f"rollout videos need a working MUJOCO_GL: install libegl1 (EGL) or libosmesa6 (OSMesa) and "
        f"set MUJOCO_GL={other} to try the other; or train with --no-video"
    )
    return Finding("rendering", False, f"{summary}: the render probe failed ({why})", hint)


def _library(name: str) -> bool:
    import ctypes.util

    return ctypes.util.find_library(name) is not None


def _gpu() -> Finding:
    import torch

    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return Finding("GPU", True, f"cuda: {names} (torch {torch.__version__})")
    build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
    return Finding(
        "GPU",
        False,
        f"none: training runs on the CPU (torch {torch.__version__}, {build})",
        "on a machine with an NVIDIA GPU, install the torch build for its CUDA first (pytorch.org)",
    )


def _local_model() -> Finding:
    hint = "make install (builds llama-cpp-python once, ~10 min) or pip install 'eureka-rewards[local]'"
    try:
        llama = importlib.import_module("llama_cpp")
    except Exception as exc:  # ImportError, or a library that fails to load
        return Finding("local model", False, f"llama_cpp not importable ({type(exc).__name__})", hint)
    package, name = LOCAL_WEIGHTS
    weights = files(package) / name if importlib.util.find_spec(package) else None
    if weights is None or not weights.is_file():
        return Finding("local model", False, f"llama_cpp {llama.__version__}, but {name} missing", hint)
    return Finding("local model", True, f"llama_cpp {llama.__version__}, {name} (used with no provider key)")


def _provider_keys() -> Finding:
    present = [key for key in PROVIDER_KEYS if os.environ.get(key)]
    absent = [key for key in PROVIDER_KEYS if key not in present]
    summary = f"set: {', '.join(present) or 'none'}; not set: {', '.join(absent) or 'none'}"
    hint = "" if present else "export one (e.g. OPENAI_API_KEY) to use a provider; without, the local model runs"
    return Finding("provider keys", bool(present), summary, hint)


def _browser() -> Finding:
    found = next((path for b in BROWSERS if (path := shutil.which(b))), None)
    playwright = importlib.util.find_spec("playwright") is not None
    summary = f"{found or 'no chromium'}; playwright {'installed' if playwright else 'missing'}"
    if found and playwright:
        return Finding("browser", True, f"{summary} (ranking-page and report tests)")
    return Finding(
        "browser",
        False,
        summary,
        "the browser tests of the ranking page and report need chromium (apt-get install chromium) "
        "and playwright (the dev extra); they are skipped without them",
    )
