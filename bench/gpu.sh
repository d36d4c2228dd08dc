#!/usr/bin/env bash
# On a GPU machine with no network: install the carried wheels (WHEELS, default .gpu/whl), then
# run bench/gpu.py, which writes its logs and tables.md to OUT.
#   bash bench/gpu.sh OUT [WHEELS] [bench/gpu.py options...]
set -u
OUT=${1:?usage: bench/gpu.sh OUT [WHEELS] [options]}
WHEELS=${2:-.gpu/whl}
shift $(( $# >= 2 ? 2 : 1 ))
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
if compgen -G "$WHEELS/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/eureka-site "$WHEELS"/*.whl > "$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }
    export PYTHONPATH=/tmp/eureka-site${PYTHONPATH:+:$PYTHONPATH}
    # Training workers start with a clean environment (no PYTHONPATH): a .pth file puts the
    # wheels first on every interpreter's path, theirs too.
    site=$(python3 -c 'import site; print(site.getsitepackages()[0])')
    echo "import sys; sys.path.insert(0, '/tmp/eureka-site')" > "$site/eureka-carried-wheels.pth" \
        || echo "note: $site is read-only; sandboxed workers will not see the wheels"
fi
# MuJoCo's renderer needs libEGL; without it, rendering is off (bench runs film nothing).
if [ -z "${MUJOCO_GL:-}" ]; then
    if ldconfig -p | grep -q 'libEGL.so'; then export MUJOCO_GL=egl; else export MUJOCO_GL=disable; fi
fi
export PYTHONUNBUFFERED=1
exec python3 bench/gpu.py "$OUT" "$@"
