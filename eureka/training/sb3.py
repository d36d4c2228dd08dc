"""Training stage: a pure function of a TrainJob that trains a policy with stable-baselines3.

Runs inside the sandbox worker. The reward is computed once per batched step for all
environments from the named state fields; its components are summarised per checkpoint.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from stable_baselines3 import A2C, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper, VecNormalize
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from eureka import tasks
from eureka.errors import TaskError
from eureka.reward.contract import RewardError, RewardFunction
from eureka.training.envs import batch_tensors, make_state_env
from eureka.training.files import OBS_STATS_FILE, VIDEO_FILE
from eureka.training.fitness import SIGNAL_METRICS, EpisodeTracker, Fitness
from eureka.training.session import (
    CHECK_STEPS,
    Correlation,
    Film,
    ProgressFile,
    SmokeWatch,
    SolveClock,
    StatsRecorder,
    compile_rewards,
    film_env,
    load_weights,
    partial_result,
    read_saved,
    require_signal,
    smoke_passed,
    smoke_steps,
    trained_result,
)
from eureka.types import EvalEpisode, Status, Task, TrainJob, TrainResult

POLICY_FILE = "policy.zip"
CHECKPOINT_FILE: str | None = None
"""SB3's trainings are not resumed (successive halving runs the batched path)."""
ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"PPO": PPO, "SAC": SAC, "TD3": TD3, "A2C": A2C}
ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU, "gelu": torch.nn.GELU}


class RewardVecEnv(VecEnvWrapper):
    """Replaces the environment's reward by the candidate's, computed once per batched step,
    and measures F on every episode that ends."""

    def __init__(
        self,
        venv: VecEnv,
        task: Task,
        fitness: Fitness,
        reward: RewardFunction | None,
        device: torch.device,
        sparse: bool = False,
    ) -> None:
        """`reward` None: the success signal is the reward when `sparse`, else the env's own."""
        super().__init__(venv)
        self.task = task
        self.fitness = fitness
        self.reward = reward
        self.sparse = sparse and reward is None
        self.device = device
        self.recorder: StatsRecorder | None = None
        self.reference: RewardFunction | None = None
        self.correlation = Correlation()
        self.use_signal = self.sparse or fitness.spec.metric in SIGNAL_METRICS
        if self.sparse:
            require_signal(task, fitness)
        names = list(reward.params) if reward else []
        if self.use_signal and fitness.signal is not None:
            names += [p for p in fitness.signal.params if p not in names]
        self.names = names
        self.tracker = EpisodeTracker(venv.num_envs, fitness.needs_states, self.use_signal)
        self.episodes: list[tuple[float, int]] = []
        self.records: list[EvalEpisode] | None = None
        self.clock: SolveClock | None = None
        self.steps = 0
        """When a list: an EvalEpisode is appended for every episode that ends (evaluation)."""
        self._sums: list[dict[str, float]] = [{} for _ in range(venv.num_envs)]
        self._actions: np.ndarray = np.zeros(0)

    def reset(self) -> Any:
        self.tracker = EpisodeTracker(self.num_envs, self.fitness.needs_states, self.use_signal)
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, env_rewards, dones, infos = self.venv.step_wait()
        n = self.num_envs
        names = self.names + [
            p for p in (self.reference.params if self.reference else []) if p not in self.names
        ]
        batch = batch_tensors(infos, self._actions, names, self.task.spec.state, self.device)
        signal = self.fitness.signal_values(batch, n) if self.use_signal else None
        if self.reward is not None:
            total, components = self.reward(batch, n)
        elif self.sparse:
            assert signal is not None
            total, components = signal, {"success": signal}
        else:
            total, components = torch.as_tensor(env_rewards, dtype=torch.float32), {}
        if self.recorder is not None:
            self.recorder.on_step(total, components)
            if self.reference is not None:
                self.correlation.add(total, self.reference(batch, n)[0])
        signal_np = signal.cpu().numpy() if signal is not None else None
        if self.records is not None:
            for i, sums in enumerate(self._sums):
                sums["__total__"] = sums.get("__total__", 0.0) + float(total[i])
                for name, value in components.items():
                    sums[name] = sums.get(name, 0.0) + float(value[i])
        for i, episode in self.tracker.step(env_rewards, dones, infos, signal_np):
            score = self.fitness.of(episode)
            self.episodes.append((score, episode.length))
            if self.recorder is not None:
                self.recorder.on_episode(score, episode.length)
            if self.clock is not None:
                self.clock.on_episode(score, self.steps + self.num_envs)
            if self.records is not None:
                sums, self._sums[i] = self._sums[i], {}
                total_sum = sums.pop("__total__", 0.0)
                self.records.append(
                    EvalEpisode(
                        length=episode.length,
                        terminated=episode.terminated,
                        fitness=score,
                        success=self.fitness.succeeded(score),
                        final_state={k: _plain(v) for k, v in infos[i]["state"].items()},
                        components={k: v / episode.length for k, v in sums.items()},
                        reward=total_sum / episode.length if self.reward is not None else None,
                    )
                )
        self.steps += self.num_envs
        return obs, total.cpu().numpy().astype(np.float32), dones, infos


