#!/usr/bin/env bash
# The Triton server environment used by the tests, bench/streams.py and
# `python -m hrlf.export.triton_server REPO`: nvidia-pytriton's tritonserver binary (with the
# Python backend) plus numpy and onnxruntime for the Python-backend model that
# `hrlf-export --triton` writes. nvidia-pytriton pins numpy<2, so it gets its own virtual
# environment (default .triton-env in the checkout; HRLF_TRITON_ENV=DIR puts it elsewhere),
# with exact versions from constraints-triton.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir=${HRLF_TRITON_ENV:-.triton-env}
if [ ! -x "$env_dir/bin/python" ]; then
    python3 -m venv "$env_dir"
fi
"$env_dir/bin/pip" install -q -c constraints-triton.txt nvidia-pytriton onnxruntime
echo "tritonserver environment ready in $env_dir"
