"""Benchmark: eureka's GPU path measured in one short run (prints figures, asserts nothing).

Sections, each in its own process with its own time limit, its output streamed to its log, so
one that fails or runs long leaves the others' figures: the machine and versions (env); K
candidates trained at once on one GPU (concurrency: K = 1, 4, 8, 16 sandboxed processes, each
kept to 1/K of the GPU's memory by the local executor; grouped: the same K jobs in one sandboxed
process, `--group K`; fused: the one-process prototype of the loop alone); where a training
step's time goes (profile: operators, kernel launches and host waits per step, by call site);
the cuda tests; cartpole to its threshold under several batched settings and the torch ports
under their own (solve); MuJoCo on the GPU through MJX (mjx: dynamics against the CPU engine,
physics steps/s, half_cheetah training steps/s including learning); one half_cheetah candidate
(16,384 envs on MJX) in a fresh process, with an empty then a warm compile cache
(candidate-cold, candidate-warm). On request: `eureka train` on cuda through the sandbox (cli),
the torch ports at 4k-64k envs (speed).

    bash bench/gpu.sh OUT                  # on the GPU machine: installs carried wheels, then this
    python bench/gpu.py OUT --quick        # tiny sizes, any machine (a dry run of every section)

Every section's output goes to OUT/<section>.log; the tables are gathered in OUT/tables.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TORCH_PORTS = ("cartpole", "pendulum", "mountain_car_continuous", "acrobot", "point_mass")
SIZES = (4096, 16384, 65536)
QUICK_SIZES = (64, 128)
CONCURRENCY = (1, 4, 8, 16)
CUDA_TESTS = (
    "tests/test_sim_classic.py::test_cuda_matches_cpu",
    "tests/test_gpus.py",
    "tests/test_sim_mjx.py::test_registry_picks_the_physics",
    "tests/test_sim_mjx.py::test_mjx_follows_the_cpu_physics_over_a_horizon[cuda-256]",
    "tests/test_tasks.py::test_batched_cuda_settings_apply_on_a_cuda_device_only",
    "tests/test_groups.py::test_on_cuda_a_grouped_job_ends_as_alone_where_alone_repeats",
    "tests/test_batched.py::test_a_reward_that_turns_nan_mid_rollout_ends_as_a_check_at_every_step_would[cuda]",
    "tests/test_batched.py::test_a_step_replayed_as_a_cuda_graph_trains_like_an_eager_one",
    "tests/test_batched.py::test_a_reward_that_cannot_be_captured_trains_eagerly",
)
LIMITS = {
    "env": 25,
    "concurrency": 140,
    "grouped": 160,
    "tests": 100,
    "solve": 140,
    "graph": 60,
    "mjx": 200,
    "candidate": 90,
    "fused": 60,
    "cli": 45,
    "profile": 40,
    "speed": 120,
}
"""Seconds each section may take at most (less when the overall deadline comes first)."""
DEFAULT_SECTIONS = ("env", "grouped", "profile", "concurrency", "tests", "mjx", "candidate", "solve", "fused")
"""Run unless --sections says otherwise (cli and speed: measured on 2026-11-26, docs/)."""
CARTPOLE_SETTINGS: dict[str, dict[str, object]] = {
    "1024x16": {"num_envs": 1024, "num_steps": 16, "epochs": 3, "minibatches": 1, "learning_rate": 3e-3},
    "4096x32": {"num_envs": 4096, "num_steps": 32, "epochs": 3, "minibatches": 1, "learning_rate": 1e-3},
    "4096x16": {"num_envs": 4096, "num_steps": 16, "epochs": 4, "minibatches": 2, "learning_rate": 3e-3},
    "4096x8": {"num_envs": 4096, "num_steps": 8, "epochs": 3, "minibatches": 1, "learning_rate": 3e-3},
}
"""Batched settings tried for cartpole on the GPU (time to threshold, 2 seeds each)."""
GRAPH_RUNS: list[tuple[str, str, dict[str, object]]] = [
    ("cartpole", "own + graph", {"cuda_graph": True}),
    ("cartpole", "4096x8+graph", {**CARTPOLE_SETTINGS["4096x8"], "cuda_graph": True}),
]
"""Cartpole with each step replayed as a CUDA graph (eager where not on cuda)."""
CANDIDATE: dict[str, object] = {"num_envs": 16384, "num_steps": 16, "physics": "mjx"}
"""half_cheetah's settings in the candidate sections (the task's others; 64 envs on a CPU)."""


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------- sections run in a subprocess


def section_env() -> None:
    import torch

    print(f"python {sys.version.split()[0]}; torch {torch.__version__}; cuda {torch.cuda.is_available()}")
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        print(f"card: {props.name}, {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs")
    print(f"cpus: {os.cpu_count()}")
    for name in ("mujoco", "gymnasium", "jax", "pydantic"):
        try:
            module = __import__(name)
            print(f"{name} {getattr(module, '__version__', '?')}")
        except ImportError as exc:
            print(f"{name}: missing ({exc})")
    from eureka.training.sim import mjx

    print(f"mjx available: {mjx.available()}")
    if mjx.available():
        import jax

        print(f"jax devices: {jax.devices()}")


def section_speed(sizes: list[int], iterations: int, device: str) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    import speed

    print(speed.HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for envs in sizes:
            for name in TORCH_PORTS:
                overrides: dict[str, object] = {"num_envs": envs, "num_steps": 32}
                budget = envs * 32 * iterations
                result, wall = speed.measure(name, "batched", Path(tmp), overrides, budget, 0, device)
                print(speed.row(name, "batched", envs, result, wall), flush=True)


def section_solve(seeds: int, budget: int, device: str) -> None:
    """Cartpole to its threshold under each of CARTPOLE_SETTINGS, the torch ports under their
    own settings (`training.batched`, with its `cuda` part on a GPU), and cartpole under its own
    settings with each step replayed as a CUDA graph (`cuda_graph`; eager where not on cuda)."""
    runs: list[tuple[str, str, dict[str, object], list[int]]] = [
        ("cartpole", k, v, list(range(seeds))) for k, v in CARTPOLE_SETTINGS.items()
    ]
    runs += [(name, label, overrides, list(range(seeds))) for name, label, overrides in GRAPH_RUNS]
    runs += [(name, "task's own", {}, [0]) for name in TORCH_PORTS]
    _solve_rows(runs, budget, device, warm_up=True)


def section_graph(seeds: int, budget: int, device: str) -> None:
    """Cartpole with each step replayed as a CUDA graph (GRAPH_RUNS), seeds 0..seeds-1 and then
    seed 0 again, with no warm-up in this fresh process: its first row pays what a candidate's
    own process pays once (CUDA context, kernels loaded, the graph's memory pool), the repeat of
    seed 0 shows what that was."""
    order = [*range(seeds), 0]
    _solve_rows([(name, label, overrides, order) for name, label, overrides in GRAPH_RUNS], budget, device)


def _solve_rows(
    runs: list[tuple[str, str, dict[str, object], list[int]]], budget: int, device: str, warm_up: bool = False
) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    import speed

    print("time to threshold (training clock; mean F of the last 20 training episodes >= threshold)")
    print(
        f"{'task':<24} {'settings':<12} {'seed':>4} {'solved':>6} {'to solve (s)':>12} "
        f"{'steps to solve':>14} {'steps/env':>9} {'steps/s':>11} {'sequential steps/s':>18} {'wall (s)':>8}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        if warm_up:
            speed.measure("cartpole", "batched", Path(tmp), {"num_envs": 64}, 4096, 0, device)
        for name, label, overrides, seeds in runs:
            for seed in seeds:
                result, wall = speed.measure(name, "batched", Path(tmp), overrides, budget, seed, device)
                envs = int(overrides.get("num_envs", 0)) or _task_envs(name, device)
                solved = result.solved_after_steps
                seq = result.steps_per_second / envs
                print(
                    f"{name:<24} {label:<12} {seed:>4} {'yes' if solved else 'no':>6} "
                    f"{_fmt(result.solved_after_seconds, '.2f'):>12} {_fmt(solved, ','):>14} "
                    f"{(solved or 0) // max(envs, 1):>9} {result.steps_per_second:>11,.0f} {seq:>18,.0f} "
                    f"{wall:>8.2f}"
                    + ("" if result.status.value == "ok" else f"  {result.status.value}: {result.message}"),
                    flush=True,
                )


def _task_envs(name: str, device: str) -> int:
    from eureka import tasks

    spec = tasks.load(name).spec.training.batched
    return spec.on(device).num_envs if spec else 1


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def section_candidate(budget: int, device: str) -> None:
    """One half_cheetah candidate (CANDIDATE settings, MJX physics) in this fresh process,
    the compile cache as found (JAX_COMPILATION_CACHE_DIR): imports, then the MJX step and reset
    compiled (or loaded from the cache), then the training job (which reuses them)."""
    start = time.monotonic()
    import torch

    sys.path.insert(0, str(REPO / "bench"))
    import speed

    from eureka.training.sim import mjx

    imported = time.monotonic() - start
    cache = os.environ.get("JAX_COMPILATION_CACHE_DIR", "")
    files = len(list(Path(cache).rglob("*"))) if cache and Path(cache).is_dir() else 0
    print(f"compile cache {cache or '-'}: {files} files before", flush=True)
    envs = int(CANDIDATE["num_envs"]) if device == "cuda" else 64
    start = time.monotonic()
    if device == "cuda":
        env = mjx.MjxBatch("HalfCheetah-v5", envs, device, seed=0)
        env.reset(0)
        env.step(torch.zeros((envs, 6), device=device))
        torch.cuda.synchronize()
        env.close()
    compiled = time.monotonic() - start
    print(speed.HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {**CANDIDATE, "num_envs": envs}
        result, wall = speed.measure("half_cheetah", "batched", Path(tmp), overrides, budget, 0, device)
        print(speed.row("half_cheetah", "batched/mjx", envs, result, wall), flush=True)
    learning = result.env_steps / max(result.steps_per_second, 1e-9)
    print(
        f"candidate {imported + compiled + wall:.1f} s = imports {imported:.1f} + MJX compile/load "
        f"{compiled:.1f} + job {wall:.1f} (learning {learning:.1f}; setup, smoke test, evaluation "
        f"{wall - learning:.1f}); {result.backend}; F {result.fitness}"
    )


def section_fused(ks: list[int], envs: int, iterations: int, device: str) -> None:
    """K cartpole trainings in one process: one batched environment of K x envs, K policies
    (PPO each), K reward functions (the human reward with K weightings), each on its own group.
    A prototype of the loop only: reward validation included, no statistics, episode records
    beyond the length, or evaluation; compare its K = 1 row with K = 1 of `concurrency`."""
    import torch

    from eureka import tasks
    from eureka.reward.contract import compile_reward
    from eureka.training.ppo import PPO
    from eureka.training.sim.registry import BatchedState, make_batched

    task = tasks.load("cartpole")
    spec = task.spec.training.batched
    assert spec is not None
    config = spec.on(device).model_copy(update={"num_envs": envs, "num_steps": 32})
    source = task.file(tasks.HUMAN_REWARD_FILE).read_text()
    print(f"cartpole, {envs} envs per group x 32 steps per update, {iterations} updates, device {device}")
    print(
        f"{'K':>3} {'total steps':>12} {'wall (s)':>9} {'steps/s':>11} {'per group':>10} "
        f"{'mean episode length per group, last update':>44}",
        flush=True,
    )
    for run, k in enumerate([ks[0], *ks]):  # the first: a warm-up, not shown
        dev = torch.device(device)
        env = make_batched(task, k * envs, dev, seed=k)
        fields = list(task.spec.state)
        rewards = [
            compile_reward(source.replace("0.5 * upright", f"{0.3 + 0.1 * i:.1f} * upright"), "r.py", fields)
            for i in range(k)
        ]
        ppos = [PPO(env.obs_dim, env.action, config, dev) for _ in range(k)]
        state_of = BatchedState(task, env)
        groups = [slice(i * envs, (i + 1) * envs) for i in range(k)]
        obs = env.reset(k)
        length = torch.zeros(k * envs, device=dev)
        start = time.monotonic()
        for _ in range(iterations):
            ended = torch.zeros(k * envs, device=dev)
            ended_length = torch.zeros(k * envs, device=dev)
            for _ in range(config.num_steps):
                actions = torch.cat([ppo.act(obs[g]) for ppo, g in zip(ppos, groups, strict=True)])
                step = env.step(actions)
                state = state_of(step.final_obs)
                done = step.terminated | step.truncated
                length += 1
                ended += done
                ended_length += torch.where(done, length, 0.0)
                length = torch.where(done, 0.0, length)
                for ppo, reward, g in zip(ppos, rewards, groups, strict=True):
                    total, _ = reward({name: state[name][g] for name in reward.params}, envs)
                    ppo.store(total, step.terminated[g], step.truncated[g], step.final_obs[g])
                obs = step.obs
            for ppo, g in zip(ppos, groups, strict=True):
                ppo.update(obs[g])
        if device == "cuda":
            torch.cuda.synchronize()
        wall = time.monotonic() - start
        total_steps = k * envs * config.num_steps * iterations
        means = [float(ended_length[g].sum() / ended[g].sum().clamp(min=1)) for g in groups]
        if run == 0:
            env.close()
            continue
        print(
            f"{k:>3} {total_steps:>12,} {wall:>9.1f} {total_steps / wall:>11,.0f} "
            f"{total_steps / wall / k:>10,.0f}   " + " ".join(f"{m:.0f}" for m in means),
            flush=True,
        )
        env.close()


def _cartpole_jobs(root: Path, k: int, envs: int, budget: int, device: str) -> list[Any]:
    """K cartpole jobs (the human reward, seeds 0..K-1, `envs` environments x 32 steps per
    update) in folders under `root`."""
    sys.path.insert(0, str(REPO / "bench"))
    import speed

    from eureka.types import TrainJob

    folder = root / "cartpole"
    if not folder.is_dir():
        folder = speed._variant("cartpole", "batched", root, {"num_envs": envs, "num_steps": 32})
    reward = root / "reward.py"
    reward.write_text((folder / "human_reward.py").read_text())
    return [
        TrainJob(
            task_folder=folder,
            reward_file=reward,
            out_dir=root / f"k{k}" / f"job{i}",
            seed=i,
            timesteps=budget,
            device=device,
            video=False,
        )
        for i in range(k)
    ]


def _k_header(what: str, envs: int, budget: int, device: str) -> None:
    print(f"cartpole, human reward, {envs} envs x 32 steps per update, {budget:,} steps per job, {what}")
    print(f"device {device}")
    print(
        f"{'K':>3} {'ok':>4} {'total steps':>12} {'wall (s)':>9} {'steps/s (wall)':>15} "
        f"{'sum of job steps/s':>19} {'mean job steps/s':>17}",
        flush=True,
    )


def _k_row(k: int, results: list[Any], wall: float) -> None:
    ok = sum(r.status.value == "ok" for r in results)
    total = sum(r.env_steps for r in results)
    rates = [r.steps_per_second for r in results]
    print(
        f"{k:>3} {ok:>2}/{k:<2} {total:>12,} {wall:>9.1f} {total / wall:>15,.0f} "
        f"{sum(rates):>19,.0f} {sum(rates) / k:>17,.0f}",
        flush=True,
    )
    for r in results:
        if r.status.value != "ok":
            print(f"    {r.status.value}: {r.message}")


def section_grouped(ks: list[int], envs: int, iterations: int, device: str) -> None:
    """K cartpole candidates in one sandboxed process (`--group K`: eureka.training.groups, each
    job with its own environment, policy, reward, generators and result), wall-clock from the
    host: the scheduled trainer that `fused` prototyped; compare with `concurrency`."""
    from eureka.training.executors import LocalExecutor

    budget = envs * 32 * iterations
    _k_header("K jobs in one process (--group K)", envs, budget, device)
    with tempfile.TemporaryDirectory() as tmp:
        for k in ks:
            jobs = _cartpole_jobs(Path(tmp), k, envs, budget, device)
            start = time.monotonic()
            results = LocalExecutor(gpus=1.0).run_group(jobs)
            _k_row(k, results, time.monotonic() - start)


def section_profile(envs: int, updates: int, device: str) -> None:
    """Where a training step's time goes (the figures a CUDA-graph or fused step must beat):
    cartpole's batched training (the task's settings, `envs` environments, the human reward),
    warmed up by one rollout and update, then `updates` more under torch.profiler: per batched
    env step the wall time, the tensor operators, the host waits for a value from the device
    (`aten::_local_scalar_dense`: .item(), float(), bool() of a tensor; each one a
    synchronisation on cuda) and, on cuda, the kernels launched; where the host waits come from;
    the operators that cost most."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    sys.path.insert(0, str(REPO / "bench"))
    import speed

    from eureka import tasks
    from eureka.training.batched import BatchedTraining
    from eureka.training.session import resolve_device, seed_everything
    from eureka.training.train import setup_process
    from eureka.types import TrainJob

    dev = resolve_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = speed._variant("cartpole", "batched", root, {"num_envs": envs})
        job = TrainJob(
            task_folder=folder,
            reward_file=folder / "human_reward.py",
            out_dir=root / "job",
            timesteps=10**9,
            device=device,
            video=False,
        )
        job.out_dir.mkdir()
        setup_process(job)
        seed_everything(0)
        training = BatchedTraining(job, tasks.load(str(folder)), dev, time.monotonic())
        training.advance()
        before = training.steps
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        start = time.monotonic()
        with profile(activities=activities, with_stack=True) as prof:
            for _ in range(updates):
                training.advance()
            if dev.type == "cuda":
                torch.cuda.synchronize()
        wall = time.monotonic() - start
        training.close()
    steps = (training.steps - before) // envs
    events = prof.key_averages()

    def count(match: Any) -> int:
        return sum(e.count for e in events if match(e.key))

    ops = count(lambda k: k.startswith("aten::"))
    waits = count(lambda k: k == "aten::_local_scalar_dense")
    launches = count(lambda k: "LaunchKernel" in k)
    syncs = count(lambda k: "Synchronize" in k)  # CUDA runtime calls: on cuda only
    copies = count(lambda k: k.startswith("cudaMemcpy"))
    print(
        f"cartpole, {envs} envs, {updates} rollouts and updates ({steps} batched steps), device {device}: "
        f"{wall / steps * 1000:.2f} ms per step (profiler on)"
    )
    print(
        f"per batched step: {ops / steps:.0f} tensor operators (nested counted), {waits / steps:.1f} host "
        f"waits for a device value; on cuda {launches / steps:.0f} kernel launches, {copies / steps:.1f} "
        f"memory copies (a finished episode's history goes to the host), {syncs / steps:.1f} "
        "stream synchronisations"
    )
    print("host waits by where they come from (the innermost eureka function above each):")
    sites: dict[str, int] = {}
    for event in prof.events():
        if event.name != "aten::_local_scalar_dense":
            continue
        parent = event.cpu_parent
        while parent is not None and "eureka/" not in parent.name:
            parent = parent.cpu_parent
        site = parent.name.split("eureka/")[-1] if parent is not None else "(outside eureka)"
        sites[site] = sites.get(site, 0) + 1
    for site, n in sorted(sites.items(), key=lambda item: -item[1])[:12]:
        print(f"  {n / steps:6.2f} per step  {site}")
    sort = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    print(events.table(sort_by=sort, row_limit=15, max_name_column_width=40), flush=True)


