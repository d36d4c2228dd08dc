"""One training session, whichever learner drives it: the budget, reward compilation, the
statistics recorder, the progress file, evaluation fields and the assembly of the result.

The learners (`sb3.py`, `batched.py`) only step environments and update policies; everything
a TrainResult says about a run is computed here, once.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

import sandbox
from eureka.errors import ConfigError
from eureka.reward.contract import RewardError, RewardFunction, compile_reward
from eureka.training.files import PROGRESS_FILE, SMOKE_FILE, SMOKE_PROGRESS_FILE
from eureka.training.fitness import Fitness
from eureka.types import ComponentStats, EvalEpisode, Status, Task, TrainJob, TrainResult, write_whole

Filmed = TypeVar("Filmed")

VIDEO_FPS = 15
"""Frame rate of a rollout video: every k-th step is filmed, k = the env's render_fps / 15."""
MAX_VIDEO_FRAMES = 150
"""The longest rollout video (about 10 s); the episode itself is not cut short."""
VIDEO_SIZE = 320, 240
"""Width and height of a frame where the environment takes them (MuJoCo renders per pixel,
in software without a GPU: its default 480 × 480 cost seconds per episode)."""
SMOKE_STEPS = 32
"""Random-action steps run through the reward before training starts (fail fast)."""
CHECK_STEPS = 256
"""Random-action steps of the critic's smoke test."""
MAX_POLICY_BYTES = 512 << 20
"""The largest saved policy read back (the sandbox's file-size limit)."""


def resolve_device(device: str) -> torch.device:
    """`auto` is cuda when present, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def check_device(device: str) -> str:
    """`device` when torch here can train on it (`auto`, `cpu`, `cuda` or `cuda:N`); else a
    ConfigError saying what to give instead."""
    if device in ("auto", "cpu"):
        return device
    if device != "cuda" and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ConfigError(f"--device {device!r}: use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"--device {device}: torch {torch.__version__} sees no CUDA device here; "
            "use --device cpu (or auto), or install a CUDA build of torch"
        )
    index = int(device[5:]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise ConfigError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def device_name(device: str) -> str:
    """`device` with the card's name when it is a CUDA device (e.g. `cuda:0 (NVIDIA H200)`)."""
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return device
    index = int(device[5:]) if device[5:].isdigit() else 0
    return f"{device} ({torch.cuda.get_device_name(index)})"


class StatsRecorder:
    """Per-checkpoint means of the reward, its components, F and episode length."""

    def __init__(self, total_steps: int, checkpoints: int) -> None:
        self.boundaries = [max(1, round(total_steps * (k + 1) / checkpoints)) for k in range(checkpoints)]
        self.steps: list[int] = []
        self.fitness: list[float | None] = []
        self.lengths: list[float | None] = []
        self.rewards: list[float | None] = []
        self.components: dict[str, list[float | None]] = {}
        self.diagnostics: dict[str, list[float]] = {}
        """The learner's update statistics, one mean per closed window (see `on_update`)."""
        self._open_window()

    def state(self) -> dict[str, Any]:
        """The closed windows so far (saved with a checkpoint, so training can resume)."""
        return {
            "steps": self.steps,
            "fitness": self.fitness,
            "lengths": self.lengths,
            "rewards": self.rewards,
            "components": self.components,
            "diagnostics": self.diagnostics,
        }

    def curves(self) -> dict[str, Any]:
        """The TrainResult fields this recorder fills."""
        return {
            "checkpoint_steps": self.steps,
            "fitness_curve": self.fitness,
            "episode_length_curve": self.lengths,
            "reward_curve": self.rewards,
            "components": [ComponentStats(name=k, means=finite(v)) for k, v in self.components.items()],
            "diagnostics": self.diagnostics,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.steps = list(state["steps"])
        self.fitness = list(state["fitness"])
        self.lengths = list(state["lengths"])
        self.rewards = list(state["rewards"])
        self.components = {k: list(v) for k, v in state["components"].items()}
        self.diagnostics = {k: list(v) for k, v in state.get("diagnostics", {}).items()}
        if self.steps:
            self.boundaries = [b for b in self.boundaries if b > self.steps[-1]]

    def _open_window(self) -> None:
        self._reward_sum: torch.Tensor | None = None
        self._count = 0
        self._comp_sums: dict[str, torch.Tensor] = {}
        self._fit: list[float] = []
        self._len: list[int] = []
        self._updates: dict[str, list[float]] = {}

    def on_step(self, total: torch.Tensor, components: dict[str, torch.Tensor]) -> None:
        """Add one batched step's rewards to the window's sums, kept on the tensors' device in
        float64 (each step's float32 sum added in double: a host float's arithmetic, without
        waiting for the device at every step)."""
        self._reward_sum = _accumulate(self._reward_sum, total)
        self._count += int(total.shape[0])
        for name, value in components.items():
            self._comp_sums[name] = _accumulate(self._comp_sums.get(name), value)

    def on_update(self, stats: dict[str, float]) -> None:
        """One policy update's statistics (losses, KL, ...), averaged over the window."""
        for name, value in stats.items():
            self._updates.setdefault(name, []).append(value)

    def on_episode(self, fitness: float, length: int) -> None:
        self._fit.append(fitness)
        self._len.append(length)

    def closes(self, num_steps: int) -> bool:
        """`maybe_close(num_steps)` would close the window."""
        return bool(self.boundaries) and num_steps >= self.boundaries[0]

    def maybe_close(self, num_steps: int) -> str | None:
        """Close the window when `num_steps` passed the next boundary; return a log line."""
        if not self.closes(num_steps):
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
        total = self._reward_sum
        self.rewards.append(float(total) / n if total is not None and self._count else None)
        self.fitness.append(float(np.mean(self._fit)) if self._fit else None)
        self.lengths.append(float(np.mean(self._len)) if self._len else None)
        names = list(self.components) + [k for k in self._comp_sums if k not in self.components]
        for name in names:  # in the order the reward returned them
            series = self.components.setdefault(name, [None] * (len(self.steps) - 1))
            series.append(float(self._comp_sums[name]) / n if name in self._comp_sums else None)
        for name, values in self._updates.items():
            self.diagnostics.setdefault(name, []).append(float(np.mean(values)))
        self._open_window()

        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.4g}"

        return (
            f"step {num_steps} | F {fmt(self.fitness[-1])} | episode length {fmt(self.lengths[-1])}"
            f" | reward/step {fmt(self.rewards[-1])} | episodes {episodes}"
        )


