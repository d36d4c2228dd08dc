"""Training stage: a pure function of a TrainJob that trains a policy with stable-baselines3.

Runs inside the sandbox worker. The reward is computed once per batched step for all
environments from the named state fields; its components are summarised per checkpoint.
"""

from __future__ import annotations

import json
import math
import random
import time
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
from eureka.envs import batch_tensors, make_state_env
from eureka.fitness import SIGNAL_METRICS, EpisodeTracker, Fitness
from eureka.reward import RewardError, RewardFunction, compile_reward
from eureka.types import ComponentStats, EvalEpisode, Status, Task, TrainJob, TrainResult

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"PPO": PPO, "SAC": SAC, "TD3": TD3, "A2C": A2C}
ACTIVATIONS = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU, "gelu": torch.nn.GELU}
MAX_VIDEO_FRAMES = 1000
SMOKE_STEPS = 32
"""Random-action steps run through the reward before training starts (fail fast)."""
CHECK_STEPS = 256
"""Random-action steps of the critic's smoke test."""


def resolve_device(device: str) -> torch.device:
    """`auto` is cuda when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class StatsRecorder:
    """Per-checkpoint means of the reward, its components, F and episode length."""

    def __init__(self, total_steps: int, checkpoints: int) -> None:
        self.boundaries = [max(1, round(total_steps * (k + 1) / checkpoints)) for k in range(checkpoints)]
        self.steps: list[int] = []
        self.fitness: list[float | None] = []
        self.lengths: list[float | None] = []
        self.rewards: list[float | None] = []
        self.components: dict[str, list[float | None]] = {}
        self._open_window()

    def state(self) -> dict[str, Any]:
        """The closed windows so far (saved with a checkpoint, so training can resume)."""
        return {
            "steps": self.steps,
            "fitness": self.fitness,
            "lengths": self.lengths,
            "rewards": self.rewards,
            "components": self.components,
        }

    def curves(self) -> dict[str, Any]:
        """The TrainResult fields this recorder fills."""
        return {
            "checkpoint_steps": self.steps,
            "fitness_curve": self.fitness,
            "episode_length_curve": self.lengths,
            "reward_curve": self.rewards,
            "components": [ComponentStats(name=k, means=finite(v)) for k, v in self.components.items()],
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.steps = list(state["steps"])
        self.fitness = list(state["fitness"])
        self.lengths = list(state["lengths"])
        self.rewards = list(state["rewards"])
        self.components = {k: list(v) for k, v in state["components"].items()}
        if self.steps:
            self.boundaries = [b for b in self.boundaries if b > self.steps[-1]]

    def _open_window(self) -> None:
        self._reward_sum = 0.0
        self._count = 0
        self._comp_sums: dict[str, float] = {}
        self._fit: list[float] = []
        self._len: list[int] = []

    def on_step(self, total: torch.Tensor, components: dict[str, torch.Tensor]) -> None:
        self._reward_sum += float(total.sum())
        self._count += int(total.shape[0])
        for name, value in components.items():
            self._comp_sums[name] = self._comp_sums.get(name, 0.0) + float(value.sum())

    def on_episode(self, fitness: float, length: int) -> None:
        self._fit.append(fitness)
        self._len.append(length)

    def maybe_close(self, num_steps: int) -> str | None:
        """Close the window when `num_steps` passed the next boundary; return a log line."""
        if not self.boundaries or num_steps < self.boundaries[0]:
            return None
        while self.boundaries and num_steps >= self.boundaries[0]:
            self.boundaries.pop(0)
        return self.close(num_steps)

    @property
    def pending(self) -> bool:
        """A checkpoint of the budget has not been closed yet (training ended early)."""
        return bool(self.boundaries)

    def close(self, num_steps: int) -> str:
        n = max(self._count, 1)
        episodes = len(self._fit)
        self.steps.append(num_steps)
        self.rewards.append(self._reward_sum / n if self._count else None)
        self.fitness.append(float(np.mean(self._fit)) if self._fit else None)
        self.lengths.append(float(np.mean(self._len)) if self._len else None)
        names = list(self.components) + [k for k in self._comp_sums if k not in self.components]
        for name in names:  # in the order the reward returned them
            series = self.components.setdefault(name, [None] * (len(self.steps) - 1))
            series.append(self._comp_sums[name] / n if name in self._comp_sums else None)
        self._open_window()

        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.4g}"

        return (
            f"step {num_steps} | F {fmt(self.fitness[-1])} | episode length {fmt(self.lengths[-1])}"
            f" | reward/step {fmt(self.rewards[-1])} | episodes {episodes}"
        )


class SolveClock:
    """When training first reached the success threshold: the mean F of the last `window`
    training episodes at or above it (time to solve, for benchmarks and early stopping)."""

    def __init__(self, threshold: float, window: int = 20) -> None:
        self.threshold = threshold
        self.window = window
        self.recent: list[float] = []
        self.start = time.monotonic()
        self.steps: int | None = None
        self.seconds: float | None = None

    def on_episode(self, fitness: float, num_steps: int) -> None:
        self.recent = [*self.recent[-(self.window - 1) :], fitness]
        solved = len(self.recent) == self.window and sum(self.recent) / self.window >= self.threshold
        if solved and self.steps is None:
            self.steps = num_steps
            self.seconds = time.monotonic() - self.start

    @property
    def solved(self) -> bool:
        return self.steps is not None


class Correlation:
    """Streaming Pearson correlation of two rewards over all steps."""

    def __init__(self) -> None:
        self.n = 0
        self.sx = self.sy = self.sxx = self.syy = self.sxy = 0.0

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x64, y64 = x.double(), y.double()
        self.n += int(x64.shape[0])
        self.sx += float(x64.sum())
        self.sy += float(y64.sum())
        self.sxx += float((x64 * x64).sum())
        self.syy += float((y64 * y64).sum())
        self.sxy += float((x64 * y64).sum())

    def value(self) -> float | None:
        if self.n < 2:
            return None
        cov = self.sxy / self.n - (self.sx / self.n) * (self.sy / self.n)
        vx = self.sxx / self.n - (self.sx / self.n) ** 2
        vy = self.syy / self.n - (self.sy / self.n) ** 2
        if vx <= 1e-12 or vy <= 1e-12:
            return None
        return max(-1.0, min(1.0, cov / math.sqrt(vx * vy)))


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
        if self.sparse and fitness.signal is None:
            raise RewardError(
                Status.CHECK_FAILED,
                f"task {task.name} has no success_signal in fitness.py, so it has no sparse reward",
            )
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
        self, recorder: StatsRecorder, out_dir: Path, total: int, stop: SolveClock | None = None
    ) -> None:
        super().__init__()
        self.recorder = recorder
        self.stop = stop
        self.progress = out_dir / "progress.json"
        self.total = total
        self.start = time.monotonic()
        self._last_write = 0.0

    def _on_step(self) -> bool:
        line = self.recorder.maybe_close(self.num_timesteps)
        elapsed = time.monotonic() - self.start
        if line is not None:
            print(f"{line} | {self.num_timesteps / max(elapsed, 1e-9):.0f} steps/s", flush=True)
        if line is not None or elapsed - self._last_write > 0.5:
            self._last_write = elapsed
            fitness = [f for f in self.recorder.fitness if f is not None]
            tmp = self.progress.with_suffix(".tmp")
            tmp.write_text(
                json.dumps(
                    {
                        "env_steps": self.num_timesteps,
                        "total": self.total,
                        "fitness": fitness[-1] if fitness else None,
                        "elapsed": elapsed,
                    }
                )
            )
            tmp.replace(self.progress)
        return not (self.stop is not None and self.stop.solved)


def _schedule(value: Any) -> Any:
    """RL-Zoo's `lin_<x>`: a linear schedule from x to 0."""
    if isinstance(value, str) and value.startswith("lin_"):
        start = float(value[4:])
        return lambda progress: progress * start
    return value


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


