"""The fast training path: batched PPO (eureka.training.ppo) on a batched environment (eureka.training.sim).

Runs inside the sandbox worker, like the SB3 path, and returns the same TrainResult. Each
batched step: the policy acts for all N environments, the backend steps them, the named state
fields are built for the whole batch, the candidate's reward is computed once, statistics and
episodes are recorded; every `num_steps` steps PPO updates. F is measured on deterministic
evaluation episodes in the same backend; the video is filmed in the task's gymnasium env.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from eureka import tasks
from eureka.reward.contract import RewardError, RewardFunction
from eureka.training.files import VIDEO_FILE
from eureka.training.fitness import SIGNAL_METRICS, BatchedEpisodes, Fitness
from eureka.training.ppo import PPO, ActorCritic
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
    require_signal,
    smoke_passed,
    smoke_steps,
    trained_result,
)
from eureka.training.sim.base import BatchedEnv
from eureka.training.sim.registry import BatchedState, Physics, make_batched, on_mjx
from eureka.types import BatchedSpec, EvalEpisode, Status, Task, TrainJob, TrainResult

POLICY_FILE = "policy.pt"
CHECKPOINT_FILE: str | None = POLICY_FILE
"""What a later rung resumes from: the policy file holds the optimiser and normalisers too."""


class Rollout:
    """Steps a batched env under a policy and computes the candidate's reward per batch.

    `obs` (also what `reset` returns) and `prev` are buffers overwritten in place at every
    step: a caller that keeps one across a step must clone it."""

    def __init__(
        self,
        task: Task,
        env: BatchedEnv,
        fitness: Fitness,
        reward: RewardFunction | None,
        reference: RewardFunction | None,
        device: torch.device,
        sparse: bool = True,
    ) -> None:
        """`reward` None: the success signal is the reward when `sparse`, else the reward is 0
        (F measured with no reward at all)."""
        self.task = task
        self.env = env
        self.fitness = fitness
        self.reward = reward
        self.reference = reference
        self.device = device
        self.sparse = sparse and reward is None
        if self.sparse:
            require_signal(task, fitness)
        self.use_signal = self.sparse or fitness.spec.metric in SIGNAL_METRICS
        self.state = BatchedState(task, env)
        names = list(reward.params) if reward else []
        if self.use_signal and fitness.signal is not None:
            names += [p for p in fitness.signal.params if p not in names]
        if reference is not None:
            names += [p for p in reference.params if p not in names]
        self.names = names
        self.uses_prev = any(name.startswith("prev_") for name in names)
        self.low = self.high = None
        if not env.action.is_discrete:
            self.low = torch.tensor(env.action.low, device=env.device, dtype=torch.float32)
            self.high = torch.tensor(env.action.high, device=env.device, dtype=torch.float32)
        self.obs = torch.zeros(0)
        self.prev: dict[str, torch.Tensor] = {}

    def reset(self, seed: int) -> torch.Tensor:
        """Reset the environments; `obs` and `prev` are made here once, then updated in place
        (a captured CUDA graph reads and writes them where they were at capture): the tensor
        returned (`obs`) is overwritten by every step, so clone it to keep it."""
        obs = self.env.reset(seed).to(self.device)
        prev = self.state(obs)
        if self.obs.shape != obs.shape or self.prev.keys() != prev.keys():
            self.obs = torch.empty_like(obs)
            self.prev = {k: torch.empty_like(v) for k, v in prev.items()}
        self.obs.copy_(obs)
        for k, v in prev.items():
            self.prev[k].copy_(v)
        return self.obs

    def clip(self, actions: torch.Tensor) -> torch.Tensor:
        if self.low is None or self.high is None:
            return actions
        return torch.maximum(torch.minimum(actions, self.high), self.low)

    def _batch(self, state: dict[str, torch.Tensor], actions: torch.Tensor) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {}
        for name in self.names:
            if name == "action":
                batch[name] = actions
            elif name.startswith("prev_") and name[5:] in self.prev:
                batch[name] = self.prev[name[5:]]
            else:
                batch[name] = state[name]
        return batch

    def step(
        self, actions: torch.Tensor
    ) -> tuple[
        Any, torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None, dict[str, torch.Tensor], torch.Tensor
    ]:
        """(step, total reward, components, signal, state, reference reward or empty)."""
        env_actions = self.clip(actions)
        step = self.env.step(env_actions)
        final_obs = step.final_obs.to(self.device)
        state = self.state(final_obs)
        n = final_obs.shape[0]
        batch = self._batch(state, env_actions.to(self.device))
        signal = self.fitness.signal_values(batch, n) if self.use_signal else None
        if self.reward is not None:
            total, components = self.reward(batch, n)
        elif self.sparse:
            assert signal is not None
            total, components = signal, {"success": signal}
        else:
            total, components = torch.zeros(n, device=self.device), {}
        ref = self.reference(batch, n)[0] if self.reference is not None else torch.zeros(0)
        self.obs.copy_(step.obs)
        if self.uses_prev:  # where an episode restarted, its previous state is the new start
            done = (step.terminated | step.truncated).to(self.device)
            restarted = self.state(self.obs, after_reset=True)
            for k, v in state.items():
                torch.where(_expand(done, v), restarted[k], v, out=self.prev[k])
        return step, total, components, signal, state, ref

    def defer_checks(self, on: bool = True) -> None:
        """Check the rewards for NaN and infinity at `first_nonfinite`, not at every step."""
        for fn in (self.reward, self.reference):
            if fn is not None:
                fn.defer_finite_check(on)

    def first_nonfinite(self) -> tuple[int, RewardError] | None:
        """The first step since the last look whose reward (or reference reward) was not finite."""
        found = [f for f in (fn.first_nonfinite() for fn in (self.reward, self.reference) if fn) if f]
        return min(found, key=lambda f: f[0]) if found else None


def _expand(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.reshape(-1, *([1] * (like.dim() - 1)))


def _smoke(rollout: Rollout, seed: int, steps: int, out_dir: Path) -> None:
    """Random actions through the reward, so contract violations fail before training; watched
    (SmokeWatch in `out_dir`), so a smoke test killed at its limit says what was slow."""
    gen = torch.Generator().manual_seed(seed)
    env = rollout.env
    with SmokeWatch(out_dir, steps, rollout.reward) as watch:
        rollout.reset(seed)
        for i in range(steps):
            if env.action.discrete is not None:
                actions = torch.randint(env.action.discrete, (env.num_envs,), generator=gen)
            else:
                low = torch.tensor(env.action.low)
                high = torch.tensor(env.action.high)
                actions = low + (high - low) * torch.rand(env.num_envs, env.action.dim, generator=gen)
            rollout.step(actions.to(env.device))
            watch.done = i + 1


def evaluate(
    policy: ActorCritic,
    task: Task,
    make: Any,
    fitness: Fitness,
    reward: RewardFunction | None,
    episodes: int,
    seed: int,
    device: torch.device,
    sparse: bool = True,
) -> list[EvalEpisode]:
    """The first episode of `episodes` environments under the deterministic policy (`reward`
    and `sparse` as `Rollout` takes them)."""
    env: BatchedEnv = make(episodes, seed)
    rollout = Rollout(task, env, fitness, reward, None, device, sparse)
    obs = rollout.reset(seed)
    sums: dict[str, torch.Tensor] = {}
    total_sum = torch.zeros(episodes, device=device)
    results: dict[int, EvalEpisode] = {}
    tracker = BatchedEpisodes(episodes, env.max_episode_steps, fitness.needs_states, device)
    try:
        while len(results) < episodes:
            actions = policy.act(obs, deterministic=True)[0]
            step, total, components, signal, state, _ = rollout.step(actions)
            for name, value in components.items():
                sums[name] = sums.get(name, torch.zeros(episodes, device=device)) + value
            total_sum += total
            obs = rollout.obs
            for i, episode in tracker.step(
                step.reward.to(device), step.terminated.to(device), step.truncated.to(device), signal, state
            ):
                if i in results:
                    continue
                score = fitness.of(episode)
                results[i] = EvalEpisode(
                    length=episode.length,
                    terminated=episode.terminated,
                    fitness=score,
                    success=fitness.succeeded(score),
                    final_state={k: _plain(v[i]) for k, v in state.items()},
                    components={k: float(v[i]) / episode.length for k, v in sums.items()},
                    reward=float(total_sum[i]) / episode.length,
                )
    finally:
        env.close()
    return [results[i] for i in range(episodes)]


def _plain(value: torch.Tensor) -> float | list[float]:
    return float(value) if value.dim() == 0 else [float(x) for x in value.reshape(-1)]


def film(policy: ActorCritic, task: Task, path: Path, seed: int, device: torch.device) -> Path | None:
    """One episode of the deterministic policy in the task's gymnasium env, as mp4."""
    from eureka.training.envs import make_env

    env: gym.Env[Any, Any] | None = film_env(lambda size: make_env(task, "rgb_array", size=size))
    if env is None:
        return None
    film = Film(env)
    obs, _ = env.reset(seed=seed)
    done = False
    action_space = env.action_space
    while not done and not film.full:
        film.step(env.render)
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32).reshape(1, -1), device=device)
        action = policy.act(x, deterministic=True)[0]
        if isinstance(action_space, gym.spaces.Discrete):
            step_action: Any = int(action[0])
        else:
            low, high = action_space.low, action_space.high  # type: ignore[attr-defined]
            step_action = np.clip(action[0].cpu().numpy(), low, high).reshape(action_space.shape)
        obs, _, terminated, truncated, _ = env.step(step_action)
        done = terminated or truncated
    env.close()
    return film.write(path)