def _accumulate(acc: torch.Tensor | None, values: torch.Tensor) -> torch.Tensor:
    """`acc` (a float64 scalar on `values`' device, or None at first) plus `values`' sum."""
    step = values.sum().double()
    return step if acc is None else acc.add_(step)


class SolveClock:
    """When training first reached the success threshold: the mean F of the last `window`
    training episodes at or above it (time to solve, for benchmarks and early stopping)."""

    def __init__(self, threshold: float | None, window: int = 20) -> None:
        self.threshold = threshold
        self.window = window
        self.recent: list[float] = []
        self.start = time.monotonic()
        self.steps: int | None = None
        self.seconds: float | None = None

    def on_episode(self, fitness: float, num_steps: int) -> None:
        self.recent = [*self.recent[-(self.window - 1) :], fitness]
        if self.threshold is None:
            return  # a task with no threshold is never solved
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
        self._sums: torch.Tensor | None = None
        """sum of x, y, x*x, y*y, x*y in float64, on the rewards' device (read at `value`)."""

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x64, y64 = x.double(), y.double()
        self.n += int(x64.shape[0])
        sums = torch.stack([x64.sum(), y64.sum(), (x64 * x64).sum(), (y64 * y64).sum(), (x64 * y64).sum()])
        self._sums = sums if self._sums is None else self._sums.add_(sums)

    def value(self) -> float | None:
        if self.n < 2 or self._sums is None:
            return None
        n = self.n
        sx, sy, sxx, syy, sxy = self._sums.tolist()
        cov = sxy / n - (sx / n) * (sy / n)
        vx = sxx / n - (sx / n) ** 2
        vy = syy / n - (sy / n) ** 2
        if vx <= 1e-12 or vy <= 1e-12:
            return None
        return max(-1.0, min(1.0, cov / math.sqrt(vx * vy)))


def film_env(
    make: Callable[[tuple[int, int] | None], Filmed], env_of: Callable[[Filmed], Any] = lambda e: e
) -> Filmed | None:
    """`make(size)` for a video: at VIDEO_SIZE where the environment takes a size (MuJoCo),
    else at its own; None (and a line in the log) when it cannot render, e.g. a user's env.py
    that takes no `render_mode`. `env_of` gives the gymnasium env inside (of a vector env)."""
    made: Filmed | None = None
    try:
        try:
            made = make(VIDEO_SIZE)
        except TypeError as exc:  # an environment without width and height
            if "width" not in str(exc) and "height" not in str(exc):
                raise
            made = make(None)
        cheap_rendering(env_of(made))
        return made
    except Exception as exc:  # a video is a nicety: report and go on
        print(f"video not written: {type(exc).__name__}: {exc}", flush=True)
        if made is not None:
            with contextlib.suppress(Exception):
                env_of(made).close()
        return None


