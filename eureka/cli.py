"""The `eureka` command line: parses options, calls one stage, renders the result. No logic."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import sandbox
from eureka import tasks
from eureka.errors import ConfigError, EurekaError, Interrupted, RewardFileError, TaskError
from eureka.feedback.judges import Human
from eureka.llm.context import environment_context
from eureka.runs import rundir as runs
from eureka.training import jobs
from eureka.training.train import path_note
from eureka.types import METRICS_FILE, SolveConfig, Status, TrainJob, TrainResult, write_whole

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
tasks_app = typer.Typer(no_args_is_help=True, help="List, show, check and create task folders.")
app.add_typer(tasks_app, name="tasks")
PIPED_WIDTH = 160
"""Columns for output that is not a terminal (CI logs, pipes): rich's 80 would cut task names."""


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    # no emoji codes: a path like `env.py:X:` in a message is the user's text, not `:x:` (❌)
    return Console(stderr=stderr, width=PIPED_WIDTH if piped else None, emoji=False)


console = _console()
err_console = _console(stderr=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn an EurekaError into one line on stderr and its exit code."""
    try:
        yield
    except (EurekaError, sandbox.SandboxUnavailable) as exc:
        for line in str(exc).splitlines():  # escaped: `pip install 'x[local]'` is not markup
            err_console.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
        raise typer.Exit(getattr(exc, "exit_code", 2)) from None
    except ValidationError as exc:  # an option value the config record refuses
        for error in exc.errors():
            where = ".".join(str(x) for x in error["loc"])
            err_console.print(
                f"[red]error:[/red] --{where.replace('_', '-')}: {error['msg']}", highlight=False
            )
        raise typer.Exit(2) from None


def use_sandbox(mode: str | None) -> None:
    """Apply `--sandbox` (None: SolveConfig's default) to every worker this process starts; fail
    now if it cannot be had."""
    mode = mode or SolveConfig.model_fields["sandbox"].default
    if mode not in ("auto", *sandbox.MECHANISMS, "none"):
        raise ConfigError(f"--sandbox {mode!r}: use auto, bwrap, unshare or none")
    os.environ[sandbox.ISOLATION_VARIABLE] = mode
    sandbox.resolve_isolation()


def worker_count(value: str) -> int:
    """`--workers`: a number, or `auto` for one per core."""
    if value == "auto":
        return os.cpu_count() or 1
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"--workers {value!r}: give a number of at least 1, or 'auto'")
    return int(value)


def _config_option(name: str, *decls: str) -> Any:
    """The option for SolveConfig field `name`: its help is the field's docstring and the default
    it shows is the field's. The option itself defaults to None (not given), so SolveConfig fills
    in what the user did not give: every default has one home (tests/test_cli.py holds to it)."""
    field = SolveConfig.model_fields[name]
    shown = "auto" if field.default_factory is not None else str(field.default)
    return typer.Option(*decls, help=" ".join((field.description or "").split()), show_default=shown)


def _given(options: dict[str, Any]) -> dict[str, Any]:
    """The SolveConfig fields among a command's options that the user gave."""
    return {k: v for k, v in options.items() if k in SolveConfig.model_fields and v is not None}


@tasks_app.command("list")
def tasks_list() -> None:
    """Table of every task found: env, state fields, training budget, success threshold."""
    with user_errors():
        table = Table("task", "env", "state fields", "algorithm", "budget", "success when F ≥", "note")
        for column in table.columns:
            column.overflow = "fold"
        for name in sorted(tasks.discover()):
            try:
                task = tasks.load(name)
                spec = task.spec
            except EurekaError as exc:
                table.add_row(name, "[red]invalid[/red]", str(exc).splitlines()[0], "", "", "", "")
                continue
            table.add_row(
                name,
                spec.env.id,
                ", ".join(spec.state),
                "batched PPO"
                if tasks.training_path(task) == "batched"
                else f"{spec.training.algorithm} (SB3)",
                f"{tasks.budget(task):,}",
                f"{'none' if spec.fitness.threshold is None else f'{spec.fitness.threshold:g}'}"
                f" ({spec.fitness.metric})",
                spec.machine_note,
            )
        console.print(table)


@tasks_app.command("show")
def tasks_show(task: Annotated[str, typer.Argument(help="task name or folder")]) -> None:
    """Print exactly the environment context the LLM will see."""
    with user_errors():
        typer.echo(environment_context(tasks.load(task)))


@tasks_app.command("check")
def tasks_check(
    names: Annotated[list[str] | None, typer.Argument(help="task names or folders")] = None,
    all_tasks: Annotated[bool, typer.Option("--all", help="check every task found")] = False,
) -> None:
    """Validate task folders; every problem is named with its fix. Exit 1 when any fails."""
    from eureka.training.task_check import check_task

    with user_errors():
        selected = sorted(tasks.discover()) if all_tasks or not names else names
        failed = 0
        for name in selected:
            report = check_task(name)
            mark = "[green]ok[/green]" if report.ok else "[red]FAILED[/red]"
            console.print(f"{mark} {report.name}")
            for problem in report.problems:
                console.print(f"  [red]✗[/red] {problem}", highlight=False, soft_wrap=True)
            for note in report.notes:
                console.print(f"  [yellow]·[/yellow] {note}", highlight=False, soft_wrap=True)
            failed += not report.ok
        if failed:
            raise typer.Exit(1)


@tasks_app.command("new")
def tasks_new(
    name: Annotated[str, typer.Argument(help="the task's name (also its folder's)")],
    env: Annotated[str, typer.Option(help="a gymnasium id (Hopper-v5) or path/env.py:Class")],
    tasks_dir: Annotated[Path, typer.Option("--dir", help="where the task folder goes")] = Path("tasks"),
    force: Annotated[bool, typer.Option(help="write into an existing folder")] = False,
) -> None:
    """Write a task folder from an environment: state fields, starter human reward, settings."""
    from eureka.training.scaffold import new_task

    with user_errors():
        made = new_task(name, env, tasks_dir, force)
        from_sim = [f.name for f in made.fields if f.obs is None]
        console.print(
            f"wrote {made.folder}: {len(made.fields)} state fields", highlight=False, soft_wrap=True
        )
        if from_sim:
            console.print(f"  read from the simulator in state.py: {', '.join(from_sim)}", highlight=False)
        if made.reproduced:
            console.print(f"  human reward reproduces {', '.join(made.reproduced)}", highlight=False)
        if made.missing:
            console.print(f"  [yellow]not reproduced[/yellow]: {', '.join(made.missing)}", highlight=False)
        console.print(
            f"next: complete the TODOs in {made.folder / tasks.TASK_FILE}, then `eureka tasks check "
            f"{made.folder}`",
            highlight=False,
            soft_wrap=True,
        )


def _reward_source(task: tasks.Task, reward: str) -> str | None:
    """The text of the reward the user asked for (None for sparse), read before a run
    directory is made for it."""
    if reward == "sparse":
        from eureka.training.fitness import Fitness

        if Fitness(task).signal is None:
            raise RewardFileError(
                f"task {task.name} has no success_signal in fitness.py, so it has no sparse reward; "
                "give --reward human or a reward file, or add success_signal(...) to fitness.py"
            )
        return None
    source = task.file(tasks.HUMAN_REWARD_FILE) if reward == "human" else Path(reward)
    if source is None or not source.is_file():
        raise RewardFileError(
            f"reward '{reward}' is not a file; give a path to a .py file, 'human' or 'sparse'"
        )
    text = tasks.read_utf8(source, f"reward '{reward}'", RewardFileError)
    if reward == "human":  # the task's own file: named as the task folder holds it, not as its copy
        from eureka.reward import checks

        problems = checks.check_source(text, list(task.spec.state), str(source))
        if problems:
            raise RewardFileError("; ".join(problems) + f" (eureka tasks check {task.folder} checks it)")
    return text


def _render_result(result: TrainResult, run_dir: Path) -> None:
    colour = "green" if result.status == Status.OK else "red"
    console.print(f"[{colour}]{result.status.value}[/{colour}] {result.message}", highlight=False)
    if result.fitness is not None:
        solved = "[green]solved[/green]" if result.solved else "[yellow]not solved[/yellow]"
        console.print(
            f"fitness F {result.fitness:.4g} ± {result.fitness_std or 0:.3g} ({solved}); "
            f"success rate {result.success_rate or 0:.0%}; "
            f"episode lengths {result.eval_episode_lengths}"
        )
    if result.checkpoint_steps:
        table = Table(
            "env steps",
            "F",
            "episode length",
            "reward/step",
            *(c.name for c in result.components),
            title="training statistics (per-checkpoint means)",
        )
        for i, step in enumerate(result.checkpoint_steps):

            def fmt(v: float | None) -> str:
                return "-" if v is None else f"{v:.4g}"

            table.add_row(
                f"{step:,}",
                fmt(result.fitness_curve[i]),
                fmt(result.episode_length_curve[i]),
                fmt(result.reward_curve[i]),
                *(fmt(c.means[i]) if i < len(c.means) else "-" for c in result.components),
            )
        console.print(table)
    console.print(
        f"wall time {result.wall_time:.1f} s; {result.env_steps:,} env steps at "
        f"{result.steps_per_second:,.0f} steps/s; device {result.device}"
    )
    console.print(f"run directory: {run_dir}", highlight=False, soft_wrap=True)


OnProgress = Callable[[dict[str, float]], None]
"""Fed a running training's progress file."""


def _check_and_train(
    job: TrainJob, task: tasks.Task, timeout: float | None, on_progress: OnProgress | None
) -> TrainResult:
    """The critic's checks of the job's reward (static, then a smoke test on real states in the
    sandbox, named in seconds rather than at the training's limit) and, when they pass, the
    training, in the same worker; a failed check is the job's result (also its metrics.json)."""
    from eureka.reward import critic

    assert job.reward_file is not None
    limit = min(critic.SMOKE_TIMEOUT, timeout) if timeout else None
    trained: list[TrainResult] = []

    def run(one: TrainJob) -> TrainResult:
        trained.append(jobs.run_training(one, timeout, on_progress=on_progress))
        return trained[-1]

    report = critic.review(
        job.reward_file.read_text(),
        task,
        job.out_dir,
        "",
        run,
        timeout=limit,
        backend=job.backend,
        then_train=job,
    )
    shutil.rmtree(job.out_dir / "smoke", ignore_errors=True)
    if report.status == Status.OK:
        return trained[-1]
    result = TrainResult(status=report.status, message=report.message)
    write_whole(job.out_dir / METRICS_FILE, result.model_dump_json(indent=2))
    return result


DEVICE_HELP = "'auto' (cuda when present), 'cpu', 'cuda' or 'cuda:N'"


def _device(device: str) -> str:
    """The --device value, checked against what torch sees here (torch loads only when asked for cuda)."""
    if device in ("auto", "cpu"):
        return device
    from eureka.training.session import check_device

    return check_device(device)


@app.command()
def train(
    task: Annotated[str, typer.Argument(help="task name or folder")],
    reward: Annotated[str, typer.Option(help="'human', 'sparse', or a path to a reward .py file")] = "human",
    timesteps: Annotated[int | None, typer.Option(help="training budget (default: the task's)")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    timeout: Annotated[float | None, typer.Option(help="wall-clock limit in seconds")] = None,
    video: Annotated[bool, typer.Option(help="film the final policy (rollout.mp4)")] = True,
    runs_dir: Annotated[Path | None, typer.Option(help="where run directories go (default ./runs)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    sandbox: Annotated[str | None, _config_option("sandbox")] = None,
    backend: Annotated[
        str, typer.Option(help="training path: 'auto' (the task's), 'sb3' or 'batched'")
    ] = "auto",
    threads: Annotated[
        int | None, typer.Option(help="CPU threads of the simulator (default: all cores)")
    ] = None,
) -> None:
    """Train a policy against one reward in the sandbox and report F on the task's true metric."""
    with user_errors():
        use_sandbox(sandbox)
        if backend not in ("auto", "sb3", "batched"):
            raise ConfigError(f"--backend {backend!r}: use auto, sb3 or batched")
        if timeout is not None and timeout <= 0:
            raise ConfigError(
                f"--timeout {timeout:g}: give a wall-clock limit in seconds > 0 (or none: the task's)"
            )
        if threads is not None and threads < 1:
            raise ConfigError(f"--threads {threads}: give at least 1 (or none: all cores)")
        spec = tasks.load(task)
        source = _reward_source(spec, reward)
        job = TrainJob(  # its options checked before a run directory is made for it
            task_folder=spec.folder,
            reward_file=None,
            out_dir=Path(),
            seed=seed,
            timesteps=timesteps,
            device=_device(device),
            video=video,
            backend=None if backend == "auto" else backend,
            sim_threads=threads or os.cpu_count() or 1,
        )
        run_dir = runs.new_run_dir(spec.name, runs_dir, label="train")
        reward_file = None
        if source is not None:
            reward_file = run_dir / "reward.py"
            reward_file.write_text(source)
        job = job.model_copy(update={"reward_file": reward_file, "out_dir": run_dir})
        runs.write_config(
            run_dir, {"command": "train", "reward": reward, **json.loads(job.model_dump_json())}
        )
        total = tasks.budget(spec, backend, timesteps)
        path = path_note(spec, backend)
        if not as_json:
            console.print(path, highlight=False, soft_wrap=True)

        def train(on_progress: OnProgress | None) -> TrainResult:
            if reward_file is None:
                return jobs.run_training(job, timeout, on_progress=on_progress)
            return _check_and_train(job, spec, timeout, on_progress)

        if as_json or not sys.stdout.isatty():
            result = train(on_progress=None)
        else:
            with Progress(
                TextColumn("training {task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps  F {task.fields[f]}"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                bar = progress.add_task(spec.name, total=total, f="-")

                def update(p: dict[str, float]) -> None:
                    f = p.get("fitness")
                    progress.update(bar, completed=p.get("env_steps", 0), f="-" if f is None else f"{f:.4g}")

                result = train(on_progress=update)
        if as_json:
            payload = json.loads(result.model_dump_json())
            payload["run_dir"] = str(run_dir)
            payload["training_path"] = path.removeprefix("training path: ")
            print(json.dumps(payload))
        else:
            _render_result(result, run_dir)
    if result.status != Status.OK:
        raise typer.Exit(1)


def _resumed_task(config: SolveConfig, task: str | None, run_dir: Path) -> SolveConfig:
    """The configuration of a resumed run, its task folder re-pointed to `task` (the folder given
    beside --resume) where the run's own folder is gone (moved, or a clone elsewhere)."""
    from eureka import loop

    try:
        stored = tasks.load(config.task)
    except TaskError:
        if Path(config.task).exists():
            raise  # there but broken: its own error names what to fix
        stored = None
    given = tasks.load(task) if task is not None else None
    if stored is not None:
        if given is not None and stored.folder.resolve() != given.folder.resolve():
            raise ConfigError(
                f"{run_dir} is a run of the task in {stored.folder}, not {given.folder}; "
                f"resume it with no task: eureka solve --resume {run_dir}"
            )
        return config
    if given is None:
        raise ConfigError(
            f"this run's task folder {config.task} is gone (moved or deleted); give its new place: "
            f"eureka solve FOLDER --resume {run_dir}"
        )
    name = Path(config.task).name
    if given.name != name:
        raise ConfigError(
            f"{run_dir} is a run of task '{name}', and {given.folder} holds task '{given.name}'; "
            f"give the folder of '{name}'"
        )
    err_console.print(
        f"note: this run's task folder {config.task} is gone; resuming with {given.folder}",
        highlight=False,
        soft_wrap=True,
    )
    config = config.model_copy(update={"task": str(given.folder)})
    loop.save_config(run_dir, config)
    return config


@app.command()
def solve(
    task: Annotated[
        str | None, typer.Argument(help="task name or folder (with --resume: the task folder, if it moved)")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="litellm model, local/smollm2, replay:RUN_DIR, or none (human reward + optimiser). "
            "With none, or no key and no --model, the defaults are --iterations 4 --tune 6 "
            "--structure 1 --bonus --confirm 5 --confirm-seeds 3"
        ),
    ] = None,
    api_base: Annotated[str | None, _config_option("api_base")] = None,
    iterations: Annotated[int | None, _config_option("iterations")] = None,
    samples: Annotated[int | None, _config_option("samples")] = None,
    workers: Annotated[str | None, _config_option("workers")] = None,
    group: Annotated[int | None, _config_option("group")] = None,
    seed: Annotated[int | None, _config_option("seed")] = None,
    threads: Annotated[int | None, _config_option("threads")] = None,
    sim_threads: Annotated[int | None, _config_option("sim_threads")] = None,
    timesteps: Annotated[int | None, _config_option("timesteps")] = None,
    eval_seeds: Annotated[int | None, _config_option("eval_seeds")] = None,
    human_init: Annotated[bool | None, _config_option("human_init")] = None,
    tune: Annotated[int | None, _config_option("tune")] = None,
    tuner: Annotated[str | None, _config_option("tuner")] = None,
    structure: Annotated[int | None, _config_option("structure")] = None,
    peaks: Annotated[bool | None, _config_option("peaks")] = None,
    bonus: Annotated[bool | None, _config_option("bonus")] = None,
    confirm: Annotated[int | None, _config_option("confirm")] = None,
    confirm_seeds: Annotated[int | None, _config_option("confirm_seeds")] = None,
    critic: Annotated[str | None, _config_option("critic")] = None,
    repair_rounds: Annotated[int | None, _config_option("repair_rounds")] = None,
    max_failed_iterations: Annotated[int | None, _config_option("max_failed_iterations")] = None,
    temperature: Annotated[float | None, _config_option("temperature")] = None,
    max_cost: Annotated[float | None, _config_option("max_cost")] = None,
    max_tokens: Annotated[int | None, _config_option("max_tokens")] = None,
    reply_tokens: Annotated[int | None, _config_option("reply_tokens")] = None,
    request_timeout: Annotated[float | None, _config_option("request_timeout")] = None,
    request_retries: Annotated[int | None, _config_option("request_retries")] = None,
    cache: Annotated[bool | None, _config_option("cache")] = None,
    video: Annotated[bool | None, _config_option("video")] = None,
    device: Annotated[str | None, _config_option("device")] = None,
    resume: Annotated[Path | None, typer.Option(help="continue a stopped run in this directory")] = None,
    runs_dir: Annotated[Path | None, typer.Option(help="where run directories go (default ./runs)")] = None,
    sandbox: Annotated[str | None, _config_option("sandbox")] = None,
    feedback: Annotated[str | None, _config_option("feedback")] = None,
    analyzer: Annotated[str | None, _config_option("analyzer")] = None,
    oracle_noise: Annotated[float | None, _config_option("oracle_noise")] = None,
    rank_ui: Annotated[
        str, typer.Option(help="rank mode: 'web' (a page on 127.0.0.1) or 'terminal'")
    ] = "web",
    open_videos: Annotated[bool, typer.Option(help="open videos and the ranking page for you")] = True,
    halving: Annotated[int | None, _config_option("halving")] = None,
    backend: Annotated[str | None, _config_option("backend")] = None,
    executor: Annotated[str | None, _config_option("executor")] = None,
    ray_address: Annotated[str | None, _config_option("ray_address")] = None,
    ray_retries: Annotated[int | None, _config_option("ray_retries")] = None,
) -> None:
    """Evolve reward functions for a task with an LLM (Eureka), then evaluate the best."""
    from eureka import loop
    from eureka.feedback.judges import FeedbackError
    from eureka.llm.client import LOCAL_MODEL, LLMError, default_model, for_run
    from eureka.runs import display
    from eureka.training import optimise

    given = _given(locals())
    with user_errors():
        if resume is not None:
            run_dir = resume.resolve()
            config = _resumed_task(loop.load_config(run_dir), task, run_dir)
            limits = {k: v for k, v in given.items() if k in RESUMABLE}
            ignored = _flags(k for k in given if k not in RESUMABLE and k != "task")
            if ignored:
                err_console.print(
                    f"[yellow]note:[/yellow] ignored with --resume: {', '.join(ignored)} (a resumed run "
                    f"keeps the settings in {run_dir / 'config.yaml'}; only {', '.join(_flags(RESUMABLE))} "
                    "may change); start a new run to change them",
                    highlight=False,
                    soft_wrap=True,
                )
            if limits:  # a stopped run may continue with a larger budget or a longer timeout
                config = SolveConfig.model_validate({**config.model_dump(), **limits})
                loop.save_config(run_dir, config)
        else:
            if task is None:
                raise ConfigError("give a task name, or --resume RUN_DIR")
            spec = tasks.load(task)
            if workers is not None:
                given["workers"] = worker_count(workers)
            chosen = set(given)
            given.update(task=str(spec.folder), model=model or default_model())
            if given.get("device") is not None:
                given["device"] = _device(given["device"])
            config = optimise.offline_defaults(SolveConfig(**given), chosen)
            use_sandbox(config.sandbox)
            judge = _judge(config.feedback, rank_ui, open_videos)  # refuse before making a run dir
            run_dir = runs.new_run_dir(spec.name, runs_dir)
            loop.save_config(run_dir, config)
        with _discard_if_unstarted(run_dir, resume is None):
            if resume is not None:
                judge = _judge(config.feedback, rank_ui, open_videos)
            use_sandbox(config.sandbox)
            if config.model == LOCAL_MODEL and model is None and resume is None:
                err_console.print(
                    "[yellow]note:[/yellow] no model given and no provider key set: starting from the "
                    f"task's human reward, tuned by the optimiser ({config.tune} trials per iteration) and "
                    f"recombined ({config.structure} per iteration), with the embedded SmolLM2-135M "
                    f"proposing {config.samples} more under a reward grammar. Use --model (e.g. gpt-4o) "
                    "for an LLM that writes rewards, or --model none for no LLM at all.",
                    soft_wrap=True,
                )
            llm = for_run(config, run_dir)
            interactive = config.feedback in ("critique", "rank")
            reporter: display.PlainReporter | display.LiveReporter = (
                display.LiveReporter(console, llm.model)
                if sys.stdout.isatty() and not interactive
                else display.PlainReporter(console)
            )
            the_loop = loop.Loop(config, run_dir, llm, reporter, judge=judge)
        console.print(f"run directory: {run_dir}", highlight=False, soft_wrap=True)
        try:
            with reporter, _interrupts(the_loop.stop):
                summary = the_loop.run()
        except (LLMError, FeedbackError) as exc:  # the provider or the human failed: all so far is saved
            for line in str(exc).splitlines():
                err_console.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
            hint = (
                resume_hint(run_dir, "stopped")
                if getattr(exc, "resumable", True)
                else "a resumed run would stop the same way: start a new run once the error above is fixed"
            )
            err_console.print(hint, highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        console.print(display.summary_panel(summary, str(run_dir)))
        drifted = getattr(llm.backend, "drifted", 0)
        if drifted:
            err_console.print(
                f"[yellow]note:[/yellow] {drifted} replayed prompt(s) differed from the recording only in "
                "training statistics (training is not bit-reproducible across machines); the recorded "
                "replies were used"
            )
        if summary.status != "ok":
            err_console.print(
                resume_hint(run_dir, summary.status, config.task), highlight=False, soft_wrap=True
            )
    if summary.status == "interrupted":
        sys.stdout.flush()
        sys.stderr.flush()  # everything is saved; tearing down torch and litellm can take seconds
        os._exit(Interrupted.exit_code)
    if summary.status != "ok":
        raise typer.Exit(1)


RESUMABLE = ("max_cost", "max_tokens", "reply_tokens", "request_timeout", "request_retries")
"""Options a resumed run takes from the command line (its other settings are the run's own)."""


def _task_argument(folder: str) -> str:
    """How to name the task in a command: its name where that finds this folder, else its path."""
    name = Path(folder).name
    try:
        return name if tasks.resolve(name) == Path(folder).resolve() else folder
    except TaskError:
        return folder


def _flags(names: Iterable[str]) -> list[str]:
    return [f"--{name.replace('_', '-')}" for name in names]


def resume_hint(run_dir: Path, status: str, task: str | None = None) -> str:
    """The line after a run that stopped early: how to continue it (`failed`: every candidate
    failed, which a resumed run would replay; `stopped`: the provider failed)."""
    command = f"eureka solve --resume {run_dir}"
    if status == "interrupted":
        return f"interrupted; continue with {command}"
    if status == "budget":
        return f"continue with a larger budget: {command} --max-cost DOLLARS (or --max-tokens N)"
    if status == "failed":
        name = _task_argument(task) if task else "TASK"
        return (
            f"fix what the error names (`eureka tasks check {name}` checks the task folder), then start a "
            f"new run: eureka solve {name} (a resumed run would replay the failed candidates)"
        )
    return f"continue with {command}"


@contextmanager
def _discard_if_unstarted(run_dir: Path, fresh: bool) -> Iterator[None]:
    """A run that fails before it starts leaves no folder holding only its config.yaml."""
    try:
        yield
    except BaseException:
        if fresh and {p.name for p in run_dir.iterdir()} <= {"config.yaml"}:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


@contextmanager
def _interrupts(stop: Callable[[], None]) -> Iterator[None]:
    """The first Ctrl-C calls `stop` (running jobs are killed, the run ends cleanly and can be
    resumed); a second one exits at once."""
    pressed = 0

    def handler(signum: int, frame: object) -> None:
        nonlocal pressed
        pressed += 1
        if pressed > 1:
            os.write(2, b"\ninterrupted again: exiting now\n")
            os._exit(Interrupted.exit_code)
        os.write(2, b"\nstopping: ending the running jobs (Ctrl-C again to exit at once)\n")
        stop()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run directory of eureka solve")]) -> None:
    """Write the run's self-contained HTML report (report.html) and print its path."""
    from eureka.runs.report import open_run, write_report

    with user_errors():
        open_run(run_dir)  # says why a directory is not a readable run
        console.print(str(write_report(run_dir.resolve())), highlight=False, soft_wrap=True)


runs_app = typer.Typer(no_args_is_help=True, help="List and show the runs in a runs directory.")
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def runs_list(
    runs_dir: Annotated[Path | None, typer.Option(help="where run directories are (default ./runs)")] = None,
) -> None:
    """Every solve run: task, start, model, status, iterations, best F, HNS, cost, env steps and
    wall time (totals over a resumed run's parts)."""
    from eureka.runs.display import wall_text
    from eureka.runs.report import read_run, summary_json

    root = runs.runs_root(runs_dir)
    table = Table(
        "run", "model", "status", "iterations", "best F", "HNS", "cost", "env steps", "wall", title=str(root)
    )
    for column in table.columns:
        column.overflow = "fold"
    unreadable = []
    for summary in sorted(root.glob("*/*/summary.json")):
        info = read_run(summary.parent)
        if info is None:
            unreadable.append(str(summary.parent.relative_to(root)))
            continue
        row = summary_json(info)
        hns = "-" if row["hns"] is None else f"{row['hns']:.3f}"
        best = "-" if row["best_fitness"] is None else f"{row['best_fitness']:.4g}"
        table.add_row(
            str(summary.parent.relative_to(root)),
            row["model"],
            row["status"],
            str(row["iterations"]),
            best,
            hns,
            f"${row['cost']:.4f}",
            f"{row['env_steps']:,}",
            wall_text(row["wall_time"], row["wall_time_part"], row["parts"]),
        )
    console.print(table)
    if unreadable:
        err_console.print(
            f"[yellow]note:[/yellow] left out {len(unreadable)} run(s) whose summary.json cannot be read: "
            f"{', '.join(unreadable)} (eureka runs show DIR says why)",
            highlight=False,
            soft_wrap=True,
        )


@runs_app.command("show")
def runs_show(run_dir: Annotated[Path, typer.Argument(help="a run directory of eureka solve")]) -> None:
    """The run's summary and its candidates."""
    from eureka.runs import display
    from eureka.runs.report import open_run

    with user_errors():
        info = open_run(run_dir)
        console.print(display.summary_panel(info.summary, str(run_dir)))
        if info.status != info.summary.status:
            err_console.print(
                f"[yellow]note:[/yellow] this run says it is running, but {info.message}",
                highlight=False,
                soft_wrap=True,
            )
        console.print(display.candidates_table(info.candidates))


@app.command()
def batch(
    task_names: Annotated[list[str] | None, typer.Argument(help="task names or folders")] = None,
    suite: Annotated[Path | None, typer.Option(help="suite.yaml: defaults, tasks, per-task options")] = None,
    model: Annotated[
        str | None, typer.Option(help="litellm model or replay:DIR ({task} = the task's name)")
    ] = None,
    out: Annotated[Path, typer.Option(help="where results.json, junit.xml, summary.md and runs/ go")] = Path(
        "batch"
    ),
    min_hns: Annotated[
        float | None, typer.Option(help="a task fails below this human-normalised score")
    ] = None,
    workers: Annotated[str | None, _config_option("workers")] = None,
    group: Annotated[int | None, _config_option("group")] = None,
    iterations: Annotated[int | None, _config_option("iterations")] = None,
    samples: Annotated[int | None, _config_option("samples")] = None,
    timesteps: Annotated[int | None, _config_option("timesteps")] = None,
    eval_seeds: Annotated[int | None, _config_option("eval_seeds")] = None,
    feedback: Annotated[str | None, _config_option("feedback")] = None,
    seed: Annotated[int | None, _config_option("seed")] = None,
    video: Annotated[bool | None, _config_option("video")] = None,
    sandbox: Annotated[str | None, _config_option("sandbox")] = None,
    device: Annotated[str | None, _config_option("device")] = None,
) -> None:
    """Solve many tasks (for CI): results.json, junit.xml, summary.md. Exit 0 all passed, 1 a
    threshold missed, 2 an error."""
    from eureka import loop
    from eureka.llm.client import default_model, for_run
    from eureka.runs import batch as batching
    from eureka.runs import display

    overrides = _given(locals())  # the command line's flags, over the suite's options
    with user_errors():
        use_sandbox(sandbox)
        if workers is not None:
            overrides["workers"] = worker_count(workers)
        loaded = batching.load_suite(suite) if suite is not None else None
        todo = batching.entries(list(task_names or []), loaded, min_hns)
        if overrides.get("device") is not None:
            overrides["device"] = _device(overrides["device"])
        fallback = default_model()
        configs: dict[int, SolveConfig | TaskError] = {}  # by entry: a task may be listed twice
        for e in todo:  # options are checked before anything runs; a broken task fails alone
            try:
                configs[id(e)] = batching.solve_config(e, overrides, fallback)
            except TaskError as exc:
                configs[id(e)] = exc

        def solve_one(entry: batching.SuiteEntry) -> Path:
            config = configs[id(entry)]
            if isinstance(config, TaskError):
                raise config
            use_sandbox(config.sandbox)
            run_dir = runs.new_run_dir(tasks.load(entry.task).name, out / "runs")
            loop.save_config(run_dir, config)
            console.print(f"[bold]{entry.task}[/bold]: {run_dir}", highlight=False, soft_wrap=True)
            the_loop = loop.Loop(config, run_dir, for_run(config, run_dir), display.PlainReporter(console))
            with _interrupts(the_loop.stop):
                summary = the_loop.run()
            if summary.status == "interrupted":  # Ctrl-C stops the batch, not only this task
                err_console.print(resume_hint(run_dir, summary.status), highlight=False, soft_wrap=True)
                raise KeyboardInterrupt
            return run_dir

        def done(result: batching.TaskResult) -> None:
            colour = {"passed": "green", "failed": "yellow", "error": "red"}[result.outcome]
            console.print(
                f"[{colour}]{result.outcome}[/{colour}] {result.task}: {result.message}", soft_wrap=True
            )

        try:
            outcome = batching.run_batch(todo, solve_one, out, done)
        except KeyboardInterrupt:
            raise typer.Exit(Interrupted.exit_code) from None
        console.print(
            (out / batching.MARKDOWN_FILE).read_text(), highlight=False, markup=False, soft_wrap=True
        )
        console.print(f"results: {out / batching.RESULTS_FILE}", highlight=False, soft_wrap=True)
    raise typer.Exit(outcome.exit_code)


@app.command()
def doctor() -> None:
    """What this machine gives eureka: isolation, rendering, GPU, local model, provider keys, browser."""
    from rich.markup import escape

    from eureka.runs.doctor import diagnose

    for f in diagnose():
        mark = "[green]ok[/green]" if f.ok else "[yellow]--[/yellow]"
        console.print(f"{mark} {f.topic:<14} {escape(f.summary)}", highlight=False, soft_wrap=True)
        if f.hint:
            console.print(f"   {'':<14} [dim]{escape(f.hint)}[/dim]", highlight=False, soft_wrap=True)


bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks of the rewards eureka finds.")
app.add_typer(bench_app, name="bench")


@bench_app.command("quality")
def bench_quality(
    suite: Annotated[Path | None, typer.Option(help="suite.yaml (default: benchmarks/quality.yaml)")] = None,
    model: Annotated[
        str | None, typer.Option(help="litellm model or replay:DIR ({task} = the task's name)")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="where results.json, summary.md, report.html and runs/ go")
    ] = Path("bench-quality"),
    task_names: Annotated[
        list[str] | None, typer.Option("--tasks", help="only these tasks (repeat, or comma-separated)")
    ] = None,
    iterations: Annotated[int | None, _config_option("iterations")] = None,
    samples: Annotated[int | None, _config_option("samples")] = None,
    eval_seeds: Annotated[int | None, _config_option("eval_seeds")] = None,
    timesteps: Annotated[int | None, _config_option("timesteps")] = None,
    workers: Annotated[str | None, _config_option("workers")] = None,
    group: Annotated[int | None, _config_option("group")] = None,
    seed: Annotated[int | None, _config_option("seed")] = None,
    video: Annotated[bool | None, _config_option("video")] = None,
    sandbox: Annotated[str | None, _config_option("sandbox")] = None,
    device: Annotated[str | None, _config_option("device")] = None,
) -> None:
    """Eureka's protocol on every task of a suite: the table of F_sparse, F_human and F_best over
    the evaluation seeds, HNS, cost; the paper's summary lines. Rerun to resume. Exit 0 when every
    task has a final evaluation, 2 otherwise."""
    from eureka import loop
    from eureka.llm.client import default_model, for_run
    from eureka.runs import batch as batching
    from eureka.runs import bench, display

    overrides = _given(locals())  # the command line's flags, over the suite's options
    with user_errors():
        use_sandbox(sandbox)
        if workers is not None:
            overrides["workers"] = worker_count(workers)
        if overrides.get("device") is not None:
            overrides["device"] = _device(overrides["device"])
        loaded = batching.load_suite(suite or bench.default_suite())
        todo = batching.entries([], loaded, None)
        wanted = [n for names in task_names or [] for n in names.split(",") if n]
        if wanted:  # tasks of the suite keep their options (each of its entries); others the defaults
            listed: dict[str, list[batching.SuiteEntry]] = {}
            for e in todo:
                listed.setdefault(e.task, []).append(e)
            default = dict(loaded.defaults)
            todo = [e for n in wanted for e in listed.get(n, [batching.SuiteEntry(task=n, options=default)])]
        fallback = default_model()
        configs = {id(e): batching.solve_config(e, overrides, fallback) for e in todo}  # by entry

        def solve_one(entry: batching.SuiteEntry, earlier: Path | None) -> Path:
            config = configs[id(entry)]
            use_sandbox(config.sandbox)
            if earlier is None:
                run_dir = runs.new_run_dir(tasks.load(entry.task).name, out / "runs")
                loop.save_config(run_dir, config)
            else:
                run_dir = earlier
                console.print(f"[bold]{entry.task}[/bold]: resuming", highlight=False)
            console.print(f"[bold]{entry.task}[/bold]: {run_dir}", highlight=False, soft_wrap=True)
            loop.Loop(config, run_dir, for_run(config, run_dir), display.PlainReporter(console)).run()
            return run_dir

        def done(row: bench.TaskRow) -> None:
            colour = "green" if row.outcome == "ok" else "red"
            again = " (finished earlier)" if row.reused else ""
            console.print(
                f"[{colour}]{row.outcome}[/{colour}] {row.task}{again}: {row.message}", soft_wrap=True
            )

        result = bench.run_quality(todo, lambda e: configs[id(e)], solve_one, out, done)
        table = Table(*bench.TABLE_HEAD, title="eureka bench quality")
        for cells in bench.table_rows(result.tasks):
            table.add_row(*cells)
        console.print(table)
        for line in bench.summary_lines(result.headline):
            console.print(line, highlight=False, soft_wrap=True)
        for name in (bench.RESULTS_FILE, bench.MARKDOWN_FILE, bench.REPORT_FILE):
            console.print(f"{name}: {out / name}", highlight=False, soft_wrap=True)
    raise typer.Exit(result.exit_code)


def _judge(mode: str, rank_ui: str, open_videos: bool) -> Human | None:
    """Who answers a human feedback mode: the terminal, or the ranking page."""
    from eureka.feedback.judges import TerminalHuman
    from eureka.feedback.rank_page import WebRanker

    if mode not in ("critique", "rank"):
        return None
    if rank_ui not in ("web", "terminal"):
        raise ConfigError(f"--rank-ui {rank_ui!r}: use web or terminal")
    if not sys.stdin.isatty():
        raise ConfigError(
            f"--feedback {mode} asks a human and needs a terminal (stdin is not a TTY); "
            "use --feedback synthetic in CI, or --feedback auto"
        )

    def show(path: Path | str) -> None:
        typer.launch(str(path))

    terminal = TerminalHuman(
        lambda text: console.print(text, highlight=False, markup=False, soft_wrap=True),
        open_video=show if open_videos else None,
    )
    if mode == "rank" and rank_ui == "web":
        return WebRanker(
            lambda text: console.print(text, highlight=False, markup=False, soft_wrap=True),
            terminal,
            on_url=show if open_videos else None,
        )
    return terminal


def main() -> None:
    app()


if __name__ == "__main__":
    main()
