#!/usr/bin/env bash
# Builds a small model trained on the capture featurizers (haarface-v1, egemaps-lld-v02,
# vader-hash-v1) from clips this script makes itself (drawn faces, label-dependent tones,
# subtitles): the --model that bench/capture.py streams a file through.
#   bash tools/make_clips_model.sh OUT_DIR      -> OUT_DIR/model (MODEL_DIR)
# Needs hrlf[train,export,capture] with OpenCV 4.x.
set -euo pipefail
out="${1:?usage: make_clips_model.sh OUT_DIR}"
mkdir -p "$out" && cd "$out"
python - <<'PY'
from hrlf.runtime.capture import testmedia
rows = ["media,transcript,label"]
for i, label in enumerate([-2.5, -2, -1.5, -1, -0.5, 0.5, 1, 1.5, 2, 2.5] * 2):
    testmedia.write_clip("media", f"c{i}", label, seconds=4.0, fps=10)
    rows.append(f"media/c{i}.avi,,{label}")
open("clips.csv", "w").write("\n".join(rows) + "\n")
PY
rm -rf run model
hrlf-train --data clips.csv --out run --epochs 3 --quiet
hrlf-export run --out model
