"""Spaces other than one Box, and environments that cannot render. Observations with a discrete
part (Discrete, MultiDiscrete, MultiBinary, Tuple, Dict) become one flat numeric vector whose
first entries are the observation's numbers (what state fields read, also from the raw
observation) followed by one-hot blocks for the policy; a part with no numeric form is a clear
error. MultiDiscrete actions train on SB3 and the batched path says so. A user's env.py that
takes no `render_mode` trains without a video."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pytest
import yaml
from conftest import human_job

from eureka import tasks
from eureka.errors import TaskError
from eureka.training.envs import (
    ONE_HOT_LIMIT,
    NumericObservation,
    StateExtractor,
    numeric_observations,
    observation_values,
)
from eureka.training.jobs import run_training
from eureka.training.scaffold import new_task
from eureka.training.session import VIDEO_SIZE, Film, film_env
from eureka.training.sim.gym_vector import GymVector
from eureka.training.task_check import check_task
from eureka.training.wrappers import COMPONENTS, wrap
from eureka.types import Status

MIXED = gym.spaces.Dict(
    {
        "cell": gym.spaces.Discrete(3, start=1),
        "pos": gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float64),
        "dice": gym.spaces.MultiDiscrete([2, 3], start=[0, 5]),
        "flags": gym.spaces.MultiBinary(2),
        "big": gym.spaces.Discrete(ONE_HOT_LIMIT + 1),
    }
)


class _Env(gym.Env[Any, int]):
    """An environment with a given observation space whose observations are the space's samples."""

    action_space = gym.spaces.Discrete(2)

    def __init__(self, space: gym.spaces.Space[Any]) -> None:
        self.observation_space = space
        self.observation_space.seed(0)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        return self.observation_space.sample(), {}

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        return self.observation_space.sample(), 0.0, False, False, {}


def test_numbers_first_then_one_hot_blocks() -> None:
    env = numeric_observations(_Env(MIXED))
    assert isinstance(env, NumericObservation)
    # gymnasium orders a Dict's keys: big, cell, dice, flags, pos
    assert env.values == 1 + 1 + 2 + 2 + 2
    assert env.discrete == {0, 1, 2, 3, 4, 5}
    space = env.observation_space
    assert space.dtype == np.float64  # as wide as the widest Box part
    hot = 3 + 2 + 3  # cell, and dice's two slots; `big` is over the limit, flags are already 0/1
    assert space.shape == (env.values + hot,)
    assert list(space.low[:6]) == [0, 1, 0, 5, 0, 0] and list(space.high[:6]) == [
        ONE_HOT_LIMIT,
        3,
        1,
        7,
        1,
        1,
    ]
    for _ in range(20):
        obs, _ = env.reset()
        raw = env.unwrapped.observation_space.sample()
        wrapped = env.observation(raw)
        assert space.contains(wrapped)
        values = observation_values(MIXED, raw)
        assert np.array_equal(
            wrapped[: env.values], values
        )  # state fields read the same indices raw or wrapped
        assert values[1] == raw["cell"] and list(values[2:4]) == list(raw["dice"])
        cell, dice_a, dice_b = wrapped[8:11], wrapped[11:13], wrapped[13:16]
        assert cell.sum() == dice_a.sum() == dice_b.sum() == 1
        assert cell[raw["cell"] - 1] == 1 and dice_a[raw["dice"][0]] == 1 and dice_b[raw["dice"][1] - 5] == 1
        assert space.contains(obs)


def test_a_dict_of_boxes_is_flattened_as_before() -> None:
    boxes = gym.spaces.Dict({"b": gym.spaces.Box(-1, 1, (2,)), "a": gym.spaces.Box(0, 1, (3,))})
    env = numeric_observations(_Env(boxes))
    assert isinstance(env, gym.wrappers.FlattenObservation)
    box = gym.spaces.Box(-1, 1, (4,))
    plain = _Env(box)
    assert numeric_observations(plain) is plain


def test_a_part_with_no_numbers_names_the_fix() -> None:
    with pytest.raises(
        TaskError,
        match=r"holds Text\(.*convert the observation to numbers with a wrapper in the task folder's env.py",
    ):
        numeric_observations(_Env(gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Text(5)))))


def test_values_outside_the_space_and_spaces_without_numbers_are_named() -> None:
    env = numeric_observations(_Env(gym.spaces.Discrete(3, start=1)))
    with pytest.raises(
        TaskError, match=r"the observation holds 0 for its part Discrete\(3, start=1\), outside"
    ):
        env.observation(0)
    with pytest.raises(TaskError, match=r"holds no numbers"):
        numeric_observations(_Env(gym.spaces.Tuple(())))


