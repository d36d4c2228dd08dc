"""Benchmark pipelines `skrl` and `rsl-rl`: the PPO of those libraries on the same batched
environment, the same human reward, the same episode scoring and the same settings (the task's
`training.batched` section) as eureka's batched path, so that `bench/speed.py` shows what
eureka's own PPO (`eureka/training/ppo.py`) buys over a maintained library (issue 8).

Optional: `pip install skrl rsl-rl-lib`. Each library runs through its own trainer
(`SequentialTrainer`, `OnPolicyRunner`); only the environment adapter is ours. Differences that
are the libraries' own, not ours: neither normalises rewards (skrl standardises value targets
instead, as its examples do), skrl bootstraps truncated episodes from the observation after the
reset, and rsl-rl has no categorical policy, so it cannot train a task with discrete actions.
Their final F is the mean score of the last 20 training episodes (no separate evaluation).
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from eureka import tasks
from eureka.reward.contract import compile_reward
from eureka.training.batched import Rollout
from eureka.training.fitness import BatchedEpisodes, Fitness
from eureka.training.session import SolveClock
from eureka.training.sim.registry import make_batched
from eureka.types import BatchedSpec, Status, Task, TrainResult

LIBRARIES = ("skrl", "rsl-rl")


class _Solved(Exception):
    """Raised from the environment to end a library's training loop at the threshold."""


