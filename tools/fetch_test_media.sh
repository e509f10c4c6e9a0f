#!/usr/bin/env bash
# Test media that ships inside a PyPI wheel we do not install: the useful-moonshine-onnx wheel
# holds a recorded human voice (moonshine_onnx/assets/beckett.wav, MIT) but depends on numba
# and librosa, so the wheel is only downloaded (pinned, hash-checked, no dependencies) into
# .test-media/ and the tests read the .wav out of it (hrlf.runtime.capture.speechsets).
# Without it (offline), the tests that need it skip and say so.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${HRLF_TEST_MEDIA:-.test-media}"
mkdir -p "$dest"
req="$(mktemp)"
trap 'rm -f "$req"' EXIT
echo "useful-moonshine-onnx==20251121 --hash=sha256:b4189b0d7dc8064d567fd0b5d5ce78634be290b0a3a3274ab80ad11c46d531a2" > "$req"
python3 -m pip download -q --no-deps --require-hashes --only-binary=:all: -r "$req" -d "$dest"
ls "$dest"
