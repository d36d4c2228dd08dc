"""Take a found reward home: gymnasium and SB3 wrappers that replace an environment's reward
with a reward file in the reward contract and put its components into `info`.

These run the reward's code in *your* process: eureka itself never executes generated code
outside its sandbox, but calling `wrap` is you choosing to train with a reward you have read
(e.g. a run's `best_reward.py`) in your own training process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from eureka import tasks
from eureka.errors import ConfigError
from eureka.reward.contract import RewardFunction, compile_reward
from eureka.training.envs import StateExtractor, StateWrapper, batch_tensors
from eureka.types import Task

COMPONENTS = "reward_components"
"""The info key holding the reward's components (a dict of floats; of arrays in a vector env)."""
ENV_REWARD = "env_reward"
"""The info key holding the environment's own reward, which the found one replaced."""


def _task(task: str | Path | Task) -> Task:
    return task if isinstance(task, Task) else tasks.load(str(task))


def load_reward(reward: str | Path, task: Task) -> RewardFunction:
    """The reward file (or 'human', the task's own) compiled and bound to the task's state fields."""
    path = task.file(tasks.HUMAN_REWARD_FILE) if str(reward) == "human" else Path(reward)
    if path is None or not path.is_file():
        raise ConfigError(f"reward {str(reward)!r} is not a file; give a path to a .py file, or 'human'")
    return compile_reward(path.read_text(), path.name, list(task.spec.state), str(path.resolve()))


def state_env(env: gym.Env[Any, Any], task: str | Path | Task) -> StateWrapper:
    """`env` with the task's named state fields in every info (`state`, `prev_state`): build the
    sub-environments of a vector env this way for `wrap_vector`."""
    return StateWrapper(env, StateExtractor(_task(task)))


class RewardWrapper(gym.Wrapper[Any, Any, Any, Any]):
    """An environment whose reward is the given reward function's, computed from the task's named
    state fields; `info["reward_components"]` holds its components and `info["env_reward"]` the
    environment's own reward."""

    def __init__(
        self, env: gym.Env[Any, Any], reward: str | Path, task: str | Path | Task, device: str = "cpu"
    ) -> None:
        spec = _task(task)
        super().__init__(state_env(env, spec))
        self.reward_fn = load_reward(reward, spec)
        self.fields = spec.spec.state
        self.device = torch.device(device)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, env_reward, terminated, truncated, info = self.env.step(action)
        batch = batch_tensors([info], np.asarray([action]), self.reward_fn.params, self.fields, self.device)
        total, components = self.reward_fn(batch, 1)
        info[ENV_REWARD] = env_reward
        info[COMPONENTS] = {k: float(v[0]) for k, v in components.items()}
        return obs, float(total[0]), terminated, truncated, info


def wrap(
    env: gym.Env[Any, Any], reward: str | Path, task: str | Path | Task, device: str = "cpu"
) -> RewardWrapper:
    """`env` with its reward replaced by `reward` (a file in the reward contract, e.g. a run's
    best_reward.py, or 'human') over the named state fields of `task` (a task name or folder).

    This executes the reward file's code in the calling process, outside eureka's sandbox: use it
    with rewards you have read. Works under any vector env too (the reward is then computed per
    sub-environment); `wrap_vector` computes it once per batched step instead."""
    return RewardWrapper(env, reward, task, device)


