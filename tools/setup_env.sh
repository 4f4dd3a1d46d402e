#!/usr/bin/env bash
# Create .venv/ in the repository root with the exact OpenMMLab 2.x stack that
# decssl_mm is tested on, then install decssl_mm itself (editable).
#
#   bash tools/setup_env.sh            # idempotent; a second run takes seconds
#
# Environment knobs:
#   DECSSL_CACHE   where the built mmcv wheel is cached
#                  (default: ~/.cache/decssl_mm)
#   PYTHON         interpreter used to create the venv (default: python3)
#   DECSSL_NO_APT  set to 1 to skip installing the Debian Fashion-MNIST package
#   DECSSL_NO_FLOWER  set to 1 to skip the `flower` extra (pretraining across
#                  sites; its tests are then skipped)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
CACHE="${DECSSL_CACHE:-$HOME/.cache/decssl_mm}"

FLOWER="flwr==1.42.*"  # setup.py's `flower` extra (pinned: its API moves)
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
STACK=(
  "mmengine==0.10.7" "mmpretrain==1.2.0" "mmdet==3.3.0" "mmsegmentation==1.2.2"
  "pycocotools>=2.0.7" "numpy>=1.26,<3" "opencv-python>=4.8,<4.13"
  "ftfy" "regex" "matplotlib>=3.7" "scipy" "pytest>=7" "hypothesis>=6"
  "psutil" "tensorboard"
)

log() { printf '[setup_env %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
t0=$(date +%s)

# A stamp of this script's content: when it matches, the stack is in place
# and only a quick import check runs.
STAMP="$VENV/.decssl_setup_stamp"
want_stamp="$(sha256sum "$ROOT/tools/setup_env.sh" "$ROOT/setup.py" 2>/dev/null | sha256sum | cut -c1-16)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" ]] && \
   "$PY" -c "import mmcv.ops, mmdet, mmseg, mmpretrain, decssl_mm" 2>/dev/null; then
  log "environment up to date ($(($(date +%s) - t0)) s)"
  exit 0
fi

# 1. virtual environment
if [[ ! -x "$PY" ]]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$PY" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --upgrade pip "setuptools<81" wheel ninja

# 2. torch + torchvision as one matching pair (pinned: an unpinned requirement
#    pulls another multi-GB build).
have_torch="$("$PY" -c 'import torch, torchvision; print(torch.__version__.split("+")[0], torchvision.__version__.split("+")[0])' 2>/dev/null || true)"
if [[ "$have_torch" != "$TORCH_VERSION $TORCHVISION_VERSION" ]]; then
  log "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
  "${PIP[@]}" install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi

# 3. mmcv with compiled ops, built once per (mmcv, torch, python) and cached.
PYTAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
WHEEL_DIR="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$PYTAG-$(uname -m)"
if ! "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  wheel="$(ls "$WHEEL_DIR"/mmcv-*.whl 2>/dev/null | head -n1 || true)"
  if [[ -z "$wheel" ]]; then
    log "building mmcv $MMCV_VERSION with ops (one-off, ~16 min on 2 cores)"
    build="$(mktemp -d)"
    trap 'rm -rf "$build"' EXIT
    "${PIP[@]}" download -q --no-deps --no-build-isolation --no-binary :all: -d "$build" "mmcv==$MMCV_VERSION"
    tar -xzf "$build"/mmcv-*.tar.gz -C "$build"
    src="$(find "$build" -maxdepth 1 -type d -name 'mmcv-*' | head -n1)"
    # torch >= 2.14 headers require C++20; mmcv 2.1.0 hard-codes C++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
    (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-2}" \
       "${PIP[@]}" wheel -q --no-deps --no-build-isolation -w "$build/dist" .)
    # The wheel carries debug info (~32 MB); stripped it is ~1.5 MB.
    wdir="$build/strip"; mkdir -p "$wdir"
    "$PY" -m wheel unpack -d "$wdir" "$build"/dist/mmcv-*.whl >/dev/null
    find "$wdir" -name '_ext*.so' -exec strip --strip-debug {} +
    mkdir -p "$WHEEL_DIR"
    "$PY" -m wheel pack -d "$WHEEL_DIR" "$wdir"/mmcv-* >/dev/null
    wheel="$(ls "$WHEEL_DIR"/mmcv-*.whl | head -n1)"
    log "cached $wheel"
  else
    log "reusing cached $wheel"
  fi
  "${PIP[@]}" install -q --no-deps "$wheel"
fi

# 4. the rest of the stack (mmcv's own runtime deps are pulled by mmengine/mmdet).
log "installing the OpenMMLab stack"
"${PIP[@]}" install -q "${STACK[@]}" "addict" "yapf" "packaging" "Pillow" "pyyaml"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"
if [[ "${DECSSL_NO_FLOWER:-0}" != 1 ]]; then
  log "installing the flower extra ($FLOWER)"
  "${PIP[@]}" install -q "$FLOWER"
fi

# 5. real offline data for the demo (optional: the code works without it).
if [[ "${DECSSL_NO_APT:-0}" != 1 && ! -d /usr/share/datasets/fashion-mnist ]] && command -v apt-get >/dev/null; then
  if [[ "$(id -u)" == 0 ]]; then
    log "installing Debian package dataset-fashion-mnist"
    (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
      (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) || \
      log "WARNING: could not install dataset-fashion-mnist (the demo needs it; tests do not)"
  else
    log "not root: skipping dataset-fashion-mnist (sudo apt-get install dataset-fashion-mnist)"
  fi
fi

"$PY" -c "import mmcv.ops, mmdet, mmseg, mmpretrain, decssl_mm; print('stack ok: mmcv', mmcv.__version__)"
echo "$want_stamp" > "$STAMP"
log "done in $(($(date +%s) - t0)) s"