def test_state_fields_read_the_raw_and_the_wrapped_observation_alike(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    # the values part of MIXED: big 0, cell 1, dice 2-3, flags 4-5, pos 6-7
    (folder / tasks.TASK_FILE).write_text(
        yaml.safe_dump(
            {
                "name": "mixed",
                "description": "d",
                "env": {"id": "Mixed-v0"},
                "state": {
                    "dice": {"obs": [2, 4], "shape": [2], "description": "the dice"},
                    "pos": {"obs": [6, 8], "shape": [2], "description": "the position"},
                },
                "action": "a",
                "termination": "t",
                "fitness": {"metric": "env_return", "description": "f", "threshold": 0},
                "training": {"algorithm": "PPO", "timesteps": 1000},
            }
        )
    )
    task = tasks.load(str(folder))
    extract = StateExtractor(task)
    raw = _Env(MIXED)
    wrapped = numeric_observations(_Env(MIXED))
    for _ in range(10):
        obs = MIXED.sample()
        mine, theirs = extract(raw, obs), extract(wrapped, wrapped.observation(obs))
        assert list(mine["dice"]) == list(theirs["dice"]) == list(obs["dice"])
        assert np.array_equal(mine["pos"], theirs["pos"]) and np.allclose(mine["pos"], obs["pos"])


def test_a_film_keeps_its_frames_when_rendering_stops(capsys: pytest.CaptureFixture[str]) -> None:
    class Screen:
        metadata: ClassVar[dict[str, int]] = {"render_fps": 15}

    frames = iter([np.zeros((4, 6, 3), np.uint8), np.ones((4, 6), np.uint8), None])
    film = Film(Screen())
    for _ in range(5):
        if not film.full:
            film.step(lambda: next(frames))
    assert film.broken and len(film.frames) == 2  # a grey frame counts; None ends the film
    assert "filming stopped at step 2: render() returned no image" in capsys.readouterr().out

    def raises() -> None:
        raise NotImplementedError("no render")

    film = Film(Screen())
    film.step(raises)
    assert film.broken and film.full and film.frames == []
    assert "render() raised NotImplementedError: no render" in capsys.readouterr().out


def test_film_env_retries_without_a_size_only_for_a_size_error(capsys: pytest.CaptureFixture[str]) -> None:
    sizes: list[object] = []

    def sized(size: tuple[int, int] | None) -> gym.Env[Any, Any]:
        sizes.append(size)
        if size is not None:
            raise TypeError("__init__() got an unexpected keyword argument 'width'")
        return gym.make("CartPole-v1", render_mode="rgb_array")

    made = film_env(sized)
    assert made is not None and sizes == [VIDEO_SIZE, None]
    made.close()

    def broken(size: tuple[int, int] | None) -> gym.Env[Any, Any]:
        raise TypeError("__init__() got an unexpected keyword argument 'render_mode'")

    assert film_env(broken) is None
    assert "video not written: TypeError: __init__() got an unexpected keyword argument 'render_mode'" in (
        capsys.readouterr().out
    )


def test_scaffold_names_each_whole_number(tmp_path: Path) -> None:
    made = new_task("blackjack", "Blackjack-v1", tmp_path)  # Tuple(Discrete(32), Discrete(11), Discrete(2))
    state = yaml.safe_load((made.folder / tasks.TASK_FILE).read_text())["state"]
    assert {name: f["obs"] for name, f in state.items()} == {"obs_0": 0, "obs_1": 1, "obs_2": 2}
    assert "a whole number from 0 to 31" in state["obs_0"]["description"]


DICT_ENV = """
import gymnasium as gym
import numpy as np


class Rover(gym.Env):
    observation_space = gym.spaces.Dict(
        {
            "pos": gym.spaces.Box(-1.0, 1.0, (2,)),
            "mode": gym.spaces.Discrete(3),
            "flags": gym.spaces.MultiBinary(2),
        }
    )
    action_space = gym.spaces.Box(-1.0, 1.0, (2,))

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}
"""


def test_scaffold_names_a_dicts_fields_by_their_keys(tmp_path: Path) -> None:
    """Not obs_0 ... obs_3_4, which left the user to work out gymnasium's key order."""
    (tmp_path / "rover.py").write_text(DICT_ENV)
    made = new_task("rover", f"{tmp_path / 'rover.py'}:Rover", tmp_path / "tasks")
    state = yaml.safe_load((made.folder / tasks.TASK_FILE).read_text())["state"]
    # gymnasium orders a Dict's keys: flags, mode, pos
    assert {name: f["obs"] for name, f in state.items()} == {
        "flags_0": 0,
        "flags_1": 1,
        "mode": 2,
        "pos": [3, 5],
    }
    assert state["mode"]["description"].startswith(
        "mode: Discrete(3) (observation[2]), a whole number from 0 to 2"
    )
    assert state["pos"]["description"] == "pos: Box(-1.0, 1.0, (2,), float32) (TODO: say what it is)"


def _frozen_lake(tmp_path: Path) -> Path:
    """FrozenLake (Discrete(16) observations) scaffolded, then completed as its author would."""
    folder = new_task("lake", "FrozenLake-v1", tmp_path / "tasks").folder
    spec = yaml.safe_load((folder / tasks.TASK_FILE).read_text())
    spec["env"]["kwargs"] = {"is_slippery": False}
    spec["state"] = {"cell": {"obs": 0, "description": "the agent's cell, row * 4 + column; the goal is 15"}}
    spec["fitness"]["threshold"] = 1.0
    spec["training"]["eval_episodes"] = 2
    (folder / tasks.TASK_FILE).write_text(yaml.safe_dump(spec, sort_keys=False))
    (folder / tasks.HUMAN_REWARD_FILE).write_text(
        "import torch\n\n\n"
        "def compute_reward(cell: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:\n"
        "    row = torch.div(cell, 4, rounding_mode='floor')\n"
        "    progress = (row + cell - 4 * row) / 6.0\n"
        "    goal = (cell == 15).float()\n"
        "    return progress + 10.0 * goal, {'progress': progress, 'goal': goal}\n"
    )
    return folder


def test_a_discrete_observation_task_checks_and_its_reward_wraps_the_raw_env(tmp_path: Path) -> None:
    folder = _frozen_lake(tmp_path)
    report = check_task(str(folder))
    assert report.ok, report.problems
    raw = gym.make("FrozenLake-v1", is_slippery=False)  # a user's own env: Discrete observations
    env = wrap(raw, "human", str(folder))
    obs, info = env.reset(seed=0)
    assert obs == 0 and float(info["state"]["cell"]) == 0.0
    _, reward, *_, info = env.step(2)  # right
    assert info["state"]["cell"] == 1.0
    assert info[COMPONENTS] == {"progress": pytest.approx(1 / 6), "goal": 0.0}
    assert reward == pytest.approx(1 / 6)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["batched", "sb3"])