def _per_env_infos(infos: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """gymnasium.vector's dict of arrays as one info per sub-environment (state and prev_state)."""
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for key in ("state", "prev_state"):
        for field, values in infos.get(key, {}).items():
            for i in range(n):
                out[i].setdefault(key, {})[field] = values[i]
    return out


class _VectorReward:
    """The reward of a batched step from per-sub-environment infos carrying the state fields."""

    def __init__(self, reward: str | Path, task: str | Path | Task, device: str) -> None:
        spec = _task(task)
        self.task = spec
        self.fn = load_reward(reward, spec)
        self.fields = spec.spec.state
        self.device = torch.device(device)

    def __call__(
        self, infos: list[dict[str, Any]], actions: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if infos and "state" not in infos[0]:
            raise ConfigError(
                "the sub-environments' infos carry no 'state': build each with "
                f"eureka.state_env(env, {self.task.name!r}) before vectorising"
            )
        batch = batch_tensors(infos, actions, self.fn.params, self.fields, self.device)
        total, components = self.fn(batch, len(infos))
        return total.cpu().numpy().astype(np.float32), {k: v.cpu().numpy() for k, v in components.items()}


class RewardVectorEnv(gym.vector.VectorWrapper):
    """A gymnasium vector env whose reward is computed once per batched step (sub-environments
    made with `state_env`); `infos["reward_components"]` holds a dict of arrays. A sub-environment
    that is resetting (gymnasium's next-step autoreset) gets reward 0, as from gymnasium."""

    def __init__(
        self, env: gym.vector.VectorEnv, reward: str | Path, task: str | Path | Task, device: str = "cpu"
    ) -> None:
        super().__init__(env)
        self.reward = _VectorReward(reward, task, device)

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        obs, env_rewards, terminated, truncated, infos = self.env.step(actions)
        n = self.num_envs
        stepped = np.asarray(infos.get("_prev_state", np.zeros(n, dtype=bool)), dtype=bool)
        total = np.zeros(n, dtype=np.float32)
        components: dict[str, np.ndarray] = {}
        if stepped.any():
            per_env = _per_env_infos(infos, n)
            index = np.flatnonzero(stepped)
            values, parts = self.reward([per_env[i] for i in index], np.asarray(actions)[index])
            total[index] = values
            for name, value in parts.items():
                components[name] = np.zeros(n, dtype=np.float32)
                components[name][index] = value
        infos[ENV_REWARD] = env_rewards
        infos[COMPONENTS] = components
        return obs, total, terminated, truncated, infos


def _sb3_wrapper(venv: Any, reward: str | Path, task: str | Path | Task, device: str) -> Any:
    from stable_baselines3.common.vec_env import VecEnvWrapper

    class RewardVecEnv(VecEnvWrapper):
        """An SB3 VecEnv whose reward is computed once per batched step; every info gets
        `reward_components` and `env_reward`. Sub-environments made with `state_env`."""

        def __init__(self) -> None:
            super().__init__(venv)
            self.reward = _VectorReward(reward, task, device)
            self._actions = np.zeros(0)

        def reset(self) -> Any:
            return self.venv.reset()

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = actions
            self.venv.step_async(actions)

        def step_wait(self) -> Any:
            obs, env_rewards, dones, infos = self.venv.step_wait()
            total, components = self.reward(list(infos), self._actions)
            for i, info in enumerate(infos):  # SB3 keeps the step's info (state before autoreset)
                info[ENV_REWARD] = float(env_rewards[i])
                info[COMPONENTS] = {k: float(v[i]) for k, v in components.items()}
            return obs, total, dones, infos

    return RewardVecEnv()


def wrap_vector(venv: Any, reward: str | Path, task: str | Path | Task, device: str = "cpu") -> Any:
    """A vector env (gymnasium.vector or SB3's VecEnv) whose reward is `reward`, computed once per
    batched step for all sub-environments, which must be made with `state_env(env, task)`.

    Like `wrap`, this executes the reward file's code in the calling process."""
    if isinstance(venv, gym.vector.VectorEnv):
        return RewardVectorEnv(venv, reward, task, device)
    from stable_baselines3.common.vec_env import VecEnv

    if isinstance(venv, VecEnv):
        return _sb3_wrapper(venv, reward, task, device)
    raise ConfigError(
        f"wrap_vector takes a gymnasium.vector.VectorEnv or an SB3 VecEnv, got {type(venv).__name__}; "
        "use eureka.wrap for a single environment"
    )
