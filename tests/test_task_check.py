"""`eureka tasks check`: every bundled task passes; broken folders get problems that name the fix."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, write_task
from test_tasks import BUNDLED
from typer.testing import CliRunner

from eureka import tasks
from eureka.cli import app
from eureka.training.task_check import check_task
from eureka.training.train import path_note

CARTPOLE = REPO / "tasks" / "cartpole"


ROBOTICS = ("Fetch", "PointMaze", "AntMaze", "Adroit", "HandManipulate")
"""Prefixes of gymnasium-robotics' environment ids (the `robotics` extra)."""


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_task_passes(name: str) -> None:
    spec = yaml.safe_load((REPO / "tasks" / name / "task.yaml").read_text())
    env_py = REPO / "tasks" / name / "env.py"  # a task's own env class may build on one of them
    if spec["env"]["id"].startswith(ROBOTICS) or (
        env_py.exists() and "gymnasium_robotics" in env_py.read_text()
    ):
        pytest.importorskip("gymnasium_robotics", reason="the robotics extra is not installed")
    report = check_task(name)
    assert report.problems == []


def test_custom_env_runs_gymnasium_checker() -> None:
    report = check_task("point_mass")
    assert report.ok
    assert not any("env checker" in note for note in report.notes), report.notes


def _broken(tmp_path: Path, edit: dict[str, object], files: dict[str, str] | None = None) -> Path:
    data = yaml.safe_load((CARTPOLE / "task.yaml").read_text())
    data["name"] = "broken"
    for dotted, value in edit.items():
        target = data
        keys = dotted.split(".")
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    contents = {
        "human_reward.py": (CARTPOLE / "human_reward.py").read_text(),
        "fitness.py": (CARTPOLE / "fitness.py").read_text(),
        **(files or {}),
    }
    return write_task(tmp_path, "broken", yaml.safe_dump(data), {k: v for k, v in contents.items() if v})


def test_missing_human_reward(tmp_path: Path) -> None:
    folder = _broken(tmp_path, {}, {"human_reward.py": ""})
    report = check_task(str(folder))
    assert report.problems == [
        f"{folder}: missing human_reward.py; write the hand-designed reward there as "
        "compute_reward(...) in the reward contract"
    ]


def test_observation_index_out_of_range(tmp_path: Path) -> None:
    folder = _broken(tmp_path, {"state.cart_velocity.obs": 7})
    assert check_task(str(folder)).problems == [
        f"{folder / 'task.yaml'}: state.cart_velocity.obs 7 is outside the observation (size 4)"
    ]


def test_field_without_source_needs_state_py(tmp_path: Path) -> None:
    folder = _broken(tmp_path, {"state.tip": {"description": "tip height", "unit": "m"}})
    assert check_task(str(folder)).problems == [
        f"{folder / 'task.yaml'}: state field(s) tip have no 'obs' index, so state.py must define "
        "get_state(env, obs) returning them"
    ]


def test_unknown_hyperparameter_and_wrong_algorithm(tmp_path: Path) -> None:
    folder = _broken(tmp_path, {"training.algorithm": "SAC", "training.hyperparams": {"lerning_rate": 0.1}})
    assert check_task(str(folder)).problems == [
        f"{folder / 'task.yaml'}: training.algorithm SAC needs a continuous (Box) action space, "
        "the environment has Discrete(2); use PPO or A2C",
        f"{folder / 'task.yaml'}: training.hyperparams.lerning_rate is not a SAC argument "
        "(did you mean 'learning_rate'?)",
    ]


