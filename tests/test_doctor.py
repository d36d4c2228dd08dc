"""`eureka doctor`: reports isolation, rendering, GPU, the local model, provider keys (names,
never values) and the browser, with what to install for the rest; always exits 0."""

from __future__ import annotations

import importlib.util
import shutil
import sys

import pytest
from conftest import FAKE_KEY
from typer.testing import CliRunner

import sandbox
from eureka.cli import app
from eureka.runs import doctor
from sandbox import _bwrap, _unshare

runner = CliRunner()


def test_doctor_reports_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sandbox.ISOLATION_VARIABLE, raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-SECRET-VALUE")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    out = result.output
    rows = [" ".join(line.split()) for line in out.splitlines() if line.startswith(("ok ", "-- "))]
    lines = {row.split()[1]: row for row in rows}
    assert list(lines) == ["isolation", "rendering", "GPU", "local", "provider", "browser"]
    # provider keys: names only
    assert "set: OPENAI_API_KEY, ANTHROPIC_API_KEY; not set: GEMINI_API_KEY" in lines["provider"]
    assert FAKE_KEY not in out and "SECRET-VALUE" not in out
    # each line agrees with what the machine has
    works = [name for name in sandbox.MECHANISMS if sandbox.isolation_status(name)[0]]
    if works:
        assert lines["isolation"].startswith(
            f"ok isolation {works[0]} in use; works here: {', '.join(works)}"
        )
    else:
        assert lines["isolation"].startswith("-- isolation none in use") and "UNISOLATED" in out
    assert (
        "a frame rendered in the sandbox" in lines["rendering"] or "render probe failed" in lines["rendering"]
    )
    local = importlib.util.find_spec("llama_cpp") is not None
    assert lines["local"].startswith("ok" if local else "--")
    chromium = any(shutil.which(b) for b in doctor.BROWSERS) and importlib.util.find_spec("playwright")
    assert lines["browser"].startswith("ok" if chromium else "--")


def _isolation(monkeypatch: pytest.MonkeyPatch, variable: str | None) -> doctor.Finding:
    if variable is None:
        monkeypatch.delenv(sandbox.ISOLATION_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(sandbox.ISOLATION_VARIABLE, variable)
    (finding,) = [f for f in doctor.diagnose(render=False) if f.topic == "isolation"]
    return finding


def test_doctor_says_what_to_install_for_the_missing_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    no_bwrap = (False, "the `bwrap` executable (package bubblewrap) is not installed")
    monkeypatch.setattr(_bwrap.probe, "result", no_bwrap)
    monkeypatch.setattr(_unshare.probe, "result", (True, "ok"))
    found = _isolation(monkeypatch, None)
    assert found.ok and found.summary.startswith(
        "unshare in use; works here: unshare; not: bwrap: the `bwrap`"
    )
    assert found.hint == "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)"
    found = _isolation(monkeypatch, "bwrap")  # asked for by name: reported, not raised
    assert not found.ok and found.summary.startswith("bwrap isolation was requested but is unavailable")

    monkeypatch.setattr(_unshare.probe, "result", (False, "`unshare` fails here (Operation not permitted)"))
    monkeypatch.setattr(sandbox, "_warned", False)
    found = _isolation(monkeypatch, None)
    assert not found.ok and found.summary.startswith("none in use; works here: none")
    assert found.hint.startswith("generated code runs UNISOLATED: install bubblewrap")
    assert "install util-linux" in found.hint
    found = _isolation(monkeypatch, "none")  # asked for: no advice pressed on the user
    assert found.summary.startswith(f"none in use ({sandbox.ISOLATION_VARIABLE}=none)") and found.hint == ""
    assert not sandbox._warned  # the doctor reports; it does not print the run-time warning

    # through the CLI, also without the local model: still exit 0, hints printed verbatim
    monkeypatch.delenv(sandbox.ISOLATION_VARIABLE)
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if not installed
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "-- isolation none in use; works here: none" in out
    assert "generated code runs UNISOLATED: install bubblewrap" in out
    assert "-- local model llama_cpp not importable (ModuleNotFoundError)" in out
    assert "pip install 'eureka-rewards[local]'" in out
    assert not sandbox._warned
