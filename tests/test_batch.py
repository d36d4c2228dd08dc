"""`eureka batch` over three bundled tasks with recorded replies (one run fails, one misses its
threshold), its results.json, JUnit XML (against the schema) and markdown; the HTML report in
headless Chromium; `eureka runs` and `eureka report`; exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import xmlschema
import yaml
from conftest import FIXTURES, REPO, cartpole_twice
from typer.testing import CliRunner

from eureka.cli import app
from eureka.errors import ConfigError
from eureka.runs.batch import (
    BatchResult,
    Suite,
    SuiteEntry,
    TaskResult,
    entries,
    judge,
    junit_xml,
    load_suite,
    markdown,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCHEMA = xmlschema.XMLSchema(str(FIXTURES / "junit.xsd"))
runner = CliRunner()


def _suite(tmp_path: Path) -> Path:
    suite = {
        "defaults": {
            "iterations": 1,
            "samples": 2,
            "timesteps": 3000,
            "eval_seeds": 1,
            "max_failed_iterations": 1,
        },
        "tasks": [
            "cartpole",
            {"task": "mountain_car_continuous", "min_hns": 1e9},  # cannot be reached: a missed threshold
            "pendulum",  # its recorded replies hold no code: the run fails
        ],
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    tmp = tmp_path_factory.mktemp("batch")
    out = tmp / "out"
    model = f"replay:{REPO / 'examples/batch'}/{{task}}"
    args = [
        "batch",
        "--suite",
        str(_suite(tmp)),
        "--model",
        model,
        "--out",
        str(out),
        "--workers",
        "2",
        "--no-video",
    ]
    result = runner.invoke(app, args)
    return out, result


@pytest.mark.slow
def test_batch_results_junit_markdown_and_exit_code(batch_run: tuple[Path, object]) -> None:
    out, result = batch_run
    assert result.exit_code == 2, result.output  # an error wins over a missed threshold
    data = json.loads((out / "results.json").read_text())
    assert data["exit_code"] == 2
    by_task = {t["task"]: t for t in data["tasks"]}
    assert list(by_task) == ["cartpole", "mountain_car_continuous", "pendulum"]
    cart = by_task["cartpole"]
    assert cart["outcome"] == "passed" and cart["status"] == "ok"
    for key in ("best_fitness", "human_fitness", "sparse_fitness", "success_rate"):
        assert isinstance(cart[key], float), key
    assert cart["iterations"] == 1 and cart["wall_time"] > 0 and Path(cart["run_dir"]).is_dir()
    car = by_task["mountain_car_continuous"]
    assert car["outcome"] == "failed" and car["status"] == "ok"
    assert car["message"].startswith("human-normalised score") and "1e+09" in car["message"]
    pend = by_task["pendulum"]
    assert pend["outcome"] == "error" and pend["status"] == "failed"
    assert "every candidate failed in 1 iteration in a row" in pend["message"]
    # the JUnit file is valid and says the same
    SCHEMA.validate(str(out / "junit.xml"))
    junit = SCHEMA.to_dict(str(out / "junit.xml"))
    suite = junit["testsuite"][0]
    assert (suite["@tests"], suite["@failures"], suite["@errors"]) == (3, 1, 1)
    cases = {c["@name"]: c for c in suite["testcase"]}
    assert "failure" not in cases["cartpole"] and "error" not in cases["cartpole"]
    assert cases["mountain_car_continuous"]["failure"][0]["@type"] == "threshold"
    assert cases["pendulum"]["error"][0]["@type"] == "run"
    md = (out / "summary.md").read_text()
    assert "| cartpole | ✅ passed |" in md and "| mountain_car_continuous | ❌ failed |" in md
    assert "| pendulum | 💥 error |" in md
    assert "## eureka batch" in result.output


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make install puts it there)")
@pytest.mark.slow
def test_report_renders_in_headless_chromium(batch_run: tuple[Path, object], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    out, _ = batch_run
    (run_dir,) = (out / "runs" / "cartpole").iterdir()
    report = run_dir / "report.html"  # written at the end of the solve
    assert report.is_file()
    again = runner.invoke(app, ["report", str(run_dir)])
    assert again.exit_code == 0 and str(report) in again.output
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(report.as_uri())
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        assert page.title() == "eureka: cartpole"
        for plot in ("#fitness-plot", "#components-plot", "#final-plot"):
            assert page.eval_on_selector(plot, "img => img.naturalWidth") > 200, plot
        assert page.locator("#candidates tr").count() == 1 + 2  # header and two candidates
        assert "def compute_reward" in page.inner_text("#best-code")
        assert page.inner_text("#hns").startswith("human-normalised score")
        assert "recorded-example" not in page.inner_text("#overview")  # the replayed model is named
        assert "replay:" in page.inner_text("#overview")
        assert page.locator("#final tr").count() == 1 + 3  # best, human, sparse
        browser.close()
    assert shot.stat().st_size > 30_000


@pytest.mark.slow
def test_runs_list_and_show(batch_run: tuple[Path, object], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich's tables fold long cells on a narrow terminal
    out, _ = batch_run
    listed = runner.invoke(app, ["runs", "list", "--runs-dir", str(out / "runs")])
    assert listed.exit_code == 0
    assert (
        "cartpole" in listed.output
        and "mountain_car_continuous" in listed.output
        and "failed" in listed.output
    )
    (run_dir,) = (out / "runs" / "pendulum").iterdir()
    shown = runner.invoke(app, ["runs", "show", str(run_dir)])
    assert shown.exit_code == 0
    assert "no_code" in shown.output or "check_failed" in shown.output
    assert "every candidate failed" in shown.output
    missing = runner.invoke(app, ["runs", "show", str(out)])
    assert missing.exit_code == 2 and "is not a run directory of eureka solve" in missing.output


def _result(task: str, outcome: str) -> TaskResult:
    return TaskResult(task=task, outcome=outcome)  # type: ignore[arg-type]


def test_exit_codes_and_thresholds(tmp_path: Path) -> None:
    assert BatchResult(tasks=[_result("a", "passed")], wall_time=1).exit_code == 0
    assert BatchResult(tasks=[_result("a", "passed"), _result("b", "failed")], wall_time=1).exit_code == 1
    assert BatchResult(tasks=[_result("a", "failed"), _result("b", "error")], wall_time=1).exit_code == 2
    errored = judge(SuiteEntry(task="x"), None, "task 'x' not found")
    assert errored.outcome == "error" and errored.message == "task 'x' not found"
    SCHEMA.validate(junit_xml(BatchResult(tasks=[errored, _result("b", "passed")], wall_time=0.5)))
    assert "💥 error" in markdown(BatchResult(tasks=[errored], wall_time=0))
    suite = load_suite(_suite(tmp_path))
    todo = entries(["acrobot"], suite, None)
    assert [e.task for e in todo] == ["cartpole", "mountain_car_continuous", "pendulum", "acrobot"]
    assert todo[0].options["iterations"] == 1 and todo[1].min_hns == 1e9 and todo[3].options == {}
    assert all(e.min_hns == 0.5 for e in entries([], suite, 0.5))  # the command line wins
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [cartpole]\nretries: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: retries: Extra inputs are not permitted"):
        load_suite(bad)
    bad.write_text("defaults: {model: none\ntasks:\n  - cartpole\n")  # a brace left open: not a traceback
    with pytest.raises(ConfigError) as caught:
        load_suite(bad)
    assert str(caught.value) == (
        f"suite file {bad}: not valid YAML: line 2 column 6: expected ',' or '}}', but got ':' "
        "(while parsing a flow mapping)"
    )
    with pytest.raises(ConfigError, match=r"give task names, or --suite suite\.yaml"):
        entries([], None, None)
    # the same task twice with the same options (by name and by folder) would train the same runs
    with pytest.raises(ConfigError, match=r"task .*tasks/acrobot is listed twice with the same options"):
        entries(["acrobot", str(REPO / "tasks/acrobot")], None, None)
    assert (
        len(entries(["acrobot"], Suite(tasks=[SuiteEntry(task="acrobot", options={"seed": 1})]), None)) == 2
    )


def test_the_example_suite_points_at_its_recordings() -> None:
    suite = load_suite(REPO / "examples/batch/suite.yaml")
    for entry in entries([], suite, None):
        model = entry.options["model"].replace("{task}", entry.task)
        assert (REPO / model.removeprefix("replay:") / "transcript.jsonl").is_file(), model


def test_a_human_feedback_mode_is_refused_in_a_batch(tmp_path: Path) -> None:
    result = runner.invoke(app, ["batch", "cartpole", "--feedback", "rank", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "a batch cannot ask a human" in result.output
    # no LLM and no human reward to start from: refused before any run directory is made
    out, suite = tmp_path / "n", tmp_path / "suite.yaml"
    suite.write_text("tasks:\n  - {task: cartpole, options: {model: none, human_init: false}}\n")
    result = runner.invoke(app, ["batch", "--suite", str(suite), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "cartpole: with no LLM (--model none" in result.output and "drop --no-human-init" in result.output
    assert not (out / "runs").exists() or not any((out / "runs").rglob("config.yaml"))


def test_a_batch_without_a_model_gets_the_offline_defaults_of_solve() -> None:
    """No key and no model (the fallback is the embedded one), or model none: human init, the
    optimiser and the structure operators, as `eureka solve` does; what the suite or the command
    line set stays, and a provider's model is left alone."""
    from eureka.llm.client import LOCAL_MODEL, NO_MODEL
    from eureka.runs.batch import solve_config
    from eureka.training import optimise

    no_key = solve_config(SuiteEntry(task="cartpole"), {}, LOCAL_MODEL)
    assert (no_key.human_init, no_key.tune, no_key.structure, no_key.confirm, no_key.confirm_seeds) == (
        True,
        optimise.DEFAULT_TUNE,
        optimise.DEFAULT_STRUCTURE,
        optimise.DEFAULT_CONFIRM,
        optimise.DEFAULT_CONFIRM_SEEDS,
    )
    assert no_key.model in (LOCAL_MODEL, NO_MODEL)  # none when the embedded model is not installed
    cli_way = optimise.offline_defaults(no_key.model_copy(update={"model": LOCAL_MODEL}), set())
    assert cli_way.model_copy(update={"task": no_key.task}) == no_key  # the same rule as solve
    kept = solve_config(
        SuiteEntry(task="cartpole", options={"model": "none", "tune": 3}), {"structure": 0}, "gpt-4o"
    )
    assert (kept.model, kept.human_init, kept.tune, kept.structure) == (NO_MODEL, True, 3, 0)
    provider = solve_config(SuiteEntry(task="cartpole"), {}, "gpt-4o")
    assert (provider.human_init, provider.tune, provider.structure) == (False, 0, 0)
    named = solve_config(SuiteEntry(task="cartpole"), {"model": LOCAL_MODEL}, "gpt-4o")
    assert (named.model, named.tune) == (LOCAL_MODEL, 0)  # the embedded model asked for by name