def test_hyperparameter_values_that_would_fail_deep_in_training_are_named(tmp_path: Path) -> None:
    """Not 'only integer tensors of a single element can be converted to an index' from SB3's
    rollout, after the sandbox and the smoke test: the value and what it must be, before a run."""
    bad = {
        "gamma": "fast",
        "n_epochs": -3,
        "n_steps": 2.5,
        "learning_rate": "lin_x",
        "clip_range": "lin_0.2",
        "gae_lambda": 1.5,
        "normalize_advantage": 1,
        "ent_coef": 0.01,
    }
    folder = _broken(tmp_path, {"training.hyperparams": bad})
    where = folder / "task.yaml"
    lin = "must be a number (or lin_<number>, a linear schedule)"
    expected = [  # in the order of the task.yaml written (keys sorted)
        f"{where}: training.hyperparams.gae_lambda: 1.5 must be in [0, 1]",
        f"{where}: training.hyperparams.gamma: 'fast' must be a number",
        f"{where}: training.hyperparams.learning_rate: 'lin_x' {lin}",
        f"{where}: training.hyperparams.n_epochs: -3 must be at least 1",
        f"{where}: training.hyperparams.n_steps: 2.5 must be a whole number",
        f"{where}: training.hyperparams.normalize_advantage: 1 must be true or false",
    ]
    assert check_task(str(folder)).problems == expected
    from eureka.training.sb3 import hyperparam_problems

    # RL-Zoo's forms SB3 takes: a train frequency with its unit, as many gradient steps as env steps
    assert (
        hyperparam_problems("SAC", {"train_freq": [1, "episode"], "gradient_steps": -1, "ent_coef": "auto"})
        == []
    )
    assert hyperparam_problems("PPO", {"learning_rate": "3e-4"}) == []  # YAML's text for 3e-4: the number
    from conftest import human_job

    from eureka.training.jobs import run_training

    result = run_training(human_job(folder, tmp_path / "run", 256, "sb3"))
    assert result.status == "crashed"
    assert result.message == f"{where}: " + "; ".join(e.removeprefix(f"{where}: ") for e in expected)


def test_human_reward_breaking_the_contract(tmp_path: Path) -> None:
    bad = "import torch\n\ndef compute_reward(pole_angle):\n    return torch.zeros(3), {}\n"
    folder = _broken(tmp_path, {}, {"human_reward.py": bad})
    assert check_task(str(folder)).problems == [
        f"{folder / 'human_reward.py'}: the total reward must have shape [N] = [64] "
        "(one value per environment), got [3]"
    ]


def test_signal_metric_needs_success_signal(tmp_path: Path) -> None:
    folder = _broken(tmp_path, {"fitness.metric": "signal_mean"}, {"fitness.py": "X = 1\n"})
    assert check_task(str(folder)).problems == [
        f"{folder / 'fitness.py'}: fitness.metric 'signal_mean' needs success_signal(...) there"
    ]


def test_unknown_gymnasium_id(tmp_path: Path) -> None:
    folder = _broken(tmp_path, {"env.id": "CartPole-v9"})
    problems = check_task(str(folder)).problems
    assert len(problems) == 1
    assert problems[0].startswith(f"{folder / 'task.yaml'}: env.id 'CartPole-v9': ")


@pytest.mark.parametrize("steps", [0, -1])
def test_a_time_limit_below_one_step_is_a_problem(steps: int, tmp_path: Path) -> None:
    """It passed the check, then crashed the batched training and was ignored by SB3's."""
    folder = _broken(tmp_path, {"env.max_episode_steps": steps})
    assert check_task(str(folder)).problems == [
        f"{folder / 'task.yaml'}: key 'env.max_episode_steps': Input should be greater than or equal to 1"
    ]


