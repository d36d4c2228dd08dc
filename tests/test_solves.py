"""Slow: the hand-written human reward solves its task within the task's default budget, and
MuJoCo tasks train and film their rollout. Real trainings; run in CI."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v2 as imageio
import pytest
from test_train import train_json
from typer.testing import CliRunner

from eureka.cli import app

runner = CliRunner()


@pytest.mark.slow
@pytest.mark.parametrize("task", ["cartpole", "mountain_car_continuous", "point_mass", "pendulum"])
def test_human_reward_reaches_the_threshold_with_the_default_budget(task: str) -> None:
    code, out = train_json(task, "--reward", "human")
    assert code == 0, out
    assert out["solved"], out


@pytest.mark.slow
def test_mujoco_task_trains_and_writes_a_video() -> None:
    result = runner.invoke(app, ["train", "reacher", "--timesteps", "1200", "--json"])
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("{")][-1]
    out = json.loads(line)
    assert out["status"] == "ok", out
    video = Path(out["run_dir"]) / out["video_file"]
    frames = imageio.mimread(video)
    assert len(frames) >= 40  # one 50-step episode
    assert frames[0].ndim == 3 and frames[0].std() > 1  # a real picture, not a blank frame