def test_a_discrete_observation_task_trains(backend: str, tmp_path: Path) -> None:
    folder = _frozen_lake(tmp_path)
    result = run_training(human_job(folder, tmp_path / "run", 2048, backend))
    assert result.status == Status.OK, result.message
    assert result.env_steps >= 2048 and {c.name for c in result.components} == {"progress", "goal"}
    cells = {e.final_state["cell"] for e in result.eval_episodes}
    assert cells <= set(range(16))


def test_scaffold_of_a_gymnasium_robotics_id_in_a_fresh_process(tmp_path: Path) -> None:
    pytest.importorskip("gymnasium_robotics", reason="the robotics extra is not installed")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "eureka",
            "tasks",
            "new",
            "umaze",
            "--env",
            "PointMaze_UMaze-v3",
            "--dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    state = yaml.safe_load((tmp_path / "umaze" / tasks.TASK_FILE).read_text())["state"]
    assert len(state) >= 3  # the dict observation (achieved_goal, desired_goal, observation), flattened


MULTI_ENV = """
import gymnasium as gym
import numpy as np


class Knobs(gym.Env):
    \"\"\"Two knobs in {0, 1, 2}; the point drifts by 0.1 toward 2 per step where a knob is at 2.\"\"\"

    observation_space = gym.spaces.Box(-5, 5, (2,), np.float32)
    action_space = gym.spaces.MultiDiscrete([3, 3])

    def __init__(self):  # no render_mode: this env cannot film
        self.x = np.zeros(2, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self.x.copy(), {}

    def step(self, action):
        self.x = np.clip(self.x + 0.1 * (np.asarray(action) - 1), -5, 5).astype(np.float32)
        return self.x.copy(), float(-np.abs(self.x - 2).sum()), False, False, {}
"""


