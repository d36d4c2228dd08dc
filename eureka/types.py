"""Typed records passed between the stages of eureka (task specs, jobs, results)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from eureka.errors import RunFileError

MESSAGE_LIMIT = 2000
"""Characters of a status message kept (a reward's exception text can be 100 KB)."""


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` as one line of printable characters, at most `limit` long: what a reward raised
    reaches the terminal, the report and the next prompt, so no escape codes (a clear-screen),
    no line breaks (a fake 'Traceback' line) and no 100 KB."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


Message = Annotated[str, AfterValidator(one_line)]
"""A status message (of a training, a check, a candidate, a run), made one line on the way in."""


def plain_name(name: str) -> str:
    """`name` when it names a file right inside a folder (no separator, not `.` or `..`): a
    result written where a reward's code runs names its files this way, or is not read (an
    absolute path would have the loop copy, or the report embed, a file of the host)."""
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"{name[:80]!r} is not the name of a file in the job's folder")
    return name


FileName = Annotated[str, AfterValidator(plain_name)]


RECORD = ConfigDict(ser_json_inf_nan="constants")
"""Records saved as JSON and read back: a NaN or infinite float (a reward component's mean, a
diverged statistic) is written as NaN/Infinity, which Python's json and pydantic read back, not
as null, which a float field refuses (the training was then taken as crashed)."""


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
    max_episode_steps: int | None = Field(default=None, ge=1)
    """Time limit; `None` keeps the environment's registered limit."""
    batched: str | None = None
    """`module:Class` in the task folder: a native batched port of the environment (a
    `eureka.training.sim.BatchedEnv`) for the fast training path."""


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
    threshold: float | None = None
    """The task is solved when mean F over evaluation episodes reaches this; an episode
    counts as a success when its own F reaches it. None (a task made by `tasks new` from an env
    that registers no reward_threshold, until one is set): nothing counts as solved."""


class BatchedSpec(Strict):
    """The fast training path: batched PPO on a batched environment (eureka.training.ppo)."""

    timesteps: int | None = Field(default=None, gt=0)
    """Training budget on this path; default: `training.timesteps`."""
    num_envs: int = Field(default=64, gt=0)
    num_steps: int = Field(default=32, gt=0)
    """Steps per environment between updates."""
    epochs: int = Field(default=4, gt=0)
    minibatches: int = Field(default=4, gt=0)
    learning_rate: float = Field(default=1e-3, gt=0)
    desired_kl: float | None = 0.01
    """KL-adaptive learning rate target; null for a fixed rate."""
    gamma: float = Field(default=0.99, gt=0, le=1)
    gae_lambda: float = Field(default=0.95, ge=0, le=1)
    clip: float = Field(default=0.2, gt=0)
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    max_grad_norm: float = 0.5
    hidden: tuple[int, ...] = (64, 64)
    activation: Literal["tanh", "relu", "elu"] = "tanh"
    normalize_obs: bool = True
    normalize_reward: bool = True
    init_log_std: float = 0.0
    physics: Literal["auto", "cpu", "mjx"] = "auto"
    """MuJoCo tasks: `mjx` steps the physics on the training device through MJX (needs jax and
    mujoco-mjx); `cpu` on CPU threads; `auto` is MJX on a cuda device where MJX is installed
    and ports the environment, else CPU threads."""
    cuda_graph: bool = False
    """On a cuda device, capture one training step (policy sample, environment step, reward,
    rollout store) as a CUDA graph after a few eager steps and replay it at every step (one
    launch instead of hundreds of small kernels). An environment stepped on the host (MuJoCo on
    CPU threads, MJX) trains eagerly, and so does a step whose last warm-up waits for the device
    (a reward that reads a value back to the host), each with one line saying so; a capture that
    still fails ends the training with status `crashed` and a message naming
    `cuda_graph: false` as the fix. The replay repeats the captured tensor operations only: a
    reward whose Python code changes from call to call (a counter, a schedule) is frozen as it
    was at capture."""
    cuda: dict[str, Any] = Field(default_factory=dict)
    """Settings that replace the ones above when training on a cuda device (a GPU steps
    thousands of environments for the cost of a few: more envs, fewer steps per env); any
    field but `timesteps` (the budget is the same on every device) and `cuda`."""

    @model_validator(mode="after")
    def _check_cuda(self) -> BatchedSpec:
        bad = sorted(set(self.cuda) & {"timesteps", "cuda"})
        if bad:
            raise ValueError(f"training.batched.cuda cannot set {', '.join(bad)}")
        try:
            self.on("cuda")  # unknown keys and bad values fail when the task loads
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"]))
            raise ValueError(f"in cuda, '{where}': {first['msg']}") from None
        return self

    def on(self, device_type: str) -> BatchedSpec:
        """The settings for training on a device of this type ('cuda' applies `cuda`)."""
        if device_type != "cuda" or not self.cuda:
            return self
        return BatchedSpec.model_validate({**self.model_dump(exclude={"cuda"}), **self.cuda})


class TrainingSpec(Strict):
    """How a policy is trained for this task: stable-baselines3, or the fast batched path."""

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
    cpus: float = Field(default=1.0, gt=0)
    """CPUs one training job asks for on a Ray cluster."""
    gpus: float = Field(default=0.0, ge=0)
    """GPUs one training job takes, on a Ray cluster and locally; a fraction shares a GPU (0.25:
    four jobs at once on each GPU, each kept to a quarter of its memory). 0: no GPU scheduling
    (jobs on cuda all take the first GPU, as many at once as `--workers`)."""
    backend: Literal["auto", "sb3", "batched"] = "auto"
    """`batched`: batched PPO on a batched environment (native port where one exists, else
    gymnasium's envs); `sb3`: stable-baselines3 with the settings above; `auto`: batched when
    the task has a `batched` section."""
    batched: BatchedSpec | None = None


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


SEED_MAX = 2**32 - 1
"""The largest seed numpy takes; a run's seed leaves room for the seeds derived from it."""


class TrainJob(BaseModel):
    """Everything a training run depends on: it is a pure function of this record."""

    model_config = ConfigDict(frozen=True)

    task_folder: Path
    reward_file: Path | None
    """The reward code; `None` trains on the task's sparse success signal."""
    out_dir: Path
    seed: int = Field(default=0, ge=0, le=SEED_MAX)
    timesteps: int | None = Field(default=None, gt=0)
    """Overrides the task's budget."""
    device: str = "auto"
    gpu_memory_fraction: float | None = Field(default=None, gt=0, le=1)
    """On a CUDA device: the share of its memory this job may take (torch's and JAX's
    allocators), set by the local executor from the task's `training.gpus`; None: no limit."""
    video: bool = True
    threads: int = Field(default=1, ge=1)
    """torch threads inside the worker."""
    sim_threads: int | None = Field(default=None, ge=1)
    """Threads of a simulator that steps environments in parallel on the CPU (batched MuJoCo);
    None: `threads`."""
    check_only: bool = False
    """Only run the reward on real states from random rollouts (the critic's smoke test)."""
    smoke_first: bool = False
    """Run the critic's smoke test first in the same worker and train only when it passes: one
    sandboxed worker (one torch import) per candidate instead of two. The result says whether
    the smoke test passed (`TrainResult.smoke`)."""
    smoke_timeout: float | None = None
    """With `smoke_first`: the smoke test's own wall-clock limit (the job is killed when the
    smoke test has not passed by then); None: the job's limit."""
    reference_reward: Path | None = None
    """A second reward (the task's human reward) evaluated on the same states, to report how
    the two correlate."""
    backend: Literal["auto", "sb3", "batched"] | None = None
    """Overrides the task's `training.backend`."""
    resume_from: Path | None = None
    """A checkpoint of the batched path (`checkpoint.pt`) to continue training from; the
    budget is then the total, including the steps already done (successive halving)."""
    stop_when_solved: bool = False
    """End training once the training episodes reach the success threshold (benchmarks; the
    batched path reads episodes back once per rollout, so it stops at that rollout's end)."""
    timeout: float | None = None
    """Wall-clock limit of the job in seconds; None: the task's `training.timeout`."""


class EvalEpisode(BaseModel):
    """One evaluation episode of a trained policy, as the Trajectory Analyzer reads it."""

    model_config = RECORD

    length: int
    terminated: bool
    """Ended by a terminal condition (not the time limit)."""
    fitness: float
    success: bool
    final_state: dict[str, float | list[float]] = Field(default_factory=dict)
    """Each state field at the episode's last step (vectors as lists)."""
    components: dict[str, float] = Field(default_factory=dict)
    """Mean per step of each component of the candidate's reward over the episode."""
    reward: float | None = None
    """Mean total reward per step (the candidate's reward)."""


class ComponentStats(BaseModel):
    """Per-checkpoint mean of one reward component over training."""

    model_config = RECORD

    name: str
    means: list[float | None]
    """None where the component was absent or not finite in that window."""


class TrainResult(BaseModel):
    """What a training job produced (metrics.json)."""

    model_config = RECORD

    status: Status
    message: Message = ""
    fitness: float | None = None
    """Mean F of the final policy over the evaluation episodes."""
    fitness_std: float | None = None
    success_rate: float | None = None
    solved: bool = False
    """Mean F of the final policy over the evaluation episodes reached the task's threshold."""
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
    policy_file: FileName | None = None
    video_file: FileName | None = None
    device: str = "cpu"
    reward_correlation: float | None = None
    """Pearson correlation, over training steps, of this reward with the reference reward."""
    eval_episodes: list[EvalEpisode] = Field(default_factory=list)
    backend: str = "sb3"
    """`sb3`, or `batched:<environment backend>` for the fast path."""
    checkpoint_file: FileName | None = None
    """The batched path's resumable state (policy, optimiser, normalisers)."""
    solved_after_steps: int | None = None
    """Env steps until the mean F of the last 20 *training* episodes first reached the threshold
    (a training statistic: it may be set while `solved`, the final policy's, is False)."""
    solved_after_seconds: float | None = None
    """Training seconds until then (time to solve)."""
    diagnostics: dict[str, list[float]] = Field(default_factory=dict)
    """The learner's update statistics per checkpoint window (batched PPO: approx_kl,
    clip_fraction, entropy, value_loss, explained_variance), shown in the reflection."""
    smoke: str | None = None
    """For a `smoke_first` job: the smoke test's message when it passed (training followed);
    None when it did not (this result is then the smoke test's failure)."""


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

    model_config = RECORD

    status: Status
    message: Message = ""
    stage: Literal["extract", "static", "smoke", "llm", "passed"] = "passed"
    """The first stage that failed (`extract`: the reply holds no code), or `passed`."""
    code: str = ""
    """The code that was checked (the LLM critic's revision when it made one that passed)."""
    revised_by_critic: bool = False


# ---------------------------------------------------------------- the loop


def _cores() -> int:
    return os.cpu_count() or 1


REQUEST_TIMEOUT = 60.0
"""Seconds to wait for one reply of the LLM provider (`--request-timeout`)."""
REQUEST_RETRIES = 2
"""Tries more for one LLM request after a timeout, a rate limit or a server error."""
REPLY_TOKENS = 4096
"""Most tokens of one LLM reply (sent as max_tokens; bounds a call's cost before it is sent)."""


class SolveConfig(Strict):
    """Everything `eureka solve` was asked to do (saved as the run's config.yaml). The options
    of `eureka solve` and `eureka batch` take their defaults and help from these fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    task: str
    """Task name or folder."""
    model: str
    """A litellm model string, `local/smollm2`, `replay:<run dir or transcript>`, or `none` (no
    LLM: the human reward, the optimiser and the structure operators)."""
    api_base: str | None = None
    """Base URL of an OpenAI-compatible server."""
    iterations: int = Field(default=5, ge=1)
    """Rounds of evolution (iterations where every candidate failed are repeated, not counted)."""
    samples: int = Field(default=8, ge=1)
    """Reward candidates sampled from the LLM per iteration (K)."""
    workers: int = Field(default_factory=_cores, ge=1)
    """Candidates trained at the same time (default: one per CPU core; `auto` on the command line)."""
    seed: int = Field(default=0, ge=0, le=SEED_MAX - 100_000)
    """Random seed of training (the final evaluation uses seed + 1000, + 1001, ...)."""
    threads: int = Field(default=1, ge=1)
    """torch threads inside each training job. With the same seed, machine and thread counts a
    training is repeated exactly (tests/test_determinism.py)."""
    sim_threads: int = Field(default=1, ge=1)
    """Threads of the batched MuJoCo simulator inside each training job (results do not depend
    on it: each environment steps alone)."""
    timesteps: int | None = Field(default=None, gt=0)
    """Training budget per candidate and per final-evaluation run (default: the task's)."""
    eval_seeds: int = Field(default=3, ge=0)
    """Seeds of the final evaluation of the best, human and sparse rewards (0 skips it)."""
    human_init: bool = False
    """Add the task's human reward as a candidate of the first iteration (Eureka's human init)."""
    tune: int = Field(default=0, ge=0)
    """Extra candidates per iteration that tune the best reward's numbers: trials of the optimiser
    (its constants and blend weights over its components and the human reward), or random
    perturbations of its constants (`tuner: random`)."""
    tuner: Literal["optuna", "cmaes", "random"] = "optuna"
    """How `tune` candidates are made: an Optuna study stored in the run directory (`optuna`:
    TPE, `cmaes`: CMA-ES), or random log-uniform perturbation of the constants."""
    peaks: bool = False
    """Let the optimiser add a peak to each cost of the reward it tunes (a component <= 0 throughout
    training: a distance, an effort): `weight x exp(cost / width)`, off at the start, its weight and
    width searched (Eureka's exp(-distance / temperature) shape)."""
    bonus: bool = False
    """Let the optimiser add a bonus on the task's success signal (fitness.py `success_signal`,
    per step) to the reward it tunes, its weight searched from 0 (BARFI's blend of the primary
    reward, what F measures, with the shaping one)."""
    structure: int = Field(default=0, ge=0)
    """Extra candidates per iteration made by the structure operators: crossover of components
    with other trained rewards, dropping one, adding one from another reward."""
    confirm: int = Field(default=0, ge=0)
    """Before the final evaluation, retrain this many rewards on one more seed and keep the best
    by its mean F over both seeds: the human reward (when it trained) and the best others by F
    (0: off; the best by one seed's F is kept). Guards against a lucky single-seed score."""
    confirm_seeds: int = Field(default=1, ge=1)
    """Fresh seeds of the confirmation. With the human reward among the `confirm` rewards, all
    train on the first; the best challenger that beat it there by 10% trains on the others beside
    it, and replaces it only where it beats it by 10% on the mean over these seeds and on more
    than half of them: more seeds, fewer lucky challengers. Without it, the two best by mean F on
    the first go on to the others, and the better by mean F over its seeds is kept."""
    backend: Literal["auto", "sb3", "batched"] = "auto"
    """Training path of every candidate: the task's choice (`auto`), SB3, or batched PPO."""
    group: int = Field(default=1, ge=1)
    """Candidates trained together in one sandboxed process on the batched path, each with its own
    policy, reward, seed and result (as if alone): one start-up and, on a GPU, one CUDA context
    for K trainings. They share one sandbox: isolated from the host, not from each other. 1: each
    alone. Not with successive halving."""
    halving: int = Field(default=0, ge=0)
    """Successive halving over this many rungs (0 or 1: off): all candidates train to
    budget / 2^(rungs-1), the better half continues, until the survivors reach the budget.
    Needs the batched training path (it resumes from checkpoints)."""
    critic: Literal["static", "llm"] = "static"
    """`static`: static checks and a smoke test; `llm`: also the model reviews its own code."""
    repair_rounds: int = Field(default=1, ge=0)
    """Rounds in which a candidate that fails the critic is sent back with the error prompt."""
    max_failed_iterations: int = Field(default=3, ge=1)
    """Consecutive iterations in which every candidate fails before the run gives up."""
    temperature: float = Field(default=1.0, ge=0.0)
    """Sampling temperature of the LLM."""
    max_cost: float | None = Field(default=None, gt=0)
    """Stop cleanly before an LLM call that could take the cost past this many dollars (its
    cost is estimated from the prompt and `reply_tokens` before it is sent)."""
    max_tokens: int | None = Field(default=None, gt=0)
    """Stop cleanly before an LLM call that could take the tokens used past this many."""
    reply_tokens: int = Field(default=REPLY_TOKENS, ge=1)
    """Most tokens of one reply (sent to the provider as max_tokens)."""
    request_timeout: float = Field(default=REQUEST_TIMEOUT, gt=0)
    """Seconds to wait for the provider's answer to one request."""
    request_retries: int = Field(default=REQUEST_RETRIES, ge=0)
    """Tries more after a timeout, a rate limit or a server error, with backoff; a call gives
    up after (1 + retries) × request_timeout plus the backoff at most."""
    cache: bool = True
    """Reuse replies to identical requests from the on-disk cache."""
    video: bool = True
    """Film trained policies (rollout.mp4) for the report and for human feedback."""
    device: str = "auto"
    """`auto` (cuda when present), `cpu` or `cuda`."""
    feedback: Literal["auto", "critique", "rank", "synthetic"] = "auto"
    """What steers the next prompt: `auto` (reward reflection and trajectory analysis),
    `critique` (a human's words on the best candidate), `rank` (a human ranks every trained
    candidate's rollout video, ICPL), `synthetic` (an oracle ranks by true fitness, the same
    code path as `rank`)."""
    analyzer: Literal["rules", "llm"] = "rules"
    """`llm` adds the model's diagnosis to the rule-based trajectory summary."""
    oracle_noise: float = Field(default=0.0, ge=0)
    """Synthetic feedback: noise added to F before ranking, as a fraction of F's spread."""
    executor: Literal["local", "ray"] = "local"
    """Where candidates train: sandboxed processes on this machine, or Ray tasks on a cluster."""
    ray_address: str | None = None
    """The Ray cluster (`auto`, `HOST:PORT`, `ray://HOST:10001`); None: `auto`."""
    ray_retries: int = Field(default=1, ge=0)
    """Tries more for a job whose Ray worker died, before its candidate ends `crashed`."""
    sandbox: Literal["auto", "bwrap", "unshare", "none"] = "auto"
    """Isolation of generated code: bubblewrap where it works, else util-linux's unshare
    (`auto`, else a warning), one of them required (`bwrap`, `unshare`), or none (`none`, only
    when asked for)."""


class Ranking(BaseModel):
    """A ranking of trained candidates by their behaviour (a human's, or the synthetic oracle's)."""

    model_config = RECORD

    order: list[str]
    """Candidate names, most preferred first."""
    complete: bool = True
    """False when only the best (first) and the worst (last) were picked."""
    comments: dict[str, str] = Field(default_factory=dict)
    """A comment per candidate name, where one was given."""
    source: Literal["human", "synthetic"] = "human"

    def pairs(self) -> list[tuple[str, str]]:
        """(preferred, less preferred) pairs the ranking states."""
        if self.complete:
            return [(a, b) for i, a in enumerate(self.order) for b in self.order[i + 1 :]]
        best, worst, middle = self.order[0], self.order[-1], self.order[1:-1]
        return [(best, x) for x in [*middle, worst]] + [(x, worst) for x in middle]


class Feedback(BaseModel):
    """What the next prompt learns about an iteration (iter_<i>/feedback.json)."""

    model_config = RECORD

    iteration: int
    mode: Literal["auto", "critique", "rank", "synthetic"]
    elite: str | None = None
    """The candidate the next prompt builds on (best F, or the preferred one when ranked)."""
    worst: str | None = None
    """The least preferred candidate (rank and synthetic modes)."""
    critique: str = ""
    """What the human said about the elite (critique mode)."""
    ranking: Ranking | None = None
    analysis: str = ""
    """The Trajectory Analyzer's summary of the elite's evaluation rollouts."""
    diagnosis: str = ""
    """The model's diagnosis of that summary (`--analyzer llm`)."""


class Attempt(BaseModel):
    """One version of a candidate's code: the reply it came from and the critic's verdict."""

    model_config = RECORD

    response: str
    """The LLM's reply (for a tuned or the human candidate: its code, fenced)."""
    check: CheckReport
    """What the critic found; `check.code` is the code it checked (empty: the reply had none)."""


def write_whole(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all: through a file of this process and thread's
    own beside it, renamed over `path`. A run killed mid-write, or a second process writing the
    same file (two runs sharing the reply cache), never leaves half a file for a reader."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


Record = TypeVar("Record", bound=BaseModel)


def read_record(model: type[Record], path: Path) -> Record:
    """The record saved in `path` (a run directory's JSON files); one that does not parse as its
    record is a RunFileError naming the file and how to go on, not a validation traceback."""
    try:
        return model.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise RunFileError(
            f"{path}: damaged ({first['msg']}{f' at {where}' if where else ''}); delete it and resume "
            "to redo the step it records, or restore it"
        ) from None


CANDIDATE_FILE = "candidate.json"
RESPONSE_FILE = "response.md"
CHECK_FILE = "check.json"
REWARD_FILE = "reward.py"
METRICS_FILE = "metrics.json"
"""The TrainResult a training job writes in its folder (also for a crash or a timeout)."""


Origin = Literal["llm", "tune", "human", "crossover", "drop", "add"]
"""Who proposed a candidate."""


class Candidate(BaseModel):
    """One reward candidate: where it came from, every attempt at its code (the reply and each
    repair, with the critic's verdict), its training result and how it ended.

    It saves itself to its folder and loads itself back, so a stopped run resumes from it.
    summary.json and the display see only how it ended (the fields up to `elo`); its attempts
    and result live in its folder."""

    model_config = RECORD

    iteration: int
    index: int
    origin: Origin = "llm"
    """Who proposed it: the LLM, the optimiser (tune), a structure operator, or the task's human."""
    status: Status
    message: Message = ""
    fitness: float | None = None
    success_rate: float | None = None
    solved: bool = False
    reward_correlation: float | None = None
    repaired: bool = False
    """It failed the critic and a repair passed."""
    env_steps: int = 0
    wall_time: float = 0.0
    elo: float | None = None
    """Preference score from the rankings it took part in (rank and synthetic feedback)."""
    attempts: list[Attempt] = Field(default_factory=list, exclude=True)
    """The reply, then each repair round's reply, with the critic's verdict on each."""
    result: TrainResult | None = Field(default=None, exclude=True)
    """What its training produced (metrics.json); None until it trained."""

    @property
    def name(self) -> str:
        return f"iter_{self.iteration}/cand_{self.index}"

    @property
    def response(self) -> str:
        """The reply its code comes from (the last repair's, when it was repaired)."""
        return self.attempts[-1].response if self.attempts else ""

    @property
    def code(self) -> str:
        """The code it trains with: the last attempt's, as the critic checked it."""
        return self.attempts[-1].check.code if self.attempts else ""

    def outcome(self, elo: float | None = None) -> Candidate:
        """How it ended, with its preference score, without its attempts and result (a row of
        summary.json)."""
        return self.model_copy(update={"elo": elo, "attempts": [], "result": None})

    def after_training(self, result: TrainResult) -> Candidate:
        """This candidate ended by its training `result`."""
        return self.model_copy(
            update={
                "status": result.status,
                "message": result.message,
                "fitness": result.fitness,
                "success_rate": result.success_rate,
                "solved": result.solved,
                "reward_correlation": result.reward_correlation,
                "env_steps": result.env_steps,
                "wall_time": result.wall_time,
                "result": result,
            }
        )

    @staticmethod
    def attempt_dir(folder: Path, attempt: int) -> Path:
        """Where attempt `attempt` keeps its reply and check: the candidate's folder for the
        reply, `repair/` for the first repair round, `repair_<k>/` for round k > 1."""
        if attempt == 0:
            return folder
        return folder / ("repair" if attempt == 1 else f"repair_{attempt}")

    def save(self, folder: Path) -> None:
        """Each attempt's response.md and check.json, the code as reward.py and how it ended
        as candidate.json (written last: its presence means the candidate has ended).
        metrics.json is the training job's own file."""
        for k, attempt in enumerate(self.attempts):
            where = self.attempt_dir(folder, k)
            where.mkdir(parents=True, exist_ok=True)
            (where / RESPONSE_FILE).write_text(attempt.response)
            write_whole(where / CHECK_FILE, attempt.check.model_dump_json(indent=2))
        if self.code:
            (folder / REWARD_FILE).write_text(self.code)
        write_whole(folder / CANDIDATE_FILE, self.model_dump_json(indent=2))

    @classmethod
    def load(cls, folder: Path) -> Candidate | None:
        """The candidate saved in `folder` with its attempts and training result; None when it
        had not ended (no candidate.json)."""
        path = folder / CANDIDATE_FILE
        if not path.is_file():
            return None
        attempts: list[Attempt] = []
        while True:
            where = cls.attempt_dir(folder, len(attempts))
            if not (where / RESPONSE_FILE).is_file() or not (where / CHECK_FILE).is_file():
                break
            check = read_record(CheckReport, where / CHECK_FILE)
            attempts.append(Attempt(response=(where / RESPONSE_FILE).read_text(), check=check))
        metrics = folder / METRICS_FILE
        result = read_record(TrainResult, metrics) if metrics.is_file() else None
        return read_record(cls, path).model_copy(update={"attempts": attempts, "result": result})


class HalvingReport(BaseModel):
    """What successive halving did in one iteration."""

    model_config = RECORD

    rungs: list[int]
    """Total steps at the end of each rung."""
    survivors: list[list[str]]
    """The candidates that trained in each rung."""
    env_steps: int
    """Steps trained in all."""
    full_steps: int
    """Steps that training every candidate to the full budget would have taken."""

    @property
    def saved(self) -> float:
        """Fraction of the full compute that was not spent."""
        return 1.0 - self.env_steps / self.full_steps if self.full_steps else 0.0


class IterationSummary(BaseModel):
    model_config = RECORD

    iteration: int
    repeat: bool = False
    """Every candidate of the previous iteration failed; this one was asked with the errors."""
    candidates: list[Candidate] = Field(default_factory=list)
    """How each candidate ended (`Candidate.outcome()`; the rest is in its folder)."""
    best_fitness: float | None = None
    """F of the elite (the best so far, or the preferred one when ranked), after this iteration."""
    best: str | None = None
    halving: HalvingReport | None = None


class EvalStats(BaseModel):
    """A reward retrained with several seeds."""

    model_config = RECORD

    fitness: list[float | None] = Field(default_factory=list)
    fitness_mean: float | None = None
    fitness_std: float | None = None
    success_rate: float | None = None
    statuses: list[str] = Field(default_factory=list)


class FinalEvaluation(BaseModel):
    model_config = RECORD

    seeds: list[int]
    timesteps: int
    best: EvalStats
    human: EvalStats | None = None
    """None where the task has no human reward (human_reward.py)."""
    sparse: EvalStats | None = None
    human_normalized_score: float | None = None
    """(F_best - F_sparse) / |F_human - F_sparse|, as in Eureka."""


class Totals(BaseModel):
    """What a run (or one part of it, between a start and a stop) used."""

    model_config = RECORD

    llm_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    env_steps: int = 0
    """Environment steps of the trainings that finished (candidates and final evaluation)."""
    wall_time: float = 0.0


class Summary(BaseModel):
    """summary.json: the state of a run, rewritten as it goes. The usage fields (llm_calls ...
    wall_time) are totals over every part of the run (a resumed run adds its parts up);
    `part` is what the latest part alone used."""

    model_config = RECORD

    task: str
    model: str
    status: Literal["running", "ok", "failed", "budget", "interrupted"] = "running"
    message: Message = ""
    iterations: list[IterationSummary] = Field(default_factory=list)
    best: Candidate | None = None
    confirmation: dict[str, list[float | None]] = Field(default_factory=dict)
    """`confirm`: each retrained reward's F on the training seed, then on each fresh seed."""
    final: FinalEvaluation | None = None
    llm_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    env_steps: int = 0
    wall_time: float = 0.0
    part: Totals = Field(default_factory=Totals)
    parts: int = 1
    """How many times the run was started (1 + resumes)."""


@dataclass
class TrainingProgress:
    """A training job's progress file as the display reads it while the job runs."""

    name: str
    """The job's folder relative to the run directory: `iter_0/cand_1`, `final/best_seed1000`."""
    env_steps: int
    total: int
    fitness: float | None
    """F of the latest training episodes (not the final policy's)."""
    elapsed: float
    status: Status | None = None
    """Set once the job has ended (its result's status); None while it runs."""

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far; None before the first steps."""
        rate = self.steps_per_second
        return max(self.total - self.env_steps, 0) / rate if rate > 0 else None


@dataclass
class Progress:
    """What the display is told: one event at a time."""

    kind: Literal["iteration", "candidate", "message", "wait", "final", "training", "totals"]
    """`wait`: the LLM has not answered yet (text says for how long; empty: it answered)."""
    text: str = ""
    candidate: Candidate | None = None
    summary: Summary | None = None
    training: TrainingProgress | None = None
    """With `training`: a running job's progress (about once a second)."""
    totals: Totals | None = None
    """With `totals`: what the run used so far, over all its parts (about once a second)."""


Reporter = Callable[[Progress], None]
