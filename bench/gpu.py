"""Benchmark: eureka's GPU path measured in one short run (prints figures, asserts nothing).

Sections, each in its own process with its own time limit, so one that fails or runs long
leaves the others' figures: the machine and versions; the cuda tests; `eureka train` on cuda
through the sandbox; the torch ports (cartpole, pendulum, mountain car, acrobot, point mass) at
4k-64k environments (env steps/s including learning, time to the success threshold); K
candidates trained at once on one GPU (K = 1, 4, 8, 16; separate sandboxed processes, each
kept to 1/K of the GPU's memory by the local executor); MuJoCo on the GPU through MJX
(dynamics against the CPU engine over a horizon, physics steps/s, half_cheetah training).

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
)
LIMITS = {"env": 25, "tests": 75, "cli": 45, "speed": 120, "concurrency": 80, "mjx": 150}
"""Seconds each section may take at most (less when the overall deadline comes first)."""


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


def section_concurrency(ks: list[int], envs: int, iterations: int, device: str) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    import speed

    from eureka.training.executors import LocalExecutor
    from eureka.types import TrainJob

    budget = envs * 32 * iterations
    print(
        f"cartpole, human reward, {envs} envs x 32 steps per update, {budget:,} steps per job, "
        f"device {device}"
    )
    print(
        f"{'K':>3} {'ok':>4} {'total steps':>12} {'wall (s)':>9} {'steps/s (wall)':>15} "
        f"{'sum of job steps/s':>19} {'mean job steps/s':>17}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = speed._variant("cartpole", "batched", root, {"num_envs": envs, "num_steps": 32})
        reward = root / "reward.py"
        reward.write_text((folder / "human_reward.py").read_text())
        for k in ks:
            executor = LocalExecutor(gpus=1 / k)
            jobs = [
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
            start = time.monotonic()
            with ThreadPoolExecutor(max_workers=k) as pool:
                results = list(pool.map(executor.run, jobs))
            wall = time.monotonic() - start
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


def section_mjx(sizes: list[int], check_envs: int, train_envs: int, budget: int, device: str) -> None:
    import torch

    from eureka.training.sim import mjx
    from eureka.training.sim.mujoco import MujocoBatch

    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", "/tmp/eureka-jax-cache")
    if not mjx.available():
        print(f"MJX not available: {mjx.INSTALL_HINT}")
        return
    import jax

    print(f"jax {jax.__version__} on {jax.devices()}", flush=True)
    # 1. Dynamics: the same start states and actions through MJX and through CPU MuJoCo.
    start = time.monotonic()
    gpu = mjx.MjxBatch("HalfCheetah-v5", check_envs, device, seed=0)
    print(f"MJX compile + first reset, {check_envs} envs: {time.monotonic() - start:.1f} s", flush=True)
    cpu = MujocoBatch("HalfCheetah-v5", check_envs, "cpu", seed=0, threads=os.cpu_count() or 1)
    cpu.reset(3)
    gpu.set_state(cpu.sim["qpos"].clone(), cpu.sim["qvel"].clone())
    cpu.set_state(cpu.sim["qpos"].numpy().copy(), cpu.sim["qvel"].numpy().copy())
    generator = torch.Generator().manual_seed(1)
    print(f"dynamics, {check_envs} envs, random actions: max |MJX - CPU| after t steps (5 substeps each)")
    print(
        f"{'t':>4} {'qpos':>10} {'qvel':>10} {'obs':>10} {'reward':>10} {'mean reward MJX':>16} {'CPU':>10}"
    )
    sums = [0.0, 0.0]
    for t in range(1, 101):
        actions = torch.rand((check_envs, 6), generator=generator) * 2 - 1
        a, b = gpu.step(actions.to(device)), cpu.step(actions)
        sums[0] += float(a.reward.mean())
        sums[1] += float(b.reward.mean())
        if t in (1, 5, 10, 20, 50, 100):
            err = {
                "qpos": (gpu.sim["qpos"].cpu() - cpu.sim["qpos"]).abs().max(),
                "qvel": (gpu.sim["qvel"].cpu() - cpu.sim["qvel"]).abs().max(),
                "obs": (a.obs.cpu() - b.obs).abs().max(),
                "reward": (a.reward.cpu() - b.reward).abs().max(),
            }
            print(
                f"{t:>4} "
                + " ".join(f"{float(v):>10.2e}" for v in err.values())
                + f" {sums[0] / t:>16.4f} {sums[1] / t:>10.4f}",
                flush=True,
            )
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
    threads = os.cpu_count() or 1
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
    # 3. Training: batched PPO on MJX, env steps/s including learning.
    sys.path.insert(0, str(Path(__file__).parent))
    import speed

    print(speed.HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for envs, steps in ((check_envs, budget), (train_envs, train_envs * 16 * 12)):
            overrides = {"num_envs": envs, "num_steps": 16, "physics": "mjx"}
            result, wall = speed.measure("half_cheetah", "batched", Path(tmp), overrides, steps, 0, device)
            print(speed.row("half_cheetah", "batched/mjx", envs, result, wall), flush=True)


# ---------------------------------------------------------------- driver


def _run_section(name: str, argv: list[str], out: Path, deadline: float, env: dict[str, str]) -> str:
    limit = max(5.0, min(LIMITS.get(name, 60), deadline - time.monotonic()))
    log = out / f"{name}.log"
    start = time.monotonic()
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=limit, cwd=REPO, env=env, check=False
        )
        text, status = done.stdout + done.stderr, f"exit {done.returncode}"
    except subprocess.TimeoutExpired as exc:
        parts = [exc.stdout or "", exc.stderr or ""]
        text = "".join(p.decode() if isinstance(p, bytes) else p for p in parts)
        status = f"stopped at its {limit:.0f} s limit"
    log.write_text(text)
    took = time.monotonic() - start
    print(f"== {name}: {status}, {took:.0f} s", flush=True)
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
    parser.add_argument("--sections", nargs="+", default=list(LIMITS), choices=list(LIMITS))
    parser.add_argument("--section", help=argparse.SUPPRESS)  # internal: run one section here
    parser.add_argument("--args", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.section:
        device = _device()
        values = [int(v) for v in args.args]
        if args.section == "env":
            section_env()
        elif args.section == "speed":
            section_speed(values[:-1], values[-1], device)
        elif args.section == "concurrency":
            section_concurrency(values[:-2], values[-2], values[-1], device)
        elif args.section == "mjx":
            section_mjx(values[:-3], values[-3], values[-2], values[-1], device)
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
            *(["1", "2", "64", "2"] if q else [*map(str, CONCURRENCY), "2048", "15"]),
        ],
        "mjx": [
            *me,
            "--section",
            "mjx",
            "--args",
            *(["8", "8", "16", "512"] if q else ["65536", "4096", "16384", "1000000"]),
        ],
    }
    tables = [f"# eureka on the GPU ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n"]
    for name in args.sections:
        if time.monotonic() > deadline - 5:
            tables.append(f"## {name}: not run (out of time)\n")
            continue
        tables.append(_run_section(name, plan[name], out, deadline, env))
        (out / "tables.md").write_text("\n".join(tables))
    print((out / "tables.md").read_text())


if __name__ == "__main__":
    main()
