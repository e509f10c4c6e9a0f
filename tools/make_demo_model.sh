#!/usr/bin/env bash
# Rebuilds the demo model shipped inside the package (runtime/assets/demo/): a student
# trained on the built-in synthetic streams, exported to ONNX (FP32 + FP16). The student.pt
# is kept beside it so `hrlf-run --backend torch` and bench/runtime.py can run the same
# student in PyTorch. Needs hrlf[train,export].
# HEADS: attention heads of the encoders; 1 = the edge configuration (the default here,
# chosen by results/heads.md), 10 = the paper's. Same width, parameters and FLOPs.
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS="${EPOCHS:-12}"
HEADS="${HEADS:-1}"
tmp="$(mktemp -d)"
run="$tmp/demo-run"
echo "{\"model\": {\"heads\": $HEADS}}" > "$tmp/config.json"
hrlf-train --data synthetic --out "$run" --epochs "$EPOCHS" --seed 0 --quiet --config "$tmp/config.json"
rm -rf runtime/assets/demo
hrlf-export "$run" --out runtime/assets/demo --fp16
cp "$run/student.pt" runtime/assets/demo/student.pt
python - <<'PY'
import json
m = json.load(open("runtime/assets/demo/spec.json"))["metrics"]
print("demo model metrics:", json.dumps(m)[:400])
PY
