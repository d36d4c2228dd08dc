#!/usr/bin/env bash
# On a GPU machine with no network: install the carried wheels (WHEELS, default .gpu/whl: made
# here by bench/gpu_wheels.sh), then
# run bench/gpu.py, which writes its logs and tables.md to OUT.
#   bash bench/gpu.sh OUT [WHEELS] [bench/gpu.py options...]
# Sharing the machine's idle CPU cores with a CPU-only job (it gets OUT/cpu as "$1"):
#   CPU_JOB='python bench/seeds.py ... --out "$1"' CPU_JOB_UNTIL=520 bash bench/gpu.sh OUT WHEELS
# runs the sections that need every core (env, concurrency: K training processes) first, then the
# job in the background on cores 4-15 (one thread each, no GPU), killed CPU_JOB_UNTIL seconds after this
# script started, while the remaining sections run on cores 0-3 (until GPU_UNTIL seconds).
# ARCHIVE=FILE.tgz: OUT packed into one file when this script ends (a device tool that returns
# only a few files per call gets every log and the CPU job's output that way).
set -u
OUT=${1:?usage: bench/gpu.sh OUT [WHEELS] [options]}
WHEELS=${2:-.gpu/whl}
shift $(( $# >= 2 ? 2 : 1 ))
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ -n "${ARCHIVE:-}" ]; then
    trap 'tar -czf "$ARCHIVE" -C "$OUT" . 2>/dev/null' EXIT
fi
if compgen -G "$WHEELS/*.whl" > /dev/null; then
    # Into the repository (the sandbox hides /tmp from training workers but lets them read it).
    SITE=$PWD/.gpu-site
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$WHEELS"/*.whl > "$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }
    export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
    # Training workers start with a clean environment (no PYTHONPATH): a .pth file puts the
    # wheels first on every interpreter's path, theirs too.
    site=$(python3 -c 'import site; print(site.getsitepackages()[0])')
    echo "import sys; sys.path.insert(0, '$SITE')" > "$site/eureka-carried-wheels.pth" \
        || echo "note: $site is read-only; sandboxed workers will not see the wheels"
fi
# MuJoCo's renderer needs libEGL; without it, rendering is off (bench runs film nothing).
if [ -z "${MUJOCO_GL:-}" ]; then
    if ldconfig -p | grep -q 'libEGL.so'; then export MUJOCO_GL=egl; else export MUJOCO_GL=disable; fi
fi
export PYTHONUNBUFFERED=1
if [ -z "${CPU_JOB:-}" ]; then
    python3 bench/gpu.py "$OUT" "$@"
    exit
fi
UNTIL=${CPU_JOB_UNTIL:?CPU_JOB_UNTIL: seconds after the start by which the CPU job must end}
GPU_UNTIL=${GPU_UNTIL:-$UNTIL}
# shellcheck disable=SC2086
python3 bench/gpu.py "$OUT" --deadline "${FIRST_SECONDS:-165}" --tables tables-1.md "$@" \
    --sections ${FIRST_SECTIONS:-env concurrency}
mkdir -p "$OUT/cpu"
left=$(( UNTIL - SECONDS ))
echo "== CPU job on cores ${CPU_JOB_CORES:-4-15} for at most $left s: $CPU_JOB"
CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 setsid timeout -k 5 "$left" taskset -c "${CPU_JOB_CORES:-4-15}" \
    bash -c "$CPU_JOB" _ "$OUT/cpu" > "$OUT/cpu/job.log" 2>&1 &
job=$!
# shellcheck disable=SC2086
taskset -c "${GPU_CORES:-0-3}" python3 bench/gpu.py "$OUT" --deadline $(( GPU_UNTIL - SECONDS )) \
    --tables tables-2.md "$@" --sections ${REST_SECTIONS:-grouped profile tests mjx candidate solve fused}
wait "$job"
echo "== CPU job: exit $? after $SECONDS s of this script"