def section_concurrency(ks: list[int], envs: int, iterations: int, device: str) -> None:
    from eureka.training.executors import LocalExecutor

    budget = envs * 32 * iterations
    _k_header("K separate processes", envs, budget, device)
    with tempfile.TemporaryDirectory() as tmp:
        for k in ks:
            executor = LocalExecutor(gpus=1 / k)
            jobs = _cartpole_jobs(Path(tmp), k, envs, budget, device)
            start = time.monotonic()
            with ThreadPoolExecutor(max_workers=k) as pool:
                results = list(pool.map(executor.run, jobs))
            _k_row(k, results, time.monotonic() - start)


def section_mjx(
    sizes: list[int], check_envs: int, train_sizes: list[int], iterations: int, device: str
) -> None:
    import torch

    from eureka.training.sim import mjx
    from eureka.training.sim.mujoco import MujocoBatch

    if not mjx.available():
        print(f"MJX not available: {mjx.INSTALL_HINT}")
        return
    import jax

    print(f"jax {jax.__version__} on {jax.devices()}", flush=True)
    threads = len(os.sched_getaffinity(0))
    # 1. Dynamics: the same start states and actions through MJX and through CPU MuJoCo.
    start = time.monotonic()
    gpu = mjx.MjxBatch("HalfCheetah-v5", check_envs, device, seed=0)
    cpu = MujocoBatch("HalfCheetah-v5", check_envs, "cpu", seed=0, threads=threads)
    cpu.reset(3)
    gpu.set_state(cpu.sim["qpos"].clone(), cpu.sim["qvel"].clone())
    cpu.set_state(cpu.sim["qpos"].numpy().copy(), cpu.sim["qvel"].numpy().copy())
    generator = torch.Generator().manual_seed(1)
    print(f"dynamics, {check_envs} envs, random actions: max |MJX - CPU| after t steps (5 substeps each)")
    print(
        f"{'t':>4} {'qpos':>10} {'qvel':>10} {'obs':>10} {'reward':>10} {'obs 99%':>10} "
        f"{'mean reward MJX':>16} {'CPU':>10}"
    )
    sums = [0.0, 0.0]
    for t in range(1, 21):
        actions = torch.rand((check_envs, 6), generator=generator) * 2 - 1
        a, b = gpu.step(actions.to(device)), cpu.step(actions)
        sums[0] += float(a.reward.mean())
        sums[1] += float(b.reward.mean())
        if t in (1, 2, 5, 10, 20):
            obs_err = (a.obs.cpu() - b.obs).abs()
            err = {
                "qpos": (gpu.sim["qpos"].cpu() - cpu.sim["qpos"]).abs().max(),
                "qvel": (gpu.sim["qvel"].cpu() - cpu.sim["qvel"]).abs().max(),
                "obs": obs_err.max(),
                "reward": (a.reward.cpu() - b.reward).abs().max(),
                "obs 99%": obs_err.flatten().quantile(0.99),
            }
            print(
                f"{t:>4} "
                + " ".join(f"{float(v):>10.2e}" for v in err.values())
                + f" {sums[0] / t:>16.4f} {sums[1] / t:>10.4f}",
                flush=True,
            )
    print(f"(compile + 20 steps: {time.monotonic() - start:.1f} s)")
    cpu.close()
    # 2. Physics alone: steps/s of the batched step, actions drawn on the device.
    print(f"{'envs':>7} {'MJX physics steps/s':>20} {'compile (s)':>12}", flush=True)
    for n in sizes:
        start = time.monotonic()
        env = mjx.MjxBatch("HalfCheetah-v5", n, device, seed=0)
        env.reset(0)
        env.step(torch.zeros((n, 6), device=device))
        compiled = time.monotonic() - start
        actions = torch.rand((n, 6), device=device) * 2 - 1
        steps = 20
        torch.cuda.synchronize() if device == "cuda" else None
        start = time.monotonic()
        for _ in range(steps):
            env.step(actions)
        torch.cuda.synchronize() if device == "cuda" else None
        print(f"{n:>7} {n * steps / (time.monotonic() - start):>20,.0f} {compiled:>12.1f}", flush=True)
        env.close()
    ref = MujocoBatch("HalfCheetah-v5", 4096 if device == "cuda" else 64, "cpu", seed=0, threads=threads)
    ref.reset(0)
    zeros = torch.zeros((ref.num_envs, 6))
    start = time.monotonic()
    for _ in range(10):
        ref.step(zeros)
    print(
        f"CPU MuJoCo, {threads} threads, {ref.num_envs} envs: "
        f"{ref.num_envs * 10 / (time.monotonic() - start):,.0f} steps/s"
    )
    ref.close()
    # 3. Training: batched PPO on MJX, env steps/s including learning (16 steps per env per update).
    sys.path.insert(0, str(Path(__file__).parent))
    import speed

    print(f"training, {iterations} updates of envs x 16 steps, compiled steps reused from above")
    print(speed.HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for envs in train_sizes:
            overrides = {"num_envs": envs, "num_steps": 16, "physics": "mjx"}
            result, wall = speed.measure(
                "half_cheetah", "batched", Path(tmp), overrides, envs * 16 * iterations, 0, device
            )
            print(speed.row("half_cheetah", "batched/mjx", envs, result, wall), flush=True)
    # 4. Fewer constraint-solver iterations (MuJoCo Playground's locomotion tasks use a few):
    # physics steps/s at the largest size, and how far the dynamics move from the CPU engine's.
    for iterations_pair in ((4, 8),):
        n = sizes[-1]
        start = time.monotonic()
        env = mjx.MjxBatch("HalfCheetah-v5", n, device, seed=0, solver_iterations=iterations_pair)
        env.reset(0)
        actions = torch.rand((n, 6), device=device) * 2 - 1
        env.step(actions)
        compiled = time.monotonic() - start
        torch.cuda.synchronize() if device == "cuda" else None
        start = time.monotonic()
        for _ in range(20):
            env.step(actions)
        torch.cuda.synchronize() if device == "cuda" else None
        rate = n * 20 / (time.monotonic() - start)
        env.close()
        few = mjx.MjxBatch("HalfCheetah-v5", check_envs, device, seed=0, solver_iterations=iterations_pair)
        cpu = MujocoBatch("HalfCheetah-v5", check_envs, "cpu", seed=0, threads=threads)
        cpu.reset(3)
        few.set_state(cpu.sim["qpos"].clone(), cpu.sim["qvel"].clone())
        cpu.set_state(cpu.sim["qpos"].numpy().copy(), cpu.sim["qvel"].numpy().copy())
        generator = torch.Generator().manual_seed(1)
        errors = []
        for t in range(1, 11):
            actions = torch.rand((check_envs, 6), generator=generator) * 2 - 1
            a, b = few.step(actions.to(device)), cpu.step(actions)
            if t in (1, 10):
                errors.append(float((a.obs.cpu() - b.obs).abs().max()))
        cpu.close()
        print(
            f"solver iterations {iterations_pair}: {n} envs {rate:,.0f} physics steps/s (compile "
            f"{compiled:.1f} s); max |obs - CPU default| after 1 step {errors[0]:.2e}, "
            f"10 steps {errors[1]:.2e}",
            flush=True,
        )


# ---------------------------------------------------------------- driver


def _run_section(name: str, argv: list[str], out: Path, deadline: float, env: dict[str, str]) -> str:
    """Run one section in its own process, its output going straight to OUT/<name>.log (so that
    what it printed survives a kill), within its limit; its table for tables.md."""
    limit = max(5.0, min(LIMITS.get(name.split("-")[0], 60), deadline - time.monotonic()))
    log = out / f"{name}.log"
    start = time.monotonic()
    with log.open("w") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        try:
            status = f"exit {process.wait(timeout=limit)}"
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            status = f"stopped at its {limit:.0f} s limit"
    took = time.monotonic() - start
    print(f"== {name}: {status}, {took:.0f} s", flush=True)
    text = log.read_text(errors="replace")
    return f"## {name} ({status}, {took:.0f} s)\n\n```\n{_table_lines(name, text)}\n```\n"


def _table_lines(name: str, text: str) -> str:
    """The lines of a section's output worth keeping in tables.md (no warnings or tracebacks)."""
    if name == "tests":
        return "\n".join(text.strip().splitlines()[-12:])
    noise = ("warn", "Warn", "  warnings.", "Failed to import", "UserWarning", "settotalmass", "sandbox")
    return "\n".join(line for line in text.splitlines() if line.strip() and not any(n in line for n in noise))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the logs and tables.md")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a dry run of every section")
    parser.add_argument("--deadline", type=float, default=400, help="seconds for everything")
    parser.add_argument("--sections", nargs="+", default=list(DEFAULT_SECTIONS), choices=list(LIMITS))
    parser.add_argument("--tables", default="tables.md", help="file name of the gathered tables in OUT")
    parser.add_argument("--section", help=argparse.SUPPRESS)  # internal: run one section here
    parser.add_argument("--args", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.section:
        device = _device()
        values = [int(v) for v in args.args if "," not in v]
        if args.section == "env":
            section_env()
        elif args.section == "speed":
            section_speed(values[:-1], values[-1], device)
        elif args.section == "concurrency":
            section_concurrency(values[:-2], values[-2], values[-1], device)
        elif args.section == "profile":
            section_profile(values[0], values[1], device)
        elif args.section == "grouped":
            section_grouped(values[:-2], values[-2], values[-1], device)
        elif args.section == "fused":
            section_fused(values[:-2], values[-2], values[-1], device)
        elif args.section == "solve":
            section_solve(values[0], values[1], device)
        elif args.section == "graph":
            section_graph(values[0], values[1], device)
        elif args.section == "candidate":
            section_candidate(values[0], device)
        elif args.section == "mjx":
            sizes, check, train_sizes, iterations = args.args
            ints = [int(v) for v in sizes.split(",")], [int(v) for v in train_sizes.split(",")]
            section_mjx(ints[0], int(check), ints[1], int(iterations), device)
        return
    deadline = time.monotonic() + args.deadline
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    me = [sys.executable, str(Path(__file__).resolve()), str(out)]
    q = args.quick
    plan: dict[str, list[str]] = {
        "env": [*me, "--section", "env"],
        "tests": [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q", *CUDA_TESTS],
        "cli": [
            sys.executable,
            "-m",
            "eureka",
            "train",
            "cartpole",
            "--timesteps",
            "20000" if q else "300000",
            "--no-video",
            "--runs-dir",
            str(Path(tempfile.gettempdir()) / "eureka-gpu-runs"),
        ],
        "speed": [
            *me,
            "--section",
            "speed",
            "--args",
            *map(str, QUICK_SIZES if q else SIZES),
            "2" if q else "25",
        ],
        "concurrency": [
            *me,
            "--section",
            "concurrency",
            "--args",
            *(["1", "2", "64", "2"] if q else [*map(str, CONCURRENCY), "2048", "6"]),
        ],
        "profile": [*me, "--section", "profile", "--args", *(["64", "2"] if q else ["2048", "4"])],
        "grouped": [
            *me,
            "--section",
            "grouped",
            "--args",
            *(["1", "2", "64", "2"] if q else [*map(str, CONCURRENCY), "2048", "6"]),
        ],
        "fused": [
            *me,
            "--section",
            "fused",
            "--args",
            *(["1", "2", "64", "2"] if q else [*map(str, CONCURRENCY), "2048", "6"]),
        ],
        "solve": [*me, "--section", "solve", "--args", *(["1", "20000"] if q else ["2", "20000000"])],
        "graph": [*me, "--section", "graph", "--args", *(["2", "20000"] if q else ["4", "20000000"])],
        "mjx": [
            *me,
            "--section",
            "mjx",
            "--args",
            *(["8,16", "8", "16", "2"] if q else ["16384,65536,131072", "4096", "65536,131072", "3"]),
        ],
        "candidate": [*me, "--section", "candidate", "--args", "2048" if q else "1000000"],
    }
    tables = [f"# eureka on the GPU ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n"]
    for name in args.sections:
        if time.monotonic() > deadline - 5:
            tables.append(f"## {name}: not run (out of time)\n")
            continue
        if name == "candidate":  # a fresh process with an empty compile cache, then another
            cache = Path(tempfile.mkdtemp(prefix="eureka-jax-cache-"))
            for run in ("cold", "warm"):
                runs_env = {**env, "JAX_COMPILATION_CACHE_DIR": str(cache)}
                tables.append(_run_section(f"candidate-{run}", plan[name], out, deadline, runs_env))
                (out / args.tables).write_text("\n".join(tables))
            continue
        tables.append(_run_section(name, plan[name], out, deadline, env))
        (out / args.tables).write_text("\n".join(tables))
    print((out / args.tables).read_text())


if __name__ == "__main__":
    main()
