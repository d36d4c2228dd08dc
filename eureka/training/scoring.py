"""F measured by a process that never ran the reward.

The worker forks before any reward code loads. The child trains (it compiles and runs the
candidate's reward), saves the policy and writes TRAINED_FILE, then exits. The parent waits for
it, ends every process the child left behind in the sandbox, and measures F itself: it reads
the saved policy's parameters without unpickling anything (`torch.load(weights_only=True)`,
SB3's observation statistics from an `.npz`), builds the network from the task's own
environment and configuration, and runs the task's evaluation episodes with no reward (and
films the video). What the reward's code can then do is end, slow or spoil its own training,
never the figures it is judged by: an F it changed in its process, a metrics.json it wrote, a
process left to rewrite one later are overwritten or gone before the parent writes metrics.json.

The parent is not dumpable (`prctl(PR_SET_DUMPABLE, 0)`), so the child, which has no
capabilities in the sandbox, can neither trace it nor read or write its memory or its file
descriptors through /proc; the parent imports nothing from the job's folder (it leaves
`sys.path`) and loads no GL shader cache from it (HOME points there). Killing the leftovers
needs the sandbox's PID namespace (`sandbox.end_other_processes`); without one (`--sandbox
none`, a machine with neither bwrap nor unshare) the measurement is still the parent's, but a
process the reward left running could rewrite the result after it. Off Linux there is no fork
(`separable`): F is measured in the training process, as before.

The child's own result keeps what only it knows (the training curves, each component's
statistics, the components over each evaluation episode): statistics about its own training
that steer the next prompt, not the score. Where its F differs from the parent's, the message
says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import sandbox
from eureka import tasks
from eureka.training.files import METRICS_FILE, TRAINED_FILE
from eureka.types import EvalEpisode, Status, Task, TrainJob, TrainResult, write_whole

PR_SET_DUMPABLE = 4
NO_SHADER_CACHE = {
    "MESA_SHADER_CACHE_DISABLE": "true",
    "MESA_GLSL_CACHE_DISABLE": "true",
    "__GL_SHADER_DISK_CACHE": "0",
}
"""Set in the parent before it renders: GL drivers keep compiled shaders (machine code) under
HOME, which is the job's folder, where the child can write."""


def separable(job: TrainJob) -> bool:
    """Whether the job can train in a child process and be scored by its parent: every job that
    trains (a check-only job measures no F), on Linux."""
    return not job.check_only and sys.platform == "linux" and hasattr(os, "fork")


def train_then_score(job: TrainJob, run: Callable[[TrainJob], TrainResult]) -> TrainResult:
    """The job's result: `run(job)` (training, in a forked child: it must not raise) with F,
    the success rate, the evaluation episodes and the video measured here on the policy it saved."""
    task = tasks.load(str(job.task_folder))
    _preload(task, job)
    _no_imports_from(job.out_dir)
    _dumpable(False)
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: trains, then leaves without running any teardown of the parent's
        code = 1
        try:
            _dumpable(True)
            result = run(job.model_copy(update={"video": False}))  # the parent films
            write_whole(job.out_dir / TRAINED_FILE, result.model_dump_json())
            code = 0
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.environ.update(NO_SHADER_CACHE)
    _, status = os.waitpid(pid, 0)
    sandbox.end_other_processes()
    trained = _read_trained(job.out_dir) if os.WIFEXITED(status) else None
    if trained is None:
        _end_like(status, job.out_dir)
    return measure(job, task, trained, started)


def measure(job: TrainJob, task: Task, trained: TrainResult, started: float) -> TrainResult:
    """`trained` (what the training process said) with F, the success rate, the evaluation
    episodes and the video measured in this process on the policy saved in the job's folder;
    `started`: the job's start on the monotonic clock (its wall time runs from there)."""
    if trained.status is not Status.OK:
        return _unscored(trained)
    try:
        episodes, video, files = _score(job, task)
    except Exception as exc:
        traceback.print_exc()
        first = (str(exc).strip().splitlines() or [""])[0]
        return _unscored(trained).model_copy(
            update={
                "status": Status.CRASHED,
                "message": f"measuring F on the saved policy failed: {type(exc).__name__}: {first}"[:500],
            }
        )
    scored = _scored(trained, task, episodes, video, time.monotonic() - started)
    return scored.model_copy(update=files)