def test_misspelled_success_signal_parameter_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    fitness = (CARTPOLE / "fitness.py").read_text().replace("pole_angle", "pole_angel")
    folder = _broken(tmp_path, {}, {"fitness.py": fitness})
    problem = (
        f"{folder / 'fitness.py'}: success_signal has parameter(s) pole_angel that are not state fields; "
        "valid names: cart_position, cart_velocity, pole_angle, pole_angular_velocity, prev_cart_position, "
        "prev_cart_velocity, prev_pole_angle, prev_pole_angular_velocity, action"
    )
    assert check_task(str(folder)).problems == [problem]
    result = CliRunner().invoke(app, ["tasks", "check", str(folder)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and problem in result.output


def test_the_training_path_and_why_are_noted(tmp_path: Path) -> None:
    assert (
        "training path: batched PPO on a native batched port of CartPole-v1" in check_task("cartpole").notes
    )
    hopper = tasks.load("hopper")
    assert path_note(hopper) == "training path: batched PPO on a native batched port of Hopper-v5"
    assert path_note(hopper, "sb3") == "training path: SB3 PPO (--backend sb3)"
    on_sb3 = tasks.load(str(_broken(tmp_path / "sb3", {"training.backend": "sb3"})))
    assert path_note(on_sb3) == "training path: SB3 PPO (training.backend: sb3 in task.yaml)"
    ant = tasks.load("ant")
    assert path_note(ant) == "training path: batched PPO on a native batched port of Ant-v5"
    assert path_note(ant, "sb3") == "training path: SB3 SAC (--backend sb3)"
    no_section = tasks.load(str(_broken(tmp_path / "none", {"training.batched": None})))
    assert path_note(no_section) == "training path: SB3 PPO (no training.batched section in task.yaml)"
    fallback = _broken(tmp_path, {"env.id": "CartPole-v0"})
    assert check_task(str(fallback)).notes == [
        "training path: batched PPO on the gymnasium fallback: no batched port of CartPole-v0 "
        "(set env.batched in task.yaml to add one)"
    ]


def test_unknown_env_without_robotics_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "gymnasium_robotics", None)  # as if not installed
    folder = _broken(tmp_path, {"env.id": "FetchNope-v9"})
    (problem,) = check_task(str(folder)).problems
    assert problem.startswith(f"{folder / 'task.yaml'}: env.id 'FetchNope-v9': ")
    assert problem.endswith(
        "(gymnasium-robotics is not installed; its environments need pip install 'eureka-rewards[robotics]')"
    )


UNTRAINABLE = '''
import gymnasium as gym
import numpy as np


class Cart(gym.Env):
    """Four numbers like CartPole's; `nan_at` makes the observation NaN at that step."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)
    nan_at = 0

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.full(4, np.nan if self.t == self.nan_at else 0.1, np.float32)
        return obs, 1.0, self.t >= 20, False, {}


class NanCart(Cart):
    nan_at = 7


class Unbounded(Cart):
    action_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)


class NanRewardCart(Cart):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, float("nan") if self.t == 7 else reward, terminated, truncated, info


class OldStepCart(Cart):
    """Written for the old gym API: step returns (obs, reward, done, info)."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated or truncated, info


class OldResetCart(Cart):
    def reset(self, seed=None, options=None):
        return super().reset(seed=seed)[0]


class SilentCart(Cart):
    """Renders nothing: trains, but its runs have no videos."""

    metadata = {}
'''


@pytest.mark.parametrize(
    ("cls", "problem"),
    [
        (
            "NanCart",
            "the environment returned an observation that is not finite (nan at index 0, step 7 of a random "
            "rollout): the policy cannot learn from NaN or infinite inputs; fix the environment, or clip the "
            "observation in env.py",
        ),
        (
            "Unbounded",
            "the action space Box(-inf, inf, (2,), float32) has bounds that are not finite: PPO, SAC, "
            "TD3 and A2C sample and clip actions within them; give the Box finite low and high in env.py "
            "(the range the actuators really take)",
        ),
        (
            "OldStepCart",
            "the environment env:OldStepCart: step() returned tuple of 4; gymnasium's API returns "
            "(observation, reward, terminated, truncated, info): an environment written for the old gym "
            "API returns 4, with done in place of terminated and truncated",
        ),
        (
            "OldResetCart",
            "the environment env:OldResetCart: reset() returned ndarray; gymnasium's API returns "
            "(observation, info): an environment written for the old gym API returns only the observation",
        ),
        (
            "NanRewardCart",
            "the environment's step returned a reward that is not one finite number (nan at step 7 of a "
            "random rollout): F and training need one finite float per step; fix the reward in the "
            "environment",
        ),
    ],
)
def test_an_environment_no_policy_can_train_in_is_a_problem(cls: str, problem: str, tmp_path: Path) -> None:
    """Found before training, where SB3 would say 'Expected parameter logits ... invalid values'
    or assert on the bounds."""
    folder = _broken(tmp_path, {"env.id": f"env:{cls}", "env.max_episode_steps": 50}, {"env.py": UNTRAINABLE})
    report = check_task(str(folder))
    assert problem in report.problems, report.problems


def test_an_environment_that_cannot_render_is_a_note_not_a_problem(tmp_path: Path) -> None:
    """It trains (with no videos); gymnasium's render check failed the whole task check."""
    folder = _broken(
        tmp_path, {"env.id": "env:SilentCart", "env.max_episode_steps": 50}, {"env.py": UNTRAINABLE}
    )
    report = check_task(str(folder))
    assert report.ok, report.problems
    assert any(
        n.startswith("gymnasium's env checker, rendering: ") and "runs will have no rollout videos" in n
        for n in report.notes
    ), report.notes


def test_an_environment_with_no_time_limit_is_a_problem(tmp_path: Path) -> None:
    """A policy that never reaches a terminal state would be evaluated forever (CliffWalking-v1
    registers no limit); `tasks new` writes one for such ids."""
    folder = _broken(tmp_path, {"env.id": "env:Cart", "env.max_episode_steps": None}, {"env.py": UNTRAINABLE})
    problem = (
        f"{folder / 'task.yaml'}: the environment has no time limit, so an episode of a policy that never "
        "reaches a terminal state never ends (its evaluation would wait forever); set env.max_episode_steps"
    )
    assert problem in check_task(str(folder)).problems
    limited = _broken(
        tmp_path / "limited", {"env.id": "env:Cart", "env.max_episode_steps": 50}, {"env.py": UNTRAINABLE}
    )
    assert not [p for p in check_task(str(limited)).problems if "time limit" in p]


def test_keyword_field_names_and_a_discrete_action_space_not_from_zero_are_problems(tmp_path: Path) -> None:
    folder = _broken(tmp_path, {"state.lambda": {"obs": 0, "description": "a keyword"}})
    where = folder / "task.yaml"
    assert (
        f"{where}: state field 'lambda' must be a Python identifier (not a keyword) other than 'action' "
        "that does not start with 'prev_'"
    ) in check_task(str(folder)).problems
    shifted = UNTRAINABLE + "\n\nclass FromOne(Cart):\n    action_space = gym.spaces.Discrete(3, start=1)\n"
    folder = _broken(
        tmp_path / "shifted", {"env.id": "env:FromOne", "env.max_episode_steps": 50}, {"env.py": shifted}
    )
    assert (
        "the action space Discrete(3, start=1) starts at 1: the policies act in 0..n-1; make the "
        "environment's Discrete start at 0 (and add the offset in env.py)"
    ) in check_task(str(folder)).problems


@pytest.mark.parametrize(
    ("returns", "problem"),
    [
        ('float("nan")', "episode_fitness returned nan; it must return the episode's F as one finite number"),
        (
            "episode.states['pole_angle'][9999]",
            "episode_fitness: running the task's code raised IndexError: index 9999 is out of bounds for "
            "axis 0 with size ",
        ),
        ("float(episode.length + episode.env_rewards.sum())", None),
    ],
)
def test_a_custom_fitness_is_run_on_an_episode_of_the_rollout(
    returns: str, problem: str | None, tmp_path: Path
) -> None:
    """Found by tasks check, not after a training's worth of steps."""
    fitness = (CARTPOLE / "fitness.py").read_text()
    own = f"def episode_fitness(episode):\n    return {returns}\n\n\n"
    folder = _broken(tmp_path, {"fitness.metric": "custom"}, {"fitness.py": own + fitness})
    problems = check_task(str(folder)).problems
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith(f"{folder / 'fitness.py'}: {problem}"), problems