def _make_venv(task: Task, n: int, seed: int, render_mode: str | None = None) -> DummyVecEnv:
    venv = DummyVecEnv([lambda: make_state_env(task, render_mode) for _ in range(n)])
    venv.seed(seed)
    return venv


def _smoke_test(env: RewardVecEnv, seed: int, steps: int = SMOKE_STEPS) -> None:
    """Random-action steps through the reward, so contract violations fail fast."""
    env.action_space.seed(seed)
    env.reset()
    for _ in range(steps):
        env.step(np.stack([env.action_space.sample() for _ in range(env.num_envs)]))
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
    base = _make_venv(task, 1, seed + 10_000, "rgb_array" if video_path else None)
    tracker = RewardVecEnv(base, task, fitness, reward, torch.device("cpu"))
    tracker.records = []
    env: VecEnv = tracker
    if obs_norm is not None:
        normed = VecNormalize(tracker, training=False, norm_reward=False)
        normed.obs_rms = obs_norm.obs_rms
        env = normed
    frames: list[np.ndarray] = []
    obs = cast(np.ndarray, env.reset())
    while len(tracker.episodes) < episodes:
        if video_path is not None and not tracker.episodes and len(frames) < MAX_VIDEO_FRAMES:
            frames.append(np.asarray(base.envs[0].render()))
        action, _ = model.predict(obs, deterministic=True)
        obs = cast(np.ndarray, env.step(action)[0])
    fps = int(base.envs[0].metadata.get("render_fps", 30) or 30)
    env.close()
    video = write_video(frames, video_path, fps) if video_path is not None and frames else None
    return tracker.records[:episodes], video