def test_a_broken_task_folder_fails_alone_and_the_batch_goes_on(tmp_path: Path) -> None:
    """A folder that does not load, or a name that is no task, is that task's error in the
    results, not an error that stops the batch before any task ran."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "task.yaml").write_text("- not a mapping\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["batch", str(broken), "nosuchtask", "--model", "none", "--out", str(out)])
    assert result.exit_code == 2, result.output
    payload = json.loads((out / "results.json").read_text())
    assert [(t["task"], t["outcome"]) for t in payload["tasks"]] == [
        (str(broken), "error"),
        ("nosuchtask", "error"),
    ]
    assert (
        payload["tasks"][0]["message"]
        == f"{broken / 'task.yaml'}: must be a mapping of keys to values, got list"
    )
    assert payload["tasks"][1]["message"].startswith("unknown task 'nosuchtask'")


def test_a_task_listed_twice_with_other_options_runs_with_each_s_own(tmp_path: Path) -> None:
    """Two entries of one task that differ in their options (here the seed) are two runs, each
    with its own entry's settings, not the last one's twice."""
    path = cartpole_twice(tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["batch", "--suite", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    seeds = sorted(
        yaml.safe_load(p.read_text())["seed"] for p in (out / "runs").glob("cartpole/*/config.yaml")
    )
    assert seeds == [1, 2]
