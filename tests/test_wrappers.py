"""`eureka.wrap` / `wrap_vector`: a found reward replaces the environment's in gymnasium, in
gymnasium.vector and in SB3's VecEnv (PPO trains on it); the totals equal compute_reward on the
same states, and the components are in info."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import REPO
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

import eureka
from eureka.errors import ConfigError
from eureka.training.wrappers import COMPONENTS, ENV_REWARD

PENDULUM_REWARD = """
import torch


def compute_reward(pole_angle: torch.Tensor, prev_pole_angle: torch.Tensor, action: torch.Tensor):
    upright = torch.cos(pole_angle)
    turn = -(pole_angle - prev_pole_angle).abs()
    torque = -0.001 * action[:, 0] ** 2
    return upright + turn + torque, {"upright": upright, "turn": turn, "torque": torque}
"""


def _expected(state: dict[str, Any], prev: dict[str, Any], action: np.ndarray) -> float:
    """PENDULUM_REWARD by hand, in numpy."""
    a, p = float(state["pole_angle"]), float(prev["pole_angle"])
    return float(np.float32(np.cos(a)) - np.float32(abs(a - p)) - np.float32(0.001 * float(action[0]) ** 2))


def _human_reward(task: str) -> Any:
    spec = importlib.util.spec_from_file_location("human", REPO / "tasks" / task / "human_reward.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compute_reward


@pytest.fixture
def reward_file(tmp_path: Path) -> Path:
    path = tmp_path / "best_reward.py"
    path.write_text(PENDULUM_REWARD)
    return path


def test_wrap_replaces_the_reward_and_reports_components(reward_file: Path) -> None:
    env = eureka.wrap(gym.make("Pendulum-v1"), reward=reward_file, task="pendulum")
    assert isinstance(env, gym.Wrapper)
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(50):
        action = env.action_space.sample()
        _, reward, _, _, info = env.step(action)
        assert set(info[COMPONENTS]) == {"upright", "turn", "torque"}
        assert reward == pytest.approx(sum(info[COMPONENTS].values()), abs=1e-5)
        assert reward == pytest.approx(_expected(info["state"], info["prev_state"], action), abs=1e-5)
        assert isinstance(info[ENV_REWARD], float) and info[ENV_REWARD] != reward


def test_wrap_with_the_tasks_human_reward_matches_compute_reward() -> None:
    human = _human_reward("cartpole")
    env = eureka.wrap(gym.make("CartPole-v1"), reward="human", task="cartpole")
    env.reset(seed=1)
    for step in range(30):
        _, reward, terminated, truncated, info = env.step(step % 2)
        fields = {k: torch.tensor([float(info["state"][k])]) for k in ("pole_angle", "pole_angular_velocity")}
        total, parts = human(cart_position=torch.tensor([float(info["state"]["cart_position"])]), **fields)
        assert reward == pytest.approx(float(total[0]), abs=1e-6)
        assert info[COMPONENTS] == pytest.approx({k: float(v[0]) for k, v in parts.items()}, abs=1e-6)
        if terminated or truncated:
            break


class _Record(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[np.ndarray, list[dict[str, Any]], np.ndarray]] = []

    def _on_step(self) -> bool:
        self.seen.append((self.locals["rewards"].copy(), self.locals["infos"], self.locals["actions"].copy()))
        return True


@pytest.mark.slow
def test_sb3_ppo_trains_on_the_vector_wrapper(reward_file: Path) -> None:
    venv = DummyVecEnv([lambda: eureka.state_env(gym.make("Pendulum-v1"), "pendulum") for _ in range(4)])
    venv = eureka.wrap_vector(venv, reward=reward_file, task="pendulum")
    record = _Record()
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256, callback=record)
    assert model.num_timesteps == 256 and len(record.seen) == 64
    checked = 0
    for rewards, infos, actions in record.seen:
        for i, info in enumerate(infos):
            assert set(info[COMPONENTS]) == {"upright", "turn", "torque"}
            clipped = np.clip(actions[i], -2.0, 2.0)  # SB3 clips actions to the Box before stepping
            assert rewards[i] == pytest.approx(
                _expected(info["state"], info["prev_state"], clipped), abs=1e-5
            )
            checked += 1
    assert checked == 256


def test_a_single_wrapped_env_under_sb3(reward_file: Path) -> None:
    venv = DummyVecEnv(
        [lambda: eureka.wrap(gym.make("Pendulum-v1"), reward=reward_file, task="pendulum")] * 2
    )
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128)
    assert model.num_timesteps == 128


def test_gymnasium_vector_env_and_its_autoreset() -> None:
    human = _human_reward("cartpole")
    envs = gym.vector.SyncVectorEnv(
        [lambda: eureka.state_env(gym.make("CartPole-v1"), "cartpole") for _ in range(3)]
    )
    venv = eureka.wrap_vector(envs, reward="human", task="cartpole")
    venv.reset(seed=0)
    resets = 0
    done = np.zeros(3, dtype=bool)
    for _ in range(60):
        _, rewards, terminated, truncated, infos = venv.step(np.ones(3, dtype=np.int64))  # always push right
        for i in range(3):
            if done[i]:  # gymnasium's next-step autoreset: this step only reset the environment
                assert rewards[i] == 0.0 and infos[COMPONENTS]["alive"][i] == 0.0
                resets += 1
                continue
            state = {k: torch.tensor([float(v[i])]) for k, v in infos["state"].items()}
            total, _ = human(state["pole_angle"], state["pole_angular_velocity"], state["cart_position"])
            assert rewards[i] == pytest.approx(float(total[0]), abs=1e-6)
            assert infos[COMPONENTS]["alive"][i] == 1.0
        done = terminated | truncated
    assert resets >= 3  # pushing one way ends an episode in about 10 steps


def test_clear_errors() -> None:
    plain = DummyVecEnv([lambda: gym.make("CartPole-v1")])
    venv = eureka.wrap_vector(plain, reward="human", task="cartpole")
    venv.reset()
    with pytest.raises(ConfigError, match=r"build each with eureka\.state_env\(env, 'cartpole'\)"):
        venv.step(np.zeros(1, dtype=np.int64))
    with pytest.raises(ConfigError, match=r"reward 'nope\.py' is not a file"):
        eureka.wrap(gym.make("CartPole-v1"), reward="nope.py", task="cartpole")
    with pytest.raises(ConfigError, match=r"use eureka\.wrap for a single environment"):
        eureka.wrap_vector(gym.make("CartPole-v1"), reward="human", task="cartpole")