def _knobs(tmp_path: Path) -> Path:
    source = tmp_path / "knobs.py"
    source.write_text(MULTI_ENV)
    made = new_task("knobs", f"{source}:Knobs", tmp_path / "tasks")
    spec = yaml.safe_load((made.folder / tasks.TASK_FILE).read_text())
    assert spec["action"].startswith("MultiDiscrete([3 3]), an integer tensor [N, 2]")
    spec["env"]["max_episode_steps"] = 50
    spec["training"]["eval_episodes"] = 2
    (made.folder / tasks.TASK_FILE).write_text(yaml.safe_dump(spec, sort_keys=False))
    field = next(iter(spec["state"]))
    (made.folder / tasks.HUMAN_REWARD_FILE).write_text(
        "import torch\n\n\n"
        f"def compute_reward({field}: torch.Tensor, action: torch.Tensor) "
        "-> tuple[torch.Tensor, dict[str, torch.Tensor]]:\n"
        f"    near = -({field} - 2.0).abs().sum(dim=1)\n"
        "    return near, {'near': near}\n"
    )
    return made.folder


def test_the_batched_path_names_sb3_for_multidiscrete_actions(tmp_path: Path) -> None:
    task = tasks.load(str(_knobs(tmp_path)))
    with pytest.raises(
        TaskError, match=r"takes Box and Discrete actions, not MultiDiscrete\(\[3 3\]\); .*--backend sb3"
    ):
        GymVector(task, 2)


@pytest.mark.slow
def test_multidiscrete_actions_train_on_sb3_and_an_env_that_cannot_render_trains_without_video(
    tmp_path: Path,
) -> None:
    folder = _knobs(tmp_path)
    job = human_job(folder, tmp_path / "run", 1024, "sb3", video=True)
    result = run_training(job)
    assert result.status == Status.OK, result.message
    assert result.video_file is None and result.env_steps >= 1024
    assert "video not written" in (tmp_path / "run" / "train.log").read_text()
    batched = run_training(job.model_copy(update={"backend": "batched", "out_dir": tmp_path / "run2"}))
    assert batched.status == Status.CRASHED
    assert "the batched path takes Box and Discrete actions, not MultiDiscrete([3 3])" in batched.message
    assert "--backend sb3" in batched.message


SCALAR_ENV = '''
import gymnasium as gym
import numpy as np


class Scalar(gym.Env):
    """One number observed (a Box of shape ()), pushed by the action."""

    def __init__(self, render_mode=None):
        self.observation_space = gym.spaces.Box(-10.0, 10.0, shape=(), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.x = np.float32(0.0)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.x = np.float32(self.np_random.uniform(-5, 5))
        return np.array(self.x, dtype=np.float32), {}

    def step(self, action):
        self.x = np.float32(np.clip(self.x + float(action[0]), -10, 10))
        return np.array(self.x, dtype=np.float32), -abs(float(self.x)), False, False, {}
'''


def test_boxes_that_are_not_flat_are_flattened() -> None:
    scalar = numeric_observations(_Env(gym.spaces.Box(-1.0, 1.0, shape=(), dtype=np.float32)))
    assert scalar.observation_space.shape == (1,)
    obs, _ = scalar.reset()
    assert obs.shape == (1,)
    matrix = numeric_observations(_Env(gym.spaces.Box(-1.0, 1.0, shape=(2, 3), dtype=np.float32)))
    assert matrix.observation_space.shape == (6,)
    flat = _Env(gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32))
    assert numeric_observations(flat) is flat


@pytest.mark.slow
def test_a_scalar_observation_task_scaffolds_checks_and_trains(tmp_path: Path) -> None:
    """It checked as 'obs 0 is outside the observation (size 0)' and crashed SB3's flattening."""
    source = tmp_path / "scalar.py"
    source.write_text(SCALAR_ENV)
    made = new_task("scalar", f"{source}:Scalar", tmp_path / "tasks")
    spec = yaml.safe_load((made.folder / tasks.TASK_FILE).read_text())
    assert {name: f["obs"] for name, f in spec["state"].items()} == {"obs_0": 0}
    spec["env"]["max_episode_steps"] = 50
    spec["training"]["eval_episodes"] = 2
    (made.folder / tasks.TASK_FILE).write_text(yaml.safe_dump(spec, sort_keys=False))
    (made.folder / tasks.HUMAN_REWARD_FILE).write_text(
        "import torch\n\n\n"
        "def compute_reward(obs_0: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:\n"
        "    near = -obs_0.abs()\n"
        "    return near, {'near': near}\n"
    )
    report = check_task(str(made.folder))
    assert report.ok, report.problems
    result = run_training(human_job(made.folder, tmp_path / "run", 1024, "sb3"))
    assert result.status == Status.OK, result.message
    assert result.env_steps >= 1024 and [c.name for c in result.components] == ["near"]