class _Run:
    """The task's batched env under its human reward, scored like the batched path."""

    def __init__(self, task: Task, num_envs: int, seed: int, sim_threads: int, budget: int) -> None:
        self.task = task
        self.device = torch.device("cpu")
        self.env = make_batched(self.task, num_envs, self.device, seed, threads=sim_threads)
        self.fitness = Fitness(self.task)
        fields = list(self.task.spec.state)
        reward = compile_reward((task.folder / "human_reward.py").read_text(), "human_reward.py", fields)
        self.rollout = Rollout(self.task, self.env, self.fitness, reward, None, self.device)
        self.tracker = BatchedEpisodes(
            num_envs, self.env.max_episode_steps, self.fitness.needs_states, self.device
        )
        self.clock = SolveClock(self.task.spec.fitness.threshold)
        self.budget = budget
        self.steps = 0
        self.seed = seed

    @property
    def num_envs(self) -> int:
        return self.env.num_envs

    @property
    def observation_space(self) -> gym.spaces.Box:
        return gym.spaces.Box(-math.inf, math.inf, (self.env.obs_dim,))

    @property
    def action_space(self) -> gym.spaces.Space[Any]:
        spec = self.env.action
        if spec.discrete is not None:
            return gym.spaces.Discrete(spec.discrete)
        return gym.spaces.Box(np.array(spec.low, np.float32), np.array(spec.high, np.float32))

    def reset(self) -> torch.Tensor:
        self.clock.start = time.monotonic()  # the clock of the training loop, as on the batched path
        return self.rollout.reset(self.seed).clone()  # the rollout updates its own in place

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(next observation, reward, terminated, truncated); raises _Solved at the threshold."""
        if self.env.action.is_discrete:
            actions = actions.reshape(-1).long()
        step, total, _, signal, state, _ = self.rollout.step(actions.detach())
        for _, episode in self.tracker.step(step.reward, step.terminated, step.truncated, signal, state):
            self.clock.on_episode(self.fitness.of(episode), self.steps + self.num_envs)
        self.steps += self.num_envs
        if self.clock.solved:
            raise _Solved
        return self.rollout.obs.clone(), total.float(), step.terminated, step.truncated

    def result(self, library: str) -> TrainResult:
        wall = time.monotonic() - self.clock.start
        recent = self.clock.recent
        return TrainResult(
            status=Status.OK,
            message=f"trained by {library}",
            fitness=sum(recent) / len(recent) if recent else None,
            env_steps=self.steps,
            wall_time=wall,
            steps_per_second=self.steps / max(wall, 1e-9),
            backend=f"{library}:{type(self.env).__name__}",
            solved_after_steps=self.clock.steps,
            solved_after_seconds=self.clock.seconds,
        )


def _skrl(run: _Run, spec: BatchedSpec, timesteps: int, out: Path) -> None:
    from skrl.agents.torch.ppo import PPO, PPO_CFG
    from skrl.envs.wrappers.torch.base import Wrapper
    from skrl.memories.torch import RandomMemory
    from skrl.models.torch import CategoricalMixin, DeterministicMixin, GaussianMixin, Model
    from skrl.resources.preprocessors.torch import RunningStandardScaler
    from skrl.resources.schedulers.torch import KLAdaptiveLR
    from skrl.trainers.torch import SequentialTrainer

    class Env(Wrapper):
        def __init__(self) -> None:
            self._env = self._unwrapped = run
            self._device = run.device

        @property
        def num_envs(self) -> int:
            return run.num_envs

        @property
        def observation_space(self) -> gym.Space[Any]:
            return run.observation_space

        @property
        def action_space(self) -> gym.Space[Any]:
            return run.action_space

        def reset(self) -> tuple[torch.Tensor, dict[str, Any]]:
            return run.reset(), {}

        def step(self, actions: torch.Tensor) -> tuple[Any, ...]:
            obs, reward, terminated, truncated = run.step(actions)
            return obs, reward[:, None], terminated[:, None], truncated[:, None], {}

        def state(self) -> None:
            return None

        def render(self, *args: Any, **kwargs: Any) -> None:
            return None

        def close(self) -> None:
            return None

    def mlp(outputs: int) -> torch.nn.Sequential:
        act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU}[spec.activation]
        layers: list[torch.nn.Module] = []
        width = run.env.obs_dim
        for hidden in spec.hidden:
            layers += [torch.nn.Linear(width, hidden), act()]
            width = hidden
        return torch.nn.Sequential(*layers, torch.nn.Linear(width, outputs))

    env = Env()
    spaces = {"observation_space": env.observation_space, "action_space": env.action_space}

    class Value(DeterministicMixin, Model):
        def __init__(self) -> None:
            Model.__init__(self, **spaces, device=run.device)
            DeterministicMixin.__init__(self)
            self.net = mlp(1)

        def compute(self, inputs: dict[str, Any], role: str = "") -> tuple[torch.Tensor, dict[str, Any]]:
            return self.net(inputs["observations"]), {}

    policy: Model
    if run.env.action.discrete is not None:
        n = run.env.action.discrete

        class Discrete(CategoricalMixin, Model):
            def __init__(self) -> None:
                Model.__init__(self, **spaces, device=run.device)
                CategoricalMixin.__init__(self, unnormalized_log_prob=True)
                self.net = mlp(n)

            def compute(self, inputs: dict[str, Any], role: str = "") -> tuple[torch.Tensor, dict[str, Any]]:
                return self.net(inputs["observations"]), {}

        policy = Discrete()
    else:
        dim = run.env.action.dim

        class Gaussian(GaussianMixin, Model):
            def __init__(self) -> None:
                Model.__init__(self, **spaces, device=run.device)
                GaussianMixin.__init__(self, clip_actions=False)
                self.net = mlp(dim)
                self.log_std = torch.nn.Parameter(torch.full((dim,), spec.init_log_std))

            def compute(self, inputs: dict[str, Any], role: str = "") -> tuple[torch.Tensor, dict[str, Any]]:
                return self.net(inputs["observations"]), {"log_std": self.log_std}

        policy = Gaussian()
    cfg = PPO_CFG(
        rollouts=spec.num_steps,
        learning_epochs=spec.epochs,
        mini_batches=spec.minibatches,
        discount_factor=spec.gamma,
        gae_lambda=spec.gae_lambda,
        learning_rate=spec.learning_rate,
        learning_rate_scheduler=KLAdaptiveLR if spec.desired_kl else None,
        learning_rate_scheduler_kwargs={"kl_threshold": spec.desired_kl} if spec.desired_kl else {},
        observation_preprocessor=RunningStandardScaler if spec.normalize_obs else None,
        observation_preprocessor_kwargs={"size": env.observation_space, "device": run.device},
        value_preprocessor=RunningStandardScaler if spec.normalize_reward else None,
        value_preprocessor_kwargs={"size": 1, "device": run.device},
        grad_norm_clip=spec.max_grad_norm,
        ratio_clip=spec.clip,
        entropy_loss_scale=spec.entropy_coef,
        value_loss_scale=spec.value_coef,
        time_limit_bootstrap=True,
    )
    cfg.experiment.directory = str(out)
    cfg.experiment.write_interval = 0
    cfg.experiment.checkpoint_interval = 0
    agent = PPO(
        models={"policy": policy, "value": Value()},
        memory=RandomMemory(memory_size=spec.num_steps, num_envs=run.num_envs, device=run.device),
        observation_space=env.observation_space,
        action_space=env.action_space,
        device=run.device,
        cfg=cfg,
    )
    trainer_cfg = {
        "timesteps": timesteps // run.num_envs,
        "headless": True,
        "disable_progressbar": True,
        "close_environment_at_exit": False,
    }
    SequentialTrainer(env=env, agents=agent, cfg=trainer_cfg).train()


def _rsl_rl(run: _Run, spec: BatchedSpec, timesteps: int) -> None:
    from rsl_rl.env import VecEnv
    from rsl_rl.runners import OnPolicyRunner
    from tensordict import TensorDict

    if run.env.action.discrete is not None:
        raise ValueError("rsl-rl has no policy for discrete actions")

    def observe(obs: torch.Tensor) -> TensorDict:
        return TensorDict({"policy": obs}, batch_size=[run.num_envs])

    class Env(VecEnv):
        def __init__(self) -> None:
            self.num_envs = run.num_envs
            self.num_actions = run.env.action.dim
            self.max_episode_length = run.env.max_episode_steps
            self.episode_length_buf = torch.zeros(run.num_envs, dtype=torch.long)
            self.device = run.device
            self.cfg: dict[str, Any] = {}
            self.obs = run.reset()

        def get_observations(self) -> TensorDict:
            return observe(self.obs)

        def step(
            self, actions: torch.Tensor
        ) -> tuple[TensorDict, torch.Tensor, torch.Tensor, dict[str, Any]]:
            self.obs, reward, terminated, truncated = run.step(actions)
            return observe(self.obs), reward, terminated | truncated, {"time_outs": truncated.float()}

    model = {"class_name": "MLPModel", "hidden_dims": list(spec.hidden), "activation": spec.activation}
    model["obs_normalization"] = spec.normalize_obs
    distribution = {"class_name": "GaussianDistribution", "init_std": math.exp(spec.init_log_std)}
    cfg = {
        "num_steps_per_env": spec.num_steps,
        "save_interval": 10**9,
        "obs_groups": {"actor": ["policy"], "critic": ["policy"]},
        "algorithm": {
            "class_name": "PPO",
            "num_learning_epochs": spec.epochs,
            "num_mini_batches": spec.minibatches,
            "clip_param": spec.clip,
            "gamma": spec.gamma,
            "lam": spec.gae_lambda,
            "value_loss_coef": spec.value_coef,
            "entropy_coef": spec.entropy_coef,
            "learning_rate": spec.learning_rate,
            "max_grad_norm": spec.max_grad_norm,
            "schedule": "adaptive" if spec.desired_kl else "fixed",
            "desired_kl": spec.desired_kl or 0.01,
        },
        "actor": {**model, "distribution_cfg": distribution},
        "critic": model,
    }
    runner = OnPolicyRunner(Env(), cfg, log_dir=None, device=str(run.device))
    runner.learn(num_learning_iterations=math.ceil(timesteps / (run.num_envs * spec.num_steps)))


def train(library: str, folder: Path, budget: int, seed: int, sim_threads: int, out: Path) -> TrainResult:
    """Train the task's human reward with `library`'s PPO until the threshold or the budget."""
    task = tasks.load(str(folder))
    spec = task.spec.training.batched or BatchedSpec()
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    run = _Run(task, spec.num_envs, seed, sim_threads, budget)
    try:
        with (
            (out / "train.log").open("w") as log,
            contextlib.redirect_stdout(log),
            contextlib.suppress(_Solved),
        ):
            if library == "skrl":
                _skrl(run, spec, budget, out)
            elif library == "rsl-rl":
                _rsl_rl(run, spec, budget)
            else:
                raise ValueError(f"unknown library {library!r}; choose from {', '.join(LIBRARIES)}")
    except ImportError as exc:
        message = f"{library} is not installed ({exc}); pip install skrl rsl-rl-lib"
        return TrainResult(status=Status.CRASHED, message=message)
    except ValueError as exc:
        return TrainResult(status=Status.CRASHED, message=f"{library}: {exc}")
    finally:
        run.env.close()
    return run.result(library)
