"""`eureka bench quality` on a tiny suite with recorded replies (one task ends with a final
evaluation, one run fails): the table, results.json, summary.md, report.html, exit code, and
resuming per task; the paper's summary numbers on made-up rows."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, cartpole_twice
from typer.testing import CliRunner

from eureka.cli import app
from eureka.runs.batch import entries, load_suite
from eureka.runs.bench import HNS_CLIP, Score, TaskRow, default_suite, headline, summary_lines
from eureka.types import Summary

runner = CliRunner()


def _args(tmp: Path, only: str = "cartpole,pendulum", *extra: str) -> list[str]:
    suite = tmp / "suite.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "defaults": {"max_failed_iterations": 1},
                "tasks": ["cartpole", "pendulum", "acrobot"],  # pendulum's recorded replies hold no code
            }
        )
    )
    return [
        "bench",
        "quality",
        "--suite",
        str(suite),
        "--tasks",
        only,  # acrobot is left out
        "--model",
        f"replay:{REPO / 'examples/batch'}/{{task}}",
        "--iterations",
        "1",
        "--samples",
        "2",
        "--eval-seeds",
        "2",
        "--timesteps",
        "3000",
        "--workers",
        "2",
        "--no-video",
        "--out",
        str(tmp / "out"),
        *extra,
    ]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    tmp = tmp_path_factory.mktemp("quality")
    return tmp / "out", tmp, runner.invoke(app, _args(tmp))


@pytest.mark.slow
def test_table_json_summary_report_and_exit_code(bench_run: tuple[Path, Path, object]) -> None:
    out, _, result = bench_run
    assert result.exit_code == 2, result.output  # pendulum's run failed
    data = json.loads((out / "results.json").read_text())
    assert data["exit_code"] == 2
    rows = {t["task"]: t for t in data["tasks"]}
    assert list(rows) == ["cartpole", "pendulum"]
    cart, pend = rows["cartpole"], rows["pendulum"]
    assert cart["outcome"] == "ok" and pend["outcome"] == "error"
    assert "every candidate failed" in pend["message"]
    summary = Summary.model_validate_json((Path(cart["run_dir"]) / "summary.json").read_text())
    final = summary.final
    assert final is not None and final.sparse is not None and len(final.seeds) == 2
    for name, stats in (("best", final.best), ("human", final.human), ("sparse", final.sparse)):
        assert cart[name]["values"] == stats.fitness and len(stats.fitness) == 2
        assert cart[name]["mean"] == stats.fitness_mean and cart[name]["std"] == stats.fitness_std
        assert cart[name]["success_rate"] == stats.success_rate
    assert cart["hns"] == final.human_normalized_score
    assert cart["best_ge_human"] == (final.best.fitness_mean >= final.human.fitness_mean)
    assert cart["llm_calls"] == summary.llm_calls >= 1
    assert cart["tokens"] == summary.tokens_in + summary.tokens_out
    run_dir = Path(cart["run_dir"])
    best_is_human = (run_dir / "best_reward.py").read_text().strip() == (
        REPO / "tasks/cartpole/human_reward.py"
    ).read_text().strip()
    trainings = (2 if best_is_human else 3) * 2  # the human reward is trained once when it is the best
    assert (
        cart["eval_env_steps"] >= trainings * 3000
        and cart["env_steps"] == summary.env_steps + cart["eval_env_steps"]
    )
    assert (cart["iterations"], cart["samples"], cart["timesteps"]) == (1, 2, 3000)
    head = data["headline"]
    assert (head["tasks"], head["evaluated"]) == (2, 1)
    assert head["best_ge_human"] == int(cart["best_ge_human"])
    assert summary.model in head["models"] and len(head["models"]) == 2  # one recording per task
    md = (out / "summary.md").read_text()
    assert "| task | F sparse | F human | F best |" in md and "| pendulum (error) |" in md
    assert f"best ≥ human on {head['best_ge_human']} of 2 tasks" in md
    assert "1 iterations × 2 samples, 3,000 steps per training, final evaluation over 2 seeds" in md
    assert "mean human-normalised score" in md and "clipped to [0, 3]" in md
    assert f"| {final.best.fitness_mean:.4g} ± " in md
    page = (out / "report.html").read_text()
    assert page.count('id="bars-plot" alt=') == 1 and "<td>cartpole</td>" in page
    if cart["hns"] is not None:
        assert 'id="normalised-plot" alt=' in page
    # the terminal shows the same table and lines
    assert "eureka bench quality" in result.output and "of 2 tasks" in result.output


@pytest.mark.slow
def test_a_rerun_resumes_per_task(bench_run: tuple[Path, Path, object]) -> None:
    out, tmp, _ = bench_run
    before = json.loads((out / "results.json").read_text())["tasks"]
    cart_dir = Path(before[0]["run_dir"])
    # as if the cartpole run had been killed before it ended: it is continued, not restarted
    summary = json.loads((cart_dir / "summary.json").read_text())
    summary["status"] = "running"
    (cart_dir / "summary.json").write_text(json.dumps(summary))
    again = runner.invoke(app, _args(tmp))
    assert again.exit_code == 2, again.output
    after = {t["task"]: t for t in json.loads((out / "results.json").read_text())["tasks"]}
    assert after["cartpole"]["run_dir"] == str(cart_dir) and not after["cartpole"]["reused"]
    assert after["cartpole"]["outcome"] == "ok" and "cartpole: resuming" in again.output
    assert after["cartpole"]["best"] == before[0]["best"]  # nothing was retrained
    assert after["pendulum"]["reused"] and "pendulum (finished earlier)" in again.output
    assert len(list((out / "runs" / "cartpole").iterdir())) == 1
    assert len(list((out / "runs" / "pendulum").iterdir())) == 1
    # different settings make a new run
    changed = runner.invoke(app, _args(tmp, "pendulum", "--seed", "7"))
    assert changed.exit_code == 2
    assert len(list((out / "runs" / "pendulum").iterdir())) == 2


def _row(task: str, sparse: float, human: float, best: float | None, outcome: str = "ok") -> TaskRow:
    def score(x: float | None) -> Score:
        return Score(mean=x, std=0.0, values=[x])

    hns = None if best is None or human == sparse else (best - sparse) / abs(human - sparse)
    return TaskRow(
        task=task,
        outcome=outcome,  # type: ignore[arg-type]
        model="m",
        iterations=5,
        samples=8,
        timesteps=1000,
        eval_seeds=[1000, 1001, 1002],
        sparse=score(sparse),
        human=score(human),
        best=score(best),
        hns=hns,
    )


def test_the_papers_summary_numbers() -> None:
    rows = [
        _row("a", 0.0, 1.0, 2.0),  # HNS 2
        _row("b", 0.0, 1.0, 0.5),  # HNS 0.5, below human
        _row("c", 0.0, 1.0, 9.0),  # HNS 9, clipped to 3
        _row("d", 5.0, 5.0, 5.0),  # human = sparse: HNS undefined, best ≥ human
        _row("e", 0.0, 1.0, None, outcome="error"),
    ]
    h = headline(rows)
    assert (h.tasks, h.evaluated, h.best_ge_human, h.hns_tasks) == (5, 4, 3, 3)
    assert h.share_best_ge_human == pytest.approx(3 / 5)
    assert h.mean_hns == pytest.approx((2 + 0.5 + 9) / 3)
    assert h.mean_hns_clipped == pytest.approx((2 + 0.5 + HNS_CLIP[1]) / 3)
    assert h.models == ["m"]
    lines = summary_lines(h)
    assert "best ≥ human on 3 of 5 tasks (60%); 1 without a final evaluation" in lines
    assert (
        "budget: 5 iterations × 8 samples, 1,000 steps per training, final evaluation over 3 seeds" in lines
    )


def test_the_quality_suite_names_bundled_tasks_with_a_human_and_a_sparse_reward() -> None:
    assert default_suite().resolve() == REPO / "benchmarks" / "quality.yaml"
    from eureka import tasks

    for entry in entries([], load_suite(default_suite()), None):
        task = tasks.load(entry.task)
        # HNS needs both: the human reward to compare with, F's success signal as the sparse one
        assert (task.folder / tasks.HUMAN_REWARD_FILE).is_file(), entry.task
        fitness = ast.parse((task.folder / "fitness.py").read_text())  # not imported: no torch here
        functions = {f.name for f in fitness.body if isinstance(f, ast.FunctionDef)}
        assert "success_signal" in functions, entry.task


def test_a_task_listed_twice_with_other_options_is_two_runs_of_the_bench(tmp_path: Path) -> None:
    """Each entry runs with its own options (here the seed), not the last entry's twice (which the
    second entry would then have read back as its own finished run)."""
    path = cartpole_twice(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["bench", "quality", "--suite", str(path), "--out", str(out)])
    rows = json.loads((out / "results.json").read_text())["tasks"]
    assert len(rows) == 2 and rows[0]["run_dir"] != rows[1]["run_dir"], result.output
    seeds = sorted(yaml.safe_load((Path(r["run_dir"]) / "config.yaml").read_text())["seed"] for r in rows)
    assert seeds == [1, 2]