def cheap_rendering(env: Any) -> None:
    """MuJoCo without a GPU renders in software, where shadows (a 4096-pixel shadow map),
    reflections, the skybox and a 640 x 480 offscreen buffer are most of a frame's cost: film
    without them, in a buffer of the video's size (bench/video_cost.py measures it). Other
    environments are left as they are."""
    unwrapped = env.unwrapped
    renderer = getattr(unwrapped, "mujoco_renderer", None)
    if renderer is None:
        return
    import mujoco

    offscreen = unwrapped.model.vis.global_
    offscreen.offwidth, offscreen.offheight = VIDEO_SIZE
    scene = renderer._get_viewer(
        "rgb_array"
    ).scn  # gymnasium's viewer, made here rather than at the first frame
    for flag in (
        mujoco.mjtRndFlag.mjRND_SHADOW,
        mujoco.mjtRndFlag.mjRND_REFLECTION,
        mujoco.mjtRndFlag.mjRND_SKYBOX,
    ):
        scene.flags[flag] = 0


class Film:
    """The frames of one filmed episode: every `stride`-th step, at most MAX_VIDEO_FRAMES."""

    def __init__(self, env: Any) -> None:
        native = int(env.metadata.get("render_fps", 30) or 30)
        self.stride = max(1, round(native / VIDEO_FPS))
        self.fps = max(1, round(native / self.stride))
        self.frames: list[np.ndarray] = []
        self.steps = 0
        self.seconds = 0.0
        """Time spent rendering."""
        self.broken = False
        """The environment stopped rendering: the film ends with the frames taken so far."""

    @property
    def full(self) -> bool:
        return self.broken or len(self.frames) >= MAX_VIDEO_FRAMES

    def step(self, render: Any) -> None:
        """Called before each step of the episode; films the steps on the stride. A render that
        raises or returns no image ends the film with the frames taken so far (a line in the log)."""
        if not self.full and self.steps % self.stride == 0:
            start = time.monotonic()
            try:
                frame = np.asarray(render())
                problem = "" if frame.ndim in (2, 3) else f"render() returned no image (shape {frame.shape})"
            except Exception as exc:  # the policy is what matters: report and go on
                problem = f"render() raised {type(exc).__name__}: {exc}"
            if problem:  # the frames so far are kept
                print(f"filming stopped at step {self.steps}: {problem}", flush=True)
                self.broken = True
                return
            self.frames.append(frame)
            self.seconds += time.monotonic() - start
        self.steps += 1

    def write(self, path: Path) -> Path | None:
        """Encode the frames as mp4 (imageio-ffmpeg); a failure only costs the video."""
        if not self.frames:
            return None
        import imageio.v2 as imageio

        start = time.monotonic()
        try:
            writer: Any
            with imageio.get_writer(path, fps=self.fps, macro_block_size=8) as writer:
                for frame in self.frames:
                    writer.append_data(frame)
        except Exception as exc:  # the policy is what matters; report and go on
            print(f"video not written: {type(exc).__name__}: {exc}", flush=True)
            return None
        self.seconds += time.monotonic() - start
        height, width = self.frames[0].shape[:2]
        print(
            f"video: {len(self.frames)} frames of {width}x{height} at {self.fps} fps "
            f"(every {self.stride} steps) in {self.seconds:.1f} s",
            flush=True,
        )
        return path


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def compile_rewards(job: TrainJob, task: Task) -> tuple[RewardFunction | None, RewardFunction | None]:
    """The job's reward (None: the sparse success signal) and the reference reward it is
    correlated with (not compiled for a smoke test); raises RewardError."""
    fields = list(task.spec.state)
    reward = (
        compile_reward(
            job.reward_file.read_text(), job.reward_file.name, fields, str(job.reward_file.resolve())
        )
        if job.reward_file is not None
        else None
    )
    reference = (
        compile_reward(
            job.reference_reward.read_text(), "human_reward.py", fields, str(job.reference_reward.resolve())
        )
        if job.reference_reward is not None and not job.check_only
        else None
    )
    return reward, reference


def require_signal(task: Task, fitness: Fitness) -> None:
    """The sparse reward is the success signal: a task without one cannot train on it."""
    if fitness.signal is None:
        raise RewardError(
            Status.CHECK_FAILED,
            f"task {task.name} has no success_signal in fitness.py, so it has no sparse reward",
        )


def smoke_steps(job: TrainJob) -> int:
    """Random-action steps through the reward before anything else: the critic's smoke test
    (CHECK_STEPS) when the job is or begins with one, else the fail-fast SMOKE_STEPS."""
    return CHECK_STEPS if job.check_only or job.smoke_first else SMOKE_STEPS


def smoke_passed(
    job: TrainJob, states: int, device: torch.device, start: float, backend: str
) -> TrainResult | None:
    """The smoke test passed: the job's result when it is only that (check_only); for a
    `smoke_first` job the message goes to SMOKE_FILE and training goes on (None)."""
    result = TrainResult(
        status=Status.OK,
        message=f"passed the smoke test on {states} real states",
        device=str(device),
        wall_time=time.monotonic() - start,
        backend=backend,
    )
    if job.check_only:
        return result
    if job.smoke_first:
        (job.out_dir / SMOKE_FILE).write_text(result.message)
    return None