def write_video(frames: list[np.ndarray], path: Path, fps: int) -> Path | None:
    """Encode frames as mp4 (imageio-ffmpeg); a failure only costs the video."""
    import imageio.v2 as imageio

    try:
        writer: Any
        with imageio.get_writer(path, fps=min(fps, 60), macro_block_size=8) as writer:
            for frame in frames:
                writer.append_data(np.asarray(frame))
    except Exception as exc:  # the policy is what matters; report and go on
        print(f"video not written: {type(exc).__name__}: {exc}", flush=True)
        return None
    return path


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _divergence(exc: BaseException) -> str | None:
    """A message when an exception from learning means the optimisation blew up."""
    text = str(exc)
    if "nan" in text.lower() or "inf" in text.lower():
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        return f"training diverged (non-finite values in the policy): {first[:200]}"
    return None


def train(job: TrainJob) -> TrainResult:
    """Train a policy for the job's task against its reward and measure F on the result."""
    start = time.monotonic()
    task = tasks.load(str(job.task_folder))
    spec = task.spec.training
    torch.set_num_threads(max(1, job.threads))
    device = resolve_device(job.device)
    _seed_everything(job.seed)
    job.out_dir.mkdir(parents=True, exist_ok=True)
    if tasks.training_path(task, job.backend) == "batched":
        from eureka.batched_trainer import train_batched

        return train_batched(job, task, device, start)
    fitness = Fitness(task)
    timesteps = job.timesteps or spec.timesteps
    fields = list(task.spec.state)

    try:
        reward = (
            compile_reward(job.reward_file.read_text(), job.reward_file.name, fields)
            if job.reward_file is not None
            else None
        )
        venv = RewardVecEnv(
            _make_venv(task, spec.n_envs, job.seed), task, fitness, reward, device, sparse=reward is None
        )
        _smoke_test(venv, job.seed, CHECK_STEPS if job.check_only else SMOKE_STEPS)
        if job.reference_reward is not None:
            venv.reference = compile_reward(job.reference_reward.read_text(), "human_reward.py", fields)
    except RewardError as exc:
        return TrainResult(status=exc.status, message=exc.message, device=str(device))
    if job.check_only:
        steps = CHECK_STEPS * spec.n_envs
        return TrainResult(
            status=Status.OK,
            message=f"passed the smoke test on {steps} real states",
            device=str(device),
            wall_time=time.monotonic() - start,
        )

    recorder = StatsRecorder(timesteps, spec.checkpoints)
    venv.recorder = recorder
    env: VecEnv = venv
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
    print(f"training {task.name} with {spec.algorithm} for {timesteps} steps on {device}", flush=True)
    try:
        venv.clock = clock = SolveClock(task.spec.fitness.threshold)
        stop = clock if job.stop_when_solved else None
        model.learn(total_timesteps=timesteps, callback=_Checkpoints(recorder, job.out_dir, timesteps, stop))
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

    policy_file = job.out_dir / "policy.zip"
    model.save(policy_file)
    if norm is not None:
        norm.save(str(job.out_dir / "vecnormalize.pkl"))
    video_path = job.out_dir / "rollout.mp4" if job.video else None
    episodes, video = evaluate(model, task, fitness, norm, spec.eval_episodes, job.seed, video_path, reward)
    return TrainResult(
        status=Status.OK,
        message="trained",
        **evaluation_fields(episodes, fitness),
        **recorder.curves(),
        env_steps=int(model.num_timesteps),
        wall_time=time.monotonic() - start,
        steps_per_second=model.num_timesteps / max(train_time, 1e-9),
        policy_file=policy_file.name,
        video_file=video.name if video else None,
        device=str(device),
        reward_correlation=venv.correlation.value(),
        solved_after_steps=clock.steps,
        solved_after_seconds=clock.seconds,
    )


def finite(values: list[float | None]) -> list[float | None]:
    return [v if v is not None and math.isfinite(v) else None for v in values]


def evaluation_fields(episodes: list[EvalEpisode], fitness: Fitness) -> dict[str, Any]:
    """The TrainResult fields measured on the final policy's evaluation episodes."""
    values = [e.fitness for e in episodes]
    mean = float(np.mean(values))
    return {
        "fitness": mean,
        "fitness_std": float(np.std(values)),
        "success_rate": float(np.mean([e.success for e in episodes])),
        "solved": fitness.succeeded(mean),
        "eval_episode_lengths": [e.length for e in episodes],
        "eval_fitness": values,
        "eval_episodes": episodes,
    }


def partial_result(
    status: Status,
    message: str,
    recorder: StatsRecorder,
    steps: int,
    elapsed: float,
    device: torch.device,
    backend: str = "sb3",
) -> TrainResult:
    """A failed run still reports the statistics gathered before it failed."""
    return TrainResult(
        status=status,
        message=message,
        **recorder.curves(),
        env_steps=steps,
        wall_time=elapsed,
        steps_per_second=steps / max(elapsed, 1e-9),
        device=str(device),
        backend=backend,
    )