class CaptureError(Exception):
    """A CUDA graph capture of the training step failed: the device's random generators may be
    left in capture mode, so the training ends here (one line naming the fix)."""


def device_waits(caught: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    """The warnings of torch's sync debug mode that report a wait for the device ("called a
    synchronizing CUDA operation": any that speaks of synchronizing), but not the mode's own
    notice that it is a prototype (once per process, on the first step checked: no wait; taken
    for one, it turned the first CUDA-graph training of every process eager); the others are
    passed on."""
    notice = [w for w in caught if "debug mode is a prototype" in str(w.message)]
    waits = [w for w in caught if "synchroniz" in str(w.message) and w not in notice]
    for w in caught:
        if w not in waits and w not in notice:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return waits


class StepGraph:
    """A training step replayed as a CUDA graph: `step` runs `fn` eagerly on a side stream for
    `WARMUP` steps, then captures it once and replays it from then on. `fn` must keep every
    tensor that outlives a step at a fixed address (updated in place) and must not wait for the
    device. The last warm-up step runs under torch's sync debug mode: where it waits for the
    device (a reward that reads a value back to the host), one line says so, nothing is captured
    and every step runs eagerly. A capture that still fails raises `CaptureError` (torch leaves
    its generators in capture mode). Random numbers come from the device's default generator and
    the environment's own generators, registered with the graph, so a replayed step draws other
    numbers than an eager one would: graph and eager training agree in distribution, not
    bitwise."""

    WARMUP = 3

    def __init__(
        self,
        fn: Callable[[], tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]],
        generators: Iterable[torch.Generator] = (),
    ) -> None:
        self.fn = fn
        self.generators = [g for g in generators if g.device.type == "cuda"]
        self.side = torch.cuda.Stream()
        self.graph: torch.cuda.CUDAGraph | None = None
        self.outputs: tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor] | None = None
        self.eager = 0
        self.failed = False

    def step(self) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        if self.graph is None and not self.failed and self.eager >= self.WARMUP:
            self._capture()
        if self.graph is not None and self.outputs is not None:
            self.graph.replay()
            return self.outputs
        if self.failed:
            return self.fn()
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):
            out = self._checked() if self.eager == self.WARMUP - 1 else self.fn()
        torch.cuda.current_stream().wait_stream(self.side)
        self.eager += 1
        return out

    def _checked(self) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """`fn` run once under torch's sync debug mode; `failed` set where it waited for the
        device. Other warnings are passed on."""
        previous = torch.cuda.get_sync_debug_mode()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                out = self.fn()
            finally:
                torch.cuda.set_sync_debug_mode(previous)
        syncs = device_waits(caught)
        if syncs:
            self.failed = True
            print(
                f"cuda graph: the step waits for the device ({str(syncs[0].message)[:160]}); "
                "training eagerly",
                flush=True,
            )
        return out

    def _capture(self) -> None:
        graph = torch.cuda.CUDAGraph()
        previous = torch.cuda.current_stream()
        try:
            for generator in self.generators:
                graph.register_generator_state(generator)
            with torch.cuda.graph(graph):
                outputs = self.fn()
        except Exception as exc:
            torch.cuda.set_stream(previous)  # torch ends the capture before restoring the stream
            self.failed = True
            root: BaseException = exc
            while root.__context__ is not None:  # the first error, not the capture end's own
                root = root.__context__
            message = str(root).splitlines()[0][:160] if str(root) else ""
            raise CaptureError(
                f"cuda graph: the step could not be captured ({type(root).__name__}: {message}); "
                "set training.batched.cuda_graph: false to train eagerly"
            ) from exc
        self.graph, self.outputs = graph, outputs


