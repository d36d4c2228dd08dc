"""Typed records passed between the stages of eureka (task specs, jobs, results)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Base for records read from files: unknown keys are errors, records are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Status(str, Enum):
    """How a candidate reward ended."""

    OK = "ok"
    NO_CODE = "no_code"
    CHECK_FAILED = "check_failed"
    CRASHED = "crashed"
    TIMEOUT = "timeout"
    DIVERGED = "diverged"
    KILLED_RESOURCE = "killed_resource"


# ---------------------------------------------------------------- task.yaml


class EnvSpec(Strict):
    """Which environment a task trains in."""

    id: str
    """A gymnasium id (`CartPole-v1`) or `module:Class` for an env.py in the task folder."""
    kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the environment's constructor."""
    max_episode_steps: int | None = None
    """Time limit; `None` keeps the environment's registered limit."""


class StateField(Strict):
    """One named quantity the reward function may take as a parameter."""

    description: str
    """What the quantity means, written for the LLM."""
    unit: str = ""
    """Physical unit (`m`, `rad/s`), or empty for dimensionless values."""
    shape: tuple[int, ...] = ()
    """Shape of one environment's value; the reward sees `[N, *shape]`."""
    obs: int | tuple[int, int] | None = None
    """Index (or `[start, stop]` slice) into the observation; `None` when state.py provides it."""


class FitnessSpec(Strict):
    """The task's true success metric F, computed per episode and averaged."""

    metric: Literal[
        "env_return",
        "episode_length",
        "signal_sum",
        "signal_mean",
        "signal_any",
        "signal_at_end",
        "custom",
    ]
    """How F is computed per episode: the environment's own return, the episode length,
    a reduction of the task's success signal (fitness.py `success_signal`), or
    `custom` (fitness.py `episode_fitness`)."""
    description: str
    """What F measures, shown to the LLM as the name of the task score."""
    threshold: float
    """The task is solved when mean F over evaluation episodes reaches this; an episode
    counts as a success when its own F reaches it."""


class TrainingSpec(Strict):
    """How a policy is trained for this task (stable-baselines3)."""

    algorithm: Literal["PPO", "SAC", "TD3", "A2C"] = "PPO"
    timesteps: int = Field(gt=0)
    """Default training budget in environment steps."""
    n_envs: int = Field(default=8, gt=0)
    """Environments stepped together; the reward is computed once per batched step."""
    normalize: bool = False
    """Wrap the environments in VecNormalize (observations and rewards)."""
    hyperparams: dict[str, Any] = Field(default_factory=dict)
    """Constructor arguments for the algorithm; `lin_<x>` strings are linear schedules."""
    eval_episodes: int = Field(default=10, gt=0)
    """Episodes of the final deterministic policy used to measure F."""
    checkpoints: int = Field(default=10, gt=1)
    """Number of points at which training statistics are summarised."""
    timeout: float = Field(default=3600.0, gt=0)
    """Wall-clock limit of one training job in seconds."""


class TaskSpec(Strict):
    """The contents of task.yaml."""

    name: str
    description: str
    """What the LLM is told the agent must do."""
    env: EnvSpec
    state: dict[str, StateField]
    action: str
    """What the action means, written for the LLM."""
    termination: str
    """When an episode ends, written for the LLM."""
    fitness: FitnessSpec
    training: TrainingSpec
    machine_note: str = ""
    """Shown in `eureka tasks list` when the default budget needs a bigger machine."""


class Task(BaseModel):
    """A loaded task: its spec plus where its folder is."""

    model_config = ConfigDict(frozen=True)

    spec: TaskSpec
    folder: Path

    @property
    def name(self) -> str:
        return self.spec.name

    def file(self, name: str) -> Path | None:
        path = self.folder / name
        return path if path.is_file() else None


# ---------------------------------------------------------------- training jobs


class TrainJob(BaseModel):
    """Everything a training run depends on: it is a pure function of this record."""

    model_config = ConfigDict(frozen=True)

    task_folder: Path
    reward_file: Path | None
    """The reward code; `None` trains on the task's sparse success signal."""
    out_dir: Path
    seed: int = 0
    timesteps: int | None = None
    """Overrides the task's budget."""
    device: str = "auto"
    video: bool = True
    threads: int = 1
    """torch threads inside the worker."""
    check_only: bool = False
    """Only run the reward on real states from random rollouts (the critic's smoke test)."""
    reference_reward: Path | None = None
    """A second reward (the task's human reward) evaluated on the same states, to report how
    the two correlate."""


class ComponentStats(BaseModel):
    """Per-checkpoint mean of one reward component over training."""

    name: str
    means: list[float | None]
    """None where the component was absent or not finite in that window."""


class TrainResult(BaseModel):
    """What a training job produced (metrics.json)."""

    status: Status
    message: str = ""
    fitness: float | None = None
    """Mean F of the final policy over the evaluation episodes."""
    fitness_std: float | None = None
    success_rate: float | None = None
    solved: bool = False
    """Mean F reached the task's threshold."""
    checkpoint_steps: list[int] = Field(default_factory=list)
    fitness_curve: list[float | None] = Field(default_factory=list)
    """Mean F of the training episodes that ended in each checkpoint window."""
    episode_length_curve: list[float | None] = Field(default_factory=list)
    reward_curve: list[float | None] = Field(default_factory=list)
    """Mean total reward per step in each window."""
    components: list[ComponentStats] = Field(default_factory=list)
    eval_episode_lengths: list[int] = Field(default_factory=list)
    eval_fitness: list[float] = Field(default_factory=list)
    env_steps: int = 0
    wall_time: float = 0.0
    steps_per_second: float = 0.0
    policy_file: str | None = None
    video_file: str | None = None
    device: str = "cpu"
    reward_correlation: float | None = None
    """Pearson correlation, over training steps, of this reward with the reference reward."""


