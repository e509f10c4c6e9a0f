#!/usr/bin/env bash
# GPU verification on an OFFLINE GPU box whose system python3 already has torch, onnx,
# onnxruntime, numpy and cuda-python (e.g. a CUDA image), and no pip index: what was run on
# an H200 on 2026-12-04 (bench/results/gpucheck_h200.json, kernels_h200.json).
# Put in .whl/ beforehand (from a machine with PyPI): the pure-Python wheels
#   onnx_graphsurgeon==0.6.1 polygraphy==0.53.6 onnxconverter-common==1.16.0
# and a copy of mosi_utterance.npz; OUT is the folder for the logs.
# It runs tests/gpu/gpucheck.py, then hrlf-train on MOSI with --device cuda and cpu.
OUT="${OUT:-/tmp/hrlf-gpu-offline}"; mkdir -p "$OUT"
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 3
mkdir -p /tmp/pkg && ln -sfn "$PWD" /tmp/pkg/hrlf
export PYTHONPATH=/tmp/pkg:/tmp/site PYTHONUNBUFFERED=1
timeout 240 python3 tests/gpu/gpucheck.py --out /tmp/gc > $OUT/gpucheck.log 2>&1
grep -A14 "hrlf GPU verification" $OUT/gpucheck.log
cp /tmp/gc/summary.json /tmp/gc/runtime.json $OUT/ 2>/dev/null
for d in cuda cpu; do
  TIMEFORMAT="train $d wall_s=%R"
  { time timeout 150 python3 -m hrlf.train.cli --data .whl/mosi_utterance.npz --out /tmp/r_$d --device $d --quiet > $OUT/train_$d.log 2>&1 ; } 2>> $OUT/train_$d.log
  echo "rc=$?" >> $OUT/train_$d.log
  tail -2 $OUT/train_$d.log
done
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >> $OUT/train_cuda.log
