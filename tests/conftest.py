"""Shared fixtures: every test writes runs into a temp folder and has a fake API key set, so
tests can prove that no secret reaches a worker or a file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import eureka  # noqa: F401  (sets MUJOCO_GL before any test imports MuJoCo's renderer)

# Wide tables in every test process: pytest-xdist's workers set COLUMNS=80, which makes rich cut
# task names, and the CLI's consoles read it once, when eureka.cli is first imported.
os.environ["COLUMNS"] = "250"

FAKE_KEY = "sk-test-FAKE-0123456789abcdef"
FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parent.parent

LONGEST_FILES = (
    "test_hostile.py",  # 172 s in a full run on 2 workers (2-core machine, 575 tests)
    "test_solves.py",  # 125
    "test_loop.py",  # 66
    "test_demo.py",  # 50
    "test_feedback_modes.py",  # 44
    "test_solve_faults.py",  # 43
    "test_critic.py",  # 41
    "test_train.py",  # 32
    "test_scaffold.py",  # 31
    "test_display.py",  # 29
    "test_bench.py",  # 28
    "test_ray.py",  # 27
    "test_sandbox.py",  # 25
    "test_schedule.py",  # 24
    "test_optimise.py",  # 23
)
"""Test files by their time in a full run, longest first; the rest follow in name order. Under
`-n 2 --dist loadfile --no-loadscope-reorder` (pyproject.toml) each worker takes the next file
as it runs low, so the long files go first and the two workers end together (longest
processing time first). xdist's default order, by number of tests, started test_demo (2 tests,
50 s) near the end with the other worker idle: about 30 s of the suite's time."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files keep their order


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EUREKA_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("EUREKA_CACHE_DIR", str(tmp_path / "llm-cache"))
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.delenv("EUREKA_TASKS_PATH", raising=False)
    monkeypatch.chdir(tmp_path)


def write_task(root: Path, name: str, yaml_text: str, files: dict[str, str] | None = None) -> Path:
    """A task folder under `root` with the given task.yaml and extra files."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text(yaml_text)
    for filename, text in (files or {}).items():
        (folder / filename).write_text(text)
    return folder


class QueuedBackend:
    """A fake model (like simonw/llm's MockModel): replies are queued, requests recorded."""

    model = "queued-fake"

    def __init__(self, replies: list[str] | None = None) -> None:
        self.queue: list[str] = list(replies or [])
        self.history: list[list[dict[str, str]]] = []

    def enqueue(self, *replies: str) -> None:
        self.queue.extend(replies)

    def complete(self, messages, n, temperature, call=None):  # type: ignore[no-untyped-def]
        from eureka.llm.client import Completion

        self.history.append(messages)
        if len(self.queue) < n:
            raise AssertionError(f"the fake model was asked for {n} replies, {len(self.queue)} queued")
        out, self.queue = self.queue[:n], self.queue[n:]
        return [Completion(text=t, model=self.model, tokens_in=100, tokens_out=50, cost=0.001) for t in out]


def fenced(code: str, prose: str = "Here is the reward function.") -> str:
    return f"{prose}\n\n```python\n{code.strip()}\n```\n"


def solve_config(**overrides: object) -> Any:
    """A SolveConfig for loop tests: cartpole, a queued fake model, tiny budgets."""
    from eureka.types import SolveConfig

    base: dict[str, object] = {
        "task": "cartpole",
        "model": "queued-fake",
        "iterations": 2,
        "samples": 2,
        "workers": 1,
        "timesteps": 1500,
        "eval_seeds": 1,
        "video": False,
    }
    return SolveConfig.model_validate({**base, **overrides})


def worker_in_process(job: Any) -> Any:
    """The worker's entry point run on `job` in this process (no fork: see
    `eureka.training.worker.main`): the TrainResult it wrote."""
    from eureka.training import worker
    from eureka.training.files import JOB_FILE, METRICS_FILE
    from eureka.types import TrainResult

    job.out_dir.mkdir(parents=True, exist_ok=True)
    (job.out_dir / JOB_FILE).write_text(job.model_dump_json())
    assert worker.main(str(job.out_dir / JOB_FILE)) == 0
    return TrainResult.model_validate_json((job.out_dir / METRICS_FILE).read_text())


def human_job(folder: Path, out_dir: Path, timesteps: int, backend: str, video: bool = False) -> Any:
    """A TrainJob of the task folder's own human reward (a short training in a test)."""
    from eureka import tasks
    from eureka.types import TrainJob

    return TrainJob(
        task_folder=folder,
        reward_file=folder / tasks.HUMAN_REWARD_FILE,
        out_dir=out_dir,
        timesteps=timesteps,
        video=video,
        backend=backend,
    )


def cartpole_twice(folder: Path) -> Path:
    """A suite file listing cartpole twice, seeds 1 and 2, at a tiny budget with no model."""
    import yaml

    suite = {
        "defaults": {"model": "none", "iterations": 1, "timesteps": 1000, "eval_seeds": 0, "video": False},
        "tasks": [{"task": "cartpole", "options": {"seed": 1}}, {"task": "cartpole", "options": {"seed": 2}}],
    }
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path
