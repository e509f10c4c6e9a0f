"""OpenVINO backends left open do not crash the interpreter at exit.

Before the exit hook of :mod:`hrlf.runtime.backends.openvino`, a process that opened three
backends, started a background compile in each and exited without ``close()`` aborted
(``terminate called without an active exception``, status 134) in 3 of 3 runs.
"""
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

RUNS = 20
SCRIPT = r"""
import numpy as np
from hrlf.runtime.assets import demo_model_dir
from hrlf.runtime.backends.base import open_backend
from hrlf.runtime.spec import ModelSpec

d = demo_model_dir()
spec = ModelSpec.load(d)
f = {m: np.zeros((9, spec.frames(m), spec.dim(m)), np.float32) for m in spec.modalities}
f.update({m + "_mask": np.ones((9, spec.frames(m)), np.float32) for m in spec.modalities})
f["modality_mask"] = np.ones((9, 3), np.float32)
backends = [open_backend("openvino", d, spec, max_batch=16) for _ in range(3)]
for be in backends:
    assert np.isfinite(be.run(f)).all()  # batch 9: compiles bucket 16 on a background thread
print("exiting with", len(backends), "backends open", flush=True)
"""


def _run_once(_):
    try:
        p = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                           timeout=180)
    except subprocess.TimeoutExpired:
        return None, "timed out after 180 s"
    return p.returncode, (p.stdout + p.stderr)[-400:]


def test_twenty_exits_with_open_backends_never_crash():
    pytest.importorskip("openvino", reason="openvino is not installed (pip install 'hrlf[openvino]')")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(_run_once, range(RUNS)))
    bad = [(rc, out) for rc, out in results if rc != 0 or "exiting with 3 backends open" not in out]
    assert not bad, f"{len(bad)} of {RUNS} runs failed; first: {bad[0]}"
