#!/usr/bin/env bash
# Download, here, the wheels that bench/gpu.sh installs on a GPU machine without network: what
# eureka's training path and its cuda tests need that the device image (Python 3.12, torch, jax,
# numpy, scipy, typer, rich, pyyaml, pytest...) does not have, at the versions of this checkout's
# venv, for CPython 3.12 on x86-64 Linux. About 36 MB; carry the folder with the run.
#   bash bench/gpu_wheels.sh [WHEELS] [PYTHON]     # defaults: .gpu/whl, .venv/bin/python
set -eu
cd "$(dirname "$0")/.."
WHEELS=${1:-.gpu/whl}
PY=${2:-.venv/bin/python}
PACKAGES="mujoco mujoco-core mujoco-studio glfw pyopengl mujoco-mjx trimesh gymnasium farama-notifications
stable-baselines3 pydantic pydantic-core annotated-types typing-inspection pytest-xdist execnet"
specs=()
for p in $PACKAGES; do
    v=$("$PY" -m pip show "$p" 2>/dev/null | awk '/^Version:/{print $2}')
    if [ -z "$v" ]; then echo "skipped $p: not installed in $PY's environment"; continue; fi
    specs+=("$p==$v")
done
[ ${#specs[@]} -gt 0 ] || { echo "nothing to download: is $PY eureka's venv?"; exit 1; }
mkdir -p "$WHEELS"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d "$WHEELS" "${specs[@]}"
du -sh "$WHEELS"
echo "on the GPU machine: bash bench/gpu.sh OUT $WHEELS (the folder travels with the checkout: keep it inside, ignored by git, e.g. .gpu/whl)"