class _Checkpoints(BaseCallback):
    """Closes statistics windows and writes progress.json as training goes."""

    def __init__(
        self, recorder: StatsRecorder, progress: ProgressFile, stop: SolveClock | None = None
    ) -> None:
        super().__init__()
        self.recorder = recorder
        self.stop = stop
        self.progress = progress

    def _on_step(self) -> bool:
        self.progress.update(self.num_timesteps, self.recorder, self.recorder.maybe_close(self.num_timesteps))
        return not (self.stop is not None and self.stop.solved)


def _schedule(value: Any) -> Any:
    """RL-Zoo's `lin_<x>`: a linear schedule from x to 0; a number YAML read as text (`3e-4`:
    YAML 1.1 wants `3.0e-4`) as that number."""
    if isinstance(value, str) and value.startswith("lin_"):
        start = float(value[4:])
        return lambda progress: progress * start
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    return value


POSITIVE_INTS = ("n_steps", "batch_size", "n_epochs", "buffer_size")
RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "gamma": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "gae_lambda": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "tau": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "learning_rate": (lambda v: v > 0, "above 0"),
    "clip_range": (lambda v: v > 0, "above 0"),
    "max_grad_norm": (lambda v: v > 0, "above 0"),
}
"""Values a stable-baselines3 argument must take (checked before it trains, not deep in learn)."""


def _number(value: Any) -> float | None:
    """A YAML number (RL-Zoo's `lin_<x>` schedules as x); None for anything else."""
    if isinstance(value, str):
        try:
            return float(value.removeprefix("lin_"))
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def hyperparam_problems(algorithm: str, hyperparams: dict[str, Any]) -> list[str]:
    """What is wrong with the values of `training.hyperparams` for `algorithm` (types by the
    constructor's defaults, ranges of the common arguments); unknown names are tasks check's."""
    params = inspect.signature(ALGORITHMS[algorithm].__init__).parameters
    problems = []
    for key, value in hyperparams.items():
        default = params[key].default if key in params else None
        where = f"training.hyperparams.{key}: {value!r}"
        if isinstance(default, bool):
            if not isinstance(value, bool):
                problems.append(f"{where} must be true or false")
            continue
        number = _number(value)
        if isinstance(value, list | tuple | dict):
            continue  # a structured value (train_freq: [1, episode]): SB3's own to judge
        if isinstance(default, int) and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(f"{where} must be a whole number")
        elif isinstance(default, float) and number is None:
            lin = " (or lin_<number>, a linear schedule)" if key in ("learning_rate", "clip_range") else ""
            problems.append(f"{where} must be a number{lin}")
        elif key in POSITIVE_INTS and isinstance(value, int) and value < 1:
            problems.append(f"{where} must be at least 1")
        elif key in RANGES and number is not None:
            inside, text = RANGES[key]
            if not inside(number):
                problems.append(f"{where} must be {text}")
    return problems


def build_hyperparams(task: Task, n_actions: int) -> dict[str, Any]:
    """The task's hyperparameters as stable-baselines3 constructor arguments."""
    params = {k: _schedule(v) for k, v in task.spec.training.hyperparams.items()}
    policy_kwargs = dict(params.pop("policy_kwargs", {}) or {})
    if isinstance(policy_kwargs.get("activation_fn"), str):
        policy_kwargs["activation_fn"] = ACTIVATIONS[policy_kwargs["activation_fn"]]
    if policy_kwargs:
        params["policy_kwargs"] = policy_kwargs
    noise = params.pop("action_noise_std", None)
    if noise is not None:
        params["action_noise"] = NormalActionNoise(np.zeros(n_actions), float(noise) * np.ones(n_actions))
    return params


def _make_venv(
    task: Task, n: int, seed: int, render_mode: str | None = None, size: tuple[int, int] | None = None
) -> DummyVecEnv:
    venv = DummyVecEnv([lambda: make_state_env(task, render_mode, size) for _ in range(n)])
    venv.seed(seed)
    return venv


def _smoke_test(env: RewardVecEnv, seed: int, steps: int, out_dir: Path) -> None:
    """Random-action steps through the reward, so contract violations fail fast; watched
    (SmokeWatch in `out_dir`), so a smoke test killed at its limit says what was slow."""
    env.action_space.seed(seed)
    with SmokeWatch(out_dir, steps, env.reward) as watch:
        env.reset()
        for i in range(steps):
            env.step(np.stack([env.action_space.sample() for _ in range(env.num_envs)]))
            watch.done = i + 1
    env.episodes.clear()