def train_batched(job: TrainJob, task: Task, device: torch.device, start: float) -> TrainResult:
    """Train with batched PPO on the task's batched environment and measure F."""
    training = BatchedTraining(job, task, device, start)
    try:
        while not training.advance():
            pass
        return training.finish()
    finally:
        training.close()


def score_saved(job: TrainJob, task: Task, device: torch.device) -> tuple[list[EvalEpisode], Path | None]:
    """The evaluation episodes (and the video, when the job films) of the policy the job's
    training saved, measured with no reward: its parameters read with `torch.load`'s
    `weights_only` (no unpickling of anything else), into a network built from the task's own
    environment and configuration (`eureka.training.scoring`)."""
    config = (task.spec.training.batched or BatchedSpec()).on(device.type)
    physics: Physics = "cpu" if on_mjx(task.spec.env.id, device, config.physics) else config.physics
    threads = max(1, job.sim_threads or job.threads)

    def make(n: int, seed: int) -> BatchedEnv:
        return make_batched(task, n, device, seed, threads=threads, physics=physics)

    probe = make(1, job.seed)
    try:
        obs_dim, action = probe.obs_dim, probe.action
    finally:
        probe.close()
    policy = ActorCritic(obs_dim, action, config, device)
    saved = load_weights(job.out_dir / POLICY_FILE, device)
    if not isinstance(saved, dict) or "model" not in saved:
        raise ValueError(f"{POLICY_FILE} holds no policy parameters")
    policy.load_state_dict(saved["model"])
    seed = job.seed + 10_000
    episodes = evaluate(
        policy, task, make, Fitness(task), None, task.spec.training.eval_episodes, seed, device, sparse=False
    )
    video = film(policy, task, job.out_dir / VIDEO_FILE, seed, device) if job.video else None
    return episodes, video