class SmokeWatch:
    """While the smoke test steps, a thread rewrites SMOKE_PROGRESS_FILE each second: the steps
    done of how many, the seconds so far, those inside the reward, and how long the reward's call
    under way has run. A smoke test killed at its limit is then explained by what was slow (the
    reward, one call that never returned, or the task's environment), not only by the limit.

        with SmokeWatch(out_dir, steps, reward) as watch:
            for i in range(steps):
                ...
                watch.done = i + 1
    """

    def __init__(self, out_dir: Path, steps: int, reward: RewardFunction | None, every: float = 1.0) -> None:
        self.path = out_dir / SMOKE_PROGRESS_FILE
        self.steps = steps
        self.reward = reward
        self.every = every
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="smoke-watch", daemon=True)
        self.start = time.monotonic()

    def __enter__(self) -> SmokeWatch:
        self.start = time.monotonic()
        self._write()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.path.unlink(missing_ok=True)  # it explains a smoke test killed while stepping only

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(OSError):
                self._write()

    def _write(self) -> None:
        now = time.monotonic()
        since = self.reward.calling_since if self.reward is not None else None
        progress = {
            "steps": self.done,
            "of": self.steps,
            "seconds": now - self.start,
            "reward_seconds": self.reward.seconds if self.reward is not None else 0.0,
            "call_seconds": now - since if since is not None else 0.0,
        }
        write_whole(self.path, json.dumps(progress))


class ProgressFile:
    """`progress.json` in the job's folder, rewritten at most twice a second (and at every
    checkpoint), atomically: what the display reads while a job trains."""

    def __init__(self, out_dir: Path, total: int) -> None:
        self.path = out_dir / PROGRESS_FILE
        self.total = total
        self.start = time.monotonic()
        self._last = -1.0

    def update(self, steps: int, recorder: StatsRecorder, line: str | None, done_before: int = 0) -> None:
        """Print the checkpoint's log line (with steps/s) when one closed; write the file."""
        elapsed = time.monotonic() - self.start
        if line is not None:
            print(f"{line} | {(steps - done_before) / max(elapsed, 1e-9):.0f} steps/s", flush=True)
        if line is None and elapsed - self._last <= 0.5:
            return
        self._last = elapsed
        fitness = [f for f in recorder.fitness if f is not None]
        progress = {
            "env_steps": steps,
            "total": self.total,
            "fitness": fitness[-1] if fitness else None,
            "elapsed": elapsed,
        }
        write_whole(self.path, json.dumps(progress))


def read_saved(path: Path) -> bytes:
    """The bytes of a file a training saved (a regular file, not a link or FIFO, of at most
    MAX_POLICY_BYTES), or a ValueError that says which and why."""
    data = sandbox.read_bytes(path, MAX_POLICY_BYTES)
    if data is None:
        raise ValueError(f"{path.name} is missing, not a regular file, or over {MAX_POLICY_BYTES >> 20} MiB")
    return data


def load_weights(path: Path, device: torch.device, member: str | None = None) -> Any:
    """Tensors (in dicts and lists) that a training saved with torch.save, read without
    unpickling anything else (`weights_only`): how a process that never ran the reward reads
    what the process that did wrote. `member`: the file inside a zip archive (SB3's policy.zip
    keeps the policy's parameters in policy.pth)."""
    data = read_saved(path)
    if member is not None:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if archive.getinfo(member).file_size > MAX_POLICY_BYTES:
                raise ValueError(f"{path.name}: {member} is over {MAX_POLICY_BYTES >> 20} MiB")
            data = archive.read(member)
    return torch.load(io.BytesIO(data), map_location=device, weights_only=True)


def trained_result(
    episodes: list[EvalEpisode],
    fitness: Fitness,
    recorder: StatsRecorder,
    *,
    env_steps: int,
    learned_steps: int,
    start: float,
    train_time: float,
    policy_file: Path,
    video: Path | None,
    device: torch.device,
    correlation: Correlation,
    clock: SolveClock,
    backend: str,
    checkpoint_file: str | None = None,
) -> TrainResult:
    """The result of a training that finished: F on the final policy, the curves, the files."""
    return TrainResult(
        status=Status.OK,
        message="trained",
        **evaluation_fields(episodes, fitness),
        **recorder.curves(),
        env_steps=env_steps,
        wall_time=time.monotonic() - start,
        steps_per_second=learned_steps / max(train_time, 1e-9),
        policy_file=policy_file.name,
        checkpoint_file=checkpoint_file,
        video_file=video.name if video else None,
        device=str(device),
        reward_correlation=correlation.value(),
        backend=backend,
        solved_after_steps=clock.steps,
        solved_after_seconds=clock.seconds,
    )