def _plain(value: np.ndarray) -> float | list[float]:
    arr = np.asarray(value, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else [float(x) for x in arr.reshape(-1)]


def evaluate(
    model: BaseAlgorithm,
    task: Task,
    fitness: Fitness,
    obs_norm: VecNormalize | None,
    episodes: int,
    seed: int,
    video_path: Path | None,
    reward: RewardFunction | None = None,
) -> tuple[list[EvalEpisode], Path | None]:
    """`episodes` deterministic episodes (F, length, final state, the reward's components);
    the first one filmed when asked."""
    filmed = None
    if video_path is not None:
        filmed = film_env(
            lambda size: _make_venv(task, 1, seed + 10_000, "rgb_array", size), lambda v: v.envs[0]
        )
    if filmed is None:
        video_path = None
    base = filmed if filmed is not None else _make_venv(task, 1, seed + 10_000)
    film = Film(base.envs[0])
    tracker = RewardVecEnv(base, task, fitness, reward, torch.device("cpu"))
    tracker.records = []
    env: VecEnv = tracker
    if obs_norm is not None:
        normed = VecNormalize(tracker, training=False, norm_reward=False)
        normed.obs_rms = obs_norm.obs_rms
        env = normed
    obs = cast(np.ndarray, env.reset())
    while len(tracker.episodes) < episodes:
        if video_path is not None and not tracker.episodes:
            film.step(base.envs[0].render)
        action, _ = model.predict(obs, deterministic=True)
        obs = cast(np.ndarray, env.step(action)[0])
    env.close()
    video = film.write(video_path) if video_path is not None else None
    return tracker.records[:episodes], video


def _obs_stats(norm: VecNormalize) -> list[tuple[str, Any]]:
    """(prefix, RunningMeanStd) of each observation normaliser: one, or one per key of a Dict."""
    rms = norm.obs_rms
    return [(f"{key}.", r) for key, r in rms.items()] if isinstance(rms, dict) else [("", rms)]


def _save_obs_stats(norm: VecNormalize, path: Path) -> None:
    arrays: dict[str, Any] = {}
    for prefix, rms in _obs_stats(norm):
        arrays.update(
            {f"{prefix}mean": rms.mean, f"{prefix}var": rms.var, f"{prefix}count": np.asarray(rms.count)}
        )
    with path.open("wb") as fh:
        np.savez(fh, **arrays)


def _load_obs_stats(norm: VecNormalize, path: Path) -> None:
    """`_save_obs_stats`' arrays into `norm` (no pickle; shapes checked)."""
    with np.load(io.BytesIO(read_saved(path)), allow_pickle=False) as saved:
        for prefix, rms in _obs_stats(norm):
            mean, var = saved[prefix + "mean"], saved[prefix + "var"]
            if mean.shape != rms.mean.shape or var.shape != rms.var.shape:
                raise ValueError(
                    f"{path.name}: observation statistics of shape {mean.shape}, not {rms.mean.shape}"
                )
            rms.mean, rms.var = mean.astype(np.float64), var.astype(np.float64)
            rms.count = float(saved[prefix + "count"])


def score_saved(job: TrainJob, task: Task, device: torch.device) -> tuple[list[EvalEpisode], Path | None]:
    """The evaluation episodes (and the video, when the job films) of the policy the job's
    training saved, measured with no reward: the policy's parameters (policy.pth in policy.zip)
    read with `torch.load`'s `weights_only` and the observation statistics from OBS_STATS_FILE,
    into a model built from the task's own configuration; nothing the training wrote is
    unpickled (`eureka.training.scoring`)."""
    spec = task.spec.training
    venv = _make_venv(task, 1, job.seed)
    env: VecEnv = venv
    norm: VecNormalize | None = None
    if spec.normalize:
        norm = VecNormalize(venv, training=False, norm_reward=False)
        _load_obs_stats(norm, job.out_dir / OBS_STATS_FILE)
        env = norm
    hyper = build_hyperparams(task, int(np.prod(env.action_space.shape or (1,))))
    policy = hyper.pop("policy", "MlpPolicy")
    if "buffer_size" in inspect.signature(ALGORITHMS[spec.algorithm]).parameters:
        hyper["buffer_size"] = 1  # an off-policy learner's replay buffer: not needed to act
    with warnings.catch_warnings():  # one environment: SB3 warns about the rollout's size
        warnings.simplefilter("ignore")
        model = ALGORITHMS[spec.algorithm](policy, env, seed=job.seed, device=device, verbose=0, **hyper)
    model.policy.load_state_dict(load_weights(job.out_dir / POLICY_FILE, device, member="policy.pth"))
    venv.close()
    video_path = job.out_dir / VIDEO_FILE if job.video else None
    return evaluate(model, task, Fitness(task), norm, spec.eval_episodes, job.seed, video_path)


def _divergence(exc: BaseException) -> str | None:
    """A message when an exception from learning means the optimisation blew up."""
    text = str(exc)
    if "nan" in text.lower() or "inf" in text.lower():
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        return f"training diverged (non-finite values in the policy): {first[:200]}"
    return None


def train_sb3(job: TrainJob, task: Task, device: torch.device, start: float) -> TrainResult:
    """Train with stable-baselines3 on the task's gymnasium envs and measure F."""
    spec = task.spec.training
    fitness = Fitness(task)
    timesteps = tasks.budget(task, "sb3", job.timesteps)
    try:
        reward, reference = compile_rewards(job, task)
        venv = RewardVecEnv(
            _make_venv(task, spec.n_envs, job.seed), task, fitness, reward, device, sparse=reward is None
        )
        with reward.varying() if reward is not None else contextlib.nullcontext():
            _smoke_test(venv, job.seed, smoke_steps(job), job.out_dir)
        venv.reference = reference
    except RewardError as exc:
        return TrainResult(status=exc.status, message=exc.message, device=str(device))
    checked = smoke_passed(job, CHECK_STEPS * spec.n_envs, device, start, "sb3")
    if checked is not None:
        return checked

    recorder = StatsRecorder(timesteps, spec.checkpoints)
    venv.recorder = recorder
    env: VecEnv = venv
    problems = hyperparam_problems(spec.algorithm, spec.hyperparams)
    if problems:
        raise TaskError(f"{task.folder / 'task.yaml'}: " + "; ".join(problems))
    norm: VecNormalize | None = None
    if spec.normalize:
        gamma = float(spec.hyperparams.get("gamma", 0.99))
        norm = VecNormalize(venv, gamma=gamma)
        env = norm
    n_actions = int(np.prod(env.action_space.shape or (1,)))
    algo = ALGORITHMS[spec.algorithm]
    hyper = build_hyperparams(task, n_actions)
    policy = hyper.pop("policy", "MlpPolicy")
    model = algo(policy, env, seed=job.seed, device=device, verbose=0, **hyper)
    # statistics go through _Checkpoints; SB3's default logger would leave an empty /tmp/SB3-<date>
    model.set_logger(Logger(folder=None, output_formats=[]))
    train_start = time.monotonic()
    print(f"training {task.name} with {spec.algorithm} (SB3) for {timesteps} steps on {device}", flush=True)
    rollout = getattr(model, "n_steps", 0) * env.num_envs  # on-policy algorithms learn in whole rollouts
    if rollout and timesteps % rollout:
        print(
            f"note: {spec.algorithm} collects whole rollouts of n_steps x n_envs = {rollout:,} steps: the "
            f"budget of {timesteps:,} runs {-(-timesteps // rollout) * rollout:,} steps (statistics up to "
            f"{timesteps:,})",
            flush=True,
        )
    try:
        venv.clock = clock = SolveClock(task.spec.fitness.threshold)
        stop = clock if job.stop_when_solved else None
        model.learn(
            total_timesteps=timesteps,
            callback=_Checkpoints(recorder, ProgressFile(job.out_dir, timesteps), stop),
        )
    except RewardError as exc:
        return partial_result(
            exc.status, exc.message, recorder, model.num_timesteps, time.monotonic() - train_start, device
        )
    except (ValueError, RuntimeError) as exc:
        diverged = _divergence(exc)
        if diverged is None:
            raise
        return partial_result(
            Status.DIVERGED, diverged, recorder, model.num_timesteps, time.monotonic() - train_start, device
        )
    train_time = time.monotonic() - train_start
    if recorder.pending:
        recorder.close(model.num_timesteps)

    policy_file = job.out_dir / POLICY_FILE
    model.save(policy_file)
    if norm is not None:
        norm.save(str(job.out_dir / "vecnormalize.pkl"))
        _save_obs_stats(norm, job.out_dir / OBS_STATS_FILE)
    video_path = job.out_dir / VIDEO_FILE if job.video else None
    episodes, video = evaluate(model, task, fitness, norm, spec.eval_episodes, job.seed, video_path, reward)
    return trained_result(
        episodes,
        fitness,
        recorder,
        env_steps=int(model.num_timesteps),
        learned_steps=int(model.num_timesteps),
        start=start,
        train_time=train_time,
        policy_file=policy_file,
        video=video,
        device=device,
        correlation=venv.correlation,
        clock=clock,
        backend="sb3",
    )