def evaluation_physics(env: BatchedEnv, physics: Physics) -> Physics:
    """Where the evaluation episodes step: MuJoCo's CPU engine after training on MJX (a few
    environments need no second compiled MJX program, 15-20 s on a GPU, and F is measured on the
    reference engine), else where training stepped."""
    mjx = sys.modules.get("eureka.training.sim.mjx")  # not imported: no MJX environment exists
    return "cpu" if mjx is not None and isinstance(env, mjx.MjxBatch) else physics


class BatchedTraining:
    """One job's batched training, advanced one rollout and policy update at a time:
    `train_batched` runs one to its end; `eureka.training.group_worker` runs several in turn in
    one process. Made: the environment is built, the rewards compiled and smoke-tested, PPO set
    up (`result` is already set when the job ends there: a failed smoke test, a check-only job)."""

    def __init__(self, job: TrainJob, task: Task, device: torch.device, start: float) -> None:
        self.job = job
        self.task = task
        self.device = device
        self.start = start
        self.config = config = (task.spec.training.batched or BatchedSpec()).on(device.type)
        self.timesteps = tasks.budget(task, "batched", job.timesteps)
        self.fitness = Fitness(task)
        self.env = self._make(config.num_envs, job.seed)
        self.physics = evaluation_physics(self.env, config.physics)
        self.backend = f"batched:{type(self.env).__name__}"
        self.result: TrainResult | None = None
        """Set when the job has ended (early, or by `finish`)."""
        try:
            self._begin()
        except BaseException:
            self.env.close()
            raise

    def _make(self, n: int, seed: int, physics: Physics | None = None) -> BatchedEnv:
        return make_batched(
            self.task,
            n,
            self.device,
            seed,
            threads=max(1, self.job.sim_threads or self.job.threads),
            physics=physics or self.config.physics,
        )

    def _begin(self) -> None:
        job, task, env, device = self.job, self.task, self.env, self.device
        try:
            self.reward, reference = compile_rewards(job, task)
            self.rollout = Rollout(task, env, self.fitness, self.reward, reference, device)
            with self.reward.varying() if self.reward is not None else contextlib.nullcontext():
                _smoke(self.rollout, job.seed, smoke_steps(job), job.out_dir)
        except RewardError as exc:
            self.result = TrainResult(
                status=exc.status, message=exc.message, device=str(device), backend=self.backend
            )
            return
        self.result = smoke_passed(job, CHECK_STEPS * env.num_envs, device, self.start, self.backend)
        if self.result is not None:
            return
        self.ppo = PPO(env.obs_dim, env.action, self.config, device)
        self.done_steps = 0
        saved: dict[str, Any] = {}
        if job.resume_from is not None:
            saved = torch.load(job.resume_from, map_location=device, weights_only=False)
            self.ppo.load_state_dict(saved)
            self.done_steps = int(saved.get("env_steps", 0))
        self.recorder = StatsRecorder(self.timesteps, task.spec.training.checkpoints)
        if job.resume_from is not None:
            self.recorder.restore(saved["stats"])
        self.correlation = Correlation()
        self.tracker = BatchedEpisodes(
            env.num_envs, env.max_episode_steps, self.fitness.needs_states, device, self.config.num_steps
        )
        self.rollout.defer_checks()
        self.step_graph: StepGraph | None = None
        if self.config.cuda_graph and device.type == "cuda":
            if env.graphable:
                self.step_graph = StepGraph(self._step, env.generators)
            else:
                print(f"cuda graph: {type(env).__name__} steps on the host; training eagerly", flush=True)
        self.progress = ProgressFile(job.out_dir, self.timesteps)
        self.obs = self.rollout.reset(job.seed + self.done_steps)
        self.steps = self._flushed_steps = self.done_steps
        self.train_start = time.monotonic()
        self.train_time: float | None = None
        self.clock = SolveClock(task.spec.fitness.threshold)
        print(
            f"training {task.name} with batched PPO ({self.config.num_envs} envs, {self.backend}) for "
            f"{self.timesteps} steps on {device}"
            + (f", resuming at {self.done_steps}" if self.done_steps else ""),
            flush=True,
        )

    def advance(self) -> bool:
        """Step the environments until the next policy update, or to the end of the budget;
        True when training is over (then `finish` gives the result)."""
        if self.result is not None or self.train_time is not None:
            return True
        ppo, rollout, recorder = self.ppo, self.rollout, self.recorder
        num_envs = self.env.num_envs
        try:
            while self.steps < self.timesteps:
                self.tracker.tick()
                total, components, ref = (
                    self.step_graph.step() if self.step_graph is not None else self._step()
                )
                recorder.on_step(total, components)
                if rollout.reference is not None:
                    self.correlation.add(total, ref)
                full = ppo.tick()
                self.obs = rollout.obs
                self.steps += num_envs
                # what the host reads back, once per rollout (and before a checkpoint closes)
                if full or self.steps >= self.timesteps or recorder.closes(self.steps):
                    self._flush()
                if full:
                    recorder.on_update(ppo.update(self.obs))
                if self.job.stop_when_solved and self.clock.solved:
                    break
                self.progress.update(self.steps, recorder, recorder.maybe_close(self.steps), self.done_steps)
                if full and self.steps < self.timesteps:
                    return False
        except RewardError as exc:
            earlier = self._nonfinite()  # a deferred NaN before a step that failed at once
            error = earlier or exc
            self.result = self._partial(error.status, error.message)
            return True
        except CaptureError as exc:
            self.result = self._partial(Status.CRASHED, str(exc))
            return True
        except FloatingPointError as exc:
            message = f"training diverged (non-finite values in the policy): {str(exc)[:200]}"
            self.result = self._partial(Status.DIVERGED, message)
            return True
        self.rollout.defer_checks(False)
        self.train_time = time.monotonic() - self.train_start
        return True

    def _step(self) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """One training step's work on the device (policy sample, environment step, reward,
        tracker and rollout writes): what a CUDA graph captures. Returns (total reward,
        components, reference reward or empty)."""
        device = self.device
        actions = self.ppo.act(self.rollout.obs)
        step, total, components, signal, state, ref = self.rollout.step(actions)
        terminated, truncated = step.terminated.to(device), step.truncated.to(device)
        self.tracker.write(step.reward.to(device), terminated, truncated, signal, state)
        self.ppo.record(total, terminated, truncated, step.final_obs.to(device))
        return total, components, ref

    def _nonfinite(self) -> RewardError | None:
        """The error for the first step since the last flush whose reward was not finite, with
        `steps` set back to the steps before it (what an immediate check would have left)."""
        bad = self.rollout.first_nonfinite()
        if bad is None:
            return None
        self.steps = self._flushed_steps + bad[0] * self.env.num_envs
        return bad[1]

    def _flush(self) -> None:
        """The rewards since the last flush checked for NaN and infinity, then each episode that
        ended since then recorded in the order it ended."""
        error = self._nonfinite()
        if error is not None:
            raise error
        self._flushed_steps = self.steps
        num_envs = self.env.num_envs
        for t, _, episode in self.tracker.flush():
            score = self.fitness.of(episode)
            self.recorder.on_episode(score, episode.length)
            self.clock.on_episode(score, self.steps - (self.tracker.t - 1 - t) * num_envs)

    def _partial(self, status: Status, message: str) -> TrainResult:
        elapsed = time.monotonic() - self.train_start
        return partial_result(
            status, message, self.recorder, self.steps - self.done_steps, elapsed, self.device, self.backend
        )

    def finish(self) -> TrainResult:
        """The result once `advance` said training is over: the policy saved, F measured on
        evaluation episodes, the video filmed."""
        if self.result is not None:
            return self.result
        assert self.train_time is not None, "finish() before advance() returned True"
        job, task, env, ppo, recorder = self.job, self.task, self.env, self.ppo, self.recorder
        if recorder.pending:
            recorder.close(self.steps)
        policy_file = job.out_dir / POLICY_FILE
        ppo.save(
            policy_file,
            {
                "env_steps": self.steps,
                "obs_dim": env.obs_dim,
                "action": {k: np.asarray(v).tolist() for k, v in env.action.__dict__.items()},
                "stats": recorder.state(),
            },
        )
        spec = task.spec.training
        evaluation = functools.partial(self._make, physics=self.physics)
        episodes = evaluate(
            ppo.model,
            task,
            evaluation,
            self.fitness,
            self.reward,
            spec.eval_episodes,
            job.seed + 10_000,
            self.device,
        )
        video = (
            film(ppo.model, task, job.out_dir / VIDEO_FILE, job.seed + 10_000, self.device)
            if job.video
            else None
        )
        self.result = trained_result(
            episodes,
            self.fitness,
            recorder,
            env_steps=self.steps,
            learned_steps=self.steps - self.done_steps,
            start=self.start,
            train_time=self.train_time,
            policy_file=policy_file,
            video=video,
            device=self.device,
            correlation=self.correlation,
            clock=self.clock,
            backend=self.backend,
            checkpoint_file=CHECKPOINT_FILE,
        )
        return self.result

    def close(self) -> None:
        self.env.close()