@dataclass(frozen=True)
class Episode:
    """One finished episode as the fitness function sees it."""

    states: dict[str, np.ndarray]
    """Each state field over the episode's steps, `[T, *shape]` (empty unless fitness needs it)."""
    env_rewards: np.ndarray
    """The environment's own reward at each step, `[T]`."""
    signal: np.ndarray | None
    """The task's success signal at each step, `[T]`, when the task defines one."""
    length: int
    terminated: bool
    """Ended by a terminal condition rather than the time limit."""


class CheckReport(BaseModel):
    """What the Reward Critic found before training (check.json)."""

    status: Status
    message: str = ""
    stage: Literal["static", "smoke", "llm", "passed"] = "passed"
    """The first stage that failed, or `passed`."""
    code: str = ""
    """The code that was checked (the LLM critic's revision when it made one that passed)."""
    revised_by_critic: bool = False


# ---------------------------------------------------------------- the loop


class SolveConfig(Strict):
    """Everything `eureka solve` was asked to do (saved as the run's config.yaml)."""

    task: str
    """Task name or folder."""
    model: str
    """A litellm model string, `local/smollm2`, or `replay:<run dir or transcript>`."""
    api_base: str | None = None
    """Base URL of an OpenAI-compatible server."""
    iterations: int = Field(default=5, ge=1)
    """Rounds of evolution (iterations where every candidate failed are repeated, not counted)."""
    samples: int = Field(default=8, ge=1)
    """Reward candidates sampled from the LLM per iteration (K)."""
    workers: int = Field(default=2, ge=1)
    """Candidates trained at the same time."""
    seed: int = 0
    timesteps: int | None = None
    """Training budget per candidate and per final-evaluation run (default: the task's)."""
    eval_seeds: int = Field(default=3, ge=0)
    """Seeds of the final evaluation of the best, human and sparse rewards (0 skips it)."""
    human_init: bool = False
    """Add the task's human reward as a candidate of the first iteration (Eureka's human init)."""
    tune: int = Field(default=0, ge=0)
    """Extra candidates per iteration made by perturbing the numeric constants of the best reward."""
    critic: Literal["static", "llm"] = "static"
    """`static`: static checks and a smoke test; `llm`: also the model reviews its own code."""
    repair_rounds: int = Field(default=1, ge=0)
    """Rounds in which a candidate that fails the critic is sent back with the error prompt."""
    max_failed_iterations: int = Field(default=3, ge=1)
    """Consecutive iterations in which every candidate fails before the run gives up."""
    temperature: float = 1.0
    max_cost: float | None = None
    """Stop cleanly once the LLM calls cost this many dollars."""
    max_tokens: int | None = None
    """Stop cleanly once the LLM calls used this many tokens."""
    cache: bool = True
    """Reuse replies to identical requests from the on-disk cache."""
    video: bool = True
    device: str = "auto"
    sandbox: Literal["auto", "bwrap", "none"] = "auto"
    """Isolation of generated code: bubblewrap where it works (`auto`, else a warning),
    required (`bwrap`), or none (`none`, only when asked for)."""


class Candidate(BaseModel):
    """One reward candidate and how it ended."""

    iteration: int
    index: int
    origin: Literal["llm", "tune", "human"] = "llm"
    status: Status
    message: str = ""
    fitness: float | None = None
    success_rate: float | None = None
    solved: bool = False
    reward_correlation: float | None = None
    repaired: bool = False
    """It failed the critic and its repair passed."""
    env_steps: int = 0
    wall_time: float = 0.0

    @property
    def name(self) -> str:
        return f"iter_{self.iteration}/cand_{self.index}"


class IterationSummary(BaseModel):
    iteration: int
    repeat: bool = False
    """Every candidate of the previous iteration failed; this one was asked with the errors."""
    candidates: list[Candidate] = Field(default_factory=list)
    best_fitness: float | None = None
    """Best F so far, after this iteration."""
    best: str | None = None


class EvalStats(BaseModel):
    """A reward retrained with several seeds."""

    fitness: list[float | None] = Field(default_factory=list)
    fitness_mean: float | None = None
    fitness_std: float | None = None
    success_rate: float | None = None
    statuses: list[str] = Field(default_factory=list)


class FinalEvaluation(BaseModel):
    seeds: list[int]
    timesteps: int
    best: EvalStats
    human: EvalStats
    sparse: EvalStats | None = None
    human_normalized_score: float | None = None
    """(F_best - F_sparse) / |F_human - F_sparse|, as in Eureka."""


class Summary(BaseModel):
    """summary.json: the state of a run, rewritten as it goes."""

    task: str
    model: str
    status: Literal["running", "ok", "failed", "budget"] = "running"
    message: str = ""
    iterations: list[IterationSummary] = Field(default_factory=list)
    best: Candidate | None = None
    final: FinalEvaluation | None = None
    llm_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    env_steps: int = 0
    wall_time: float = 0.0