def _learner(task: Task, job: TrainJob) -> ModuleType:
    """The module of the job's training path (`eureka.training.batched` or `.sb3`), imported."""
    if tasks.training_path(task, job.backend) == "batched":
        from eureka.training import batched

        return batched
    from eureka.training import sb3

    return sb3


def _preload(task: Task, job: TrainJob) -> None:
    """The training path's modules imported before the fork, so the parent needs no import
    after it (and the child no second one); nothing here touches a GPU (a forked child could not
    use one the parent had set up)."""
    from eureka.training.envs import registered

    _learner(task, job)
    registered(task)  # gymnasium-robotics imported once, where the task's environment needs it


def _no_imports_from(folder: Path) -> None:
    """The job's folder (the current directory, where the reward can write) off `sys.path`:
    a module planted there must not be what a later import in the parent finds."""
    here = {Path.cwd().resolve(), folder.resolve()}
    sys.path[:] = [p for p in sys.path if not any(Path(p or ".").resolve().is_relative_to(h) for h in here)]


def _dumpable(on: bool) -> None:
    """PR_SET_DUMPABLE: off, a process of the same uid without CAP_SYS_PTRACE cannot trace
    this one or open its /proc files (memory, file descriptors)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, int(on), 0, 0, 0)


def _end_like(status: int, folder: Path) -> NoReturn:
    """End this process as the child ended (its exit code, or the signal that killed it), with no
    result in `folder`: the sandbox then says what it would have said of one process (the limit
    it hit, its last lines), and a metrics.json the child wrote is not taken for one."""
    with contextlib.suppress(FileNotFoundError):
        (folder / METRICS_FILE).unlink()
    sys.stdout.flush()
    sys.stderr.flush()
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)  # a signal whose default action is not to end the process
    os._exit(os.waitstatus_to_exitcode(status))


def _read_trained(folder: Path) -> TrainResult | None:
    text = sandbox.read_text(folder / TRAINED_FILE)
    if text is None:
        return None
    try:
        return TrainResult.model_validate_json(text)
    except ValueError:
        return None


def _unscored(trained: TrainResult) -> TrainResult:
    """The child's result with nothing that claims to measure the final policy."""
    return trained.model_copy(
        update={
            "fitness": None,
            "fitness_std": None,
            "success_rate": None,
            "solved": False,
            "eval_episode_lengths": [],
            "eval_fitness": [],
            "eval_episodes": [],
            "video_file": None,
            "policy_file": None,
            "checkpoint_file": None,
        }
    )


def _score(job: TrainJob, task: Task) -> tuple[list[EvalEpisode], Path | None, dict[str, str | None]]:
    """The evaluation episodes, the video and the result's file names (ours, not the child's:
    the halving loop resumes from `checkpoint_file`)."""
    from eureka.training.session import seed_everything
    from eureka.training.train import setup_process

    device = setup_process(job)
    seed_everything(job.seed)
    learner = _learner(task, job)
    episodes, video = learner.score_saved(job, task, device)
    return episodes, video, {"policy_file": learner.POLICY_FILE, "checkpoint_file": learner.CHECKPOINT_FILE}


def _scored(
    trained: TrainResult, task: Task, episodes: list[EvalEpisode], video: Path | None, elapsed: float
) -> TrainResult:
    """The child's result with the parent's measurement of the final policy; each episode keeps
    the child's per-component means where the child saw the same episode (the same length)."""
    from eureka.training.fitness import Fitness
    from eureka.training.session import evaluation_fields

    theirs = trained.eval_episodes
    episodes = [
        e.model_copy(update={"components": theirs[i].components, "reward": theirs[i].reward})
        if i < len(theirs) and theirs[i].length == e.length
        else e
        for i, e in enumerate(episodes)
    ]
    fields = evaluation_fields(episodes, Fitness(task))
    message = trained.message
    claimed = trained.fitness
    if claimed is None or not math.isclose(claimed, fields["fitness"], rel_tol=1e-9, abs_tol=1e-9):
        message = (
            f"{message} (the training process reported F {claimed if claimed is None else f'{claimed:.6g}'}; "
            f"the saved policy scores {fields['fitness']:.6g})"
        )
    return trained.model_copy(
        update={
            **fields,
            "message": message,
            "video_file": video.name if video else None,
            "wall_time": elapsed,
        }
    )
