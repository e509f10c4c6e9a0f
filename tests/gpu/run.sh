#!/usr/bin/env bash
# GPU verification in one go; prints ONE summary (tests/gpu/gpucheck.py) and exits 1 only
# when a check FAILED. Skipped checks say why. On a machine without a GPU every GPU item
# is skipped with its reason and the script exits 0.
#
#   bash tests/gpu/run.sh [OUT_DIR]        # default OUT_DIR: /tmp/hrlf-gpucheck
#
# Python: HRLF_PYTHON if set, else the repo's .venv, else python3 on PATH, as long as it
# imports hrlf. On a GPU machine the GPU extras go into their own venv
# (OUT_DIR/venv, --system-site-packages so JetPack's tensorrt stays visible), pinned:
# hrlf from constraints.txt, onnxruntime-gpu (with its CUDA/cuDNN wheels) and NVRTC.
# Without network the installs fail and the script goes on with what is there, saying so.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-${HRLF_GPUCHECK_OUT:-/tmp/hrlf-gpucheck}}"
mkdir -p "$OUT"
NOTES="$OUT/setup.txt"
: > "$NOTES"
note() { echo "$*" >> "$NOTES"; echo "[run.sh] $*" >&2; }

# CUDA 13 user-space wheels (cudart, cuBLAS, cuDNN, NVRTC); needs an R580+ driver. For a
# CUDA 12 driver set HRLF_ORT_GPU_PIN=onnxruntime-gpu==1.23.2 and
# HRLF_NVRTC_PIN=nvidia-cuda-nvrtc-cu12==12.9.86.
ORT_GPU_PIN="${HRLF_ORT_GPU_PIN:-onnxruntime-gpu[cuda,cudnn]==1.31.1}"
NVRTC_PIN="${HRLF_NVRTC_PIN:-nvidia-cuda-nvrtc==13.5.37}"
INSTALL_TIMEOUT="${HRLF_INSTALL_TIMEOUT:-900}"

imports_hrlf() { "$1" -c "import hrlf.kernels, numpy" >/dev/null 2>&1; }

pick_python() {
    for py in "${HRLF_PYTHON:-}" .venv/bin/python "$(command -v python3 || true)"; do
        if [ -n "$py" ] && [ -x "$py" ] && imports_hrlf "$py"; then echo "$py"; return 0; fi
    done
    return 1
}

has_gpu() {
    [ -e /dev/nvidia0 ] || [ -e /dev/nvhost-gpu ] || [ -e /dev/nvgpu/igpu0 ] && return 0
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1
}

BASE_PY="$(pick_python)" || BASE_PY=""
PY="$BASE_PY"
if ! has_gpu; then
    note "no NVIDIA GPU device on this machine: GPU extras not installed"
else
    nvidia-smi -L 2>/dev/null | head -4 | while read -r l; do note "gpu: $l"; done
    VENV="${HRLF_GPU_VENV:-$OUT/venv}"
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv --system-site-packages "$VENV" >> "$OUT/pip.log" 2>&1 \
            || note "venv: cannot create $VENV (see pip.log)"
    fi
    if [ -x "$VENV/bin/python" ]; then
        VPIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
        if ! imports_hrlf "$VENV/bin/python"; then
            timeout "$INSTALL_TIMEOUT" "${VPIP[@]}" -c constraints.txt -e '.[dev]' >> "$OUT/pip.log" 2>&1 \
                || note "pip: hrlf[dev] install failed (offline?; see pip.log)"
        fi
        if imports_hrlf "$VENV/bin/python"; then
            PY="$VENV/bin/python"
            if ! "$PY" -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())" 2>/dev/null; then
                # the CPU and GPU wheels share the 'onnxruntime' module: swap, never mix
                "$PY" -m pip uninstall -y -q onnxruntime >> "$OUT/pip.log" 2>&1
                timeout "$INSTALL_TIMEOUT" "${VPIP[@]}" "$ORT_GPU_PIN" >> "$OUT/pip.log" 2>&1 \
                    || { note "pip: $ORT_GPU_PIN failed (offline?); restoring CPU onnxruntime"; \
                         timeout "$INSTALL_TIMEOUT" "${VPIP[@]}" -c constraints.txt onnxruntime >> "$OUT/pip.log" 2>&1; }
            fi
            if ! "$PY" -c "from cuda.bindings import nvrtc; nvrtc.nvrtcVersion()" >/dev/null 2>&1; then
                timeout "$INSTALL_TIMEOUT" "${VPIP[@]}" "$NVRTC_PIN" >> "$OUT/pip.log" 2>&1 \
                    || note "pip: $NVRTC_PIN failed (offline?)"
            fi
        else
            note "venv $VENV cannot import hrlf: using ${BASE_PY:-no python} as it is"
        fi
    fi
fi

if [ -z "$PY" ]; then
    echo "============================== hrlf GPU verification =============================="
    echo "every item  SKIP  no Python that imports hrlf (pip install -e '.[dev]' or set HRLF_PYTHON)"
    echo "0 passed, 0 failed, 7 skipped"
    exit 0
fi
note "python: $PY"
# NVRTC from pip wheels lives outside the default library path; cuda-pathfinder finds it
# in site-packages, this covers older cuda-python too.
NVRTC_DIR="$("$PY" -c "import nvidia, os; print(next((p for b in nvidia.__path__ for p in (os.path.join(b, 'cu13', 'lib'), os.path.join(b, 'cuda_nvrtc', 'lib')) if os.path.isdir(p)), ''))" 2>/dev/null || true)"
[ -n "$NVRTC_DIR" ] && export LD_LIBRARY_PATH="$NVRTC_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$PY" tests/gpu/gpucheck.py --out "$OUT" --setup-notes "$NOTES"
