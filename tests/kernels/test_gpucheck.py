"""tests/gpu/run.sh runs to the end anywhere; on a machine without a GPU it prints one
summary with every GPU item skipped and its reason, and exits 0."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hrlf.kernels.cuda_driver import unavailable_reason

# lives here, not in tests/gpu: the conftest skips everything there ("gpu" is a keyword)
HERE = Path(__file__).resolve().parents[1] / "gpu"
GPU_ITEMS = ("kernel parity vs numpy", "ORT CUDA EP vs CPU, FP32", "ORT CUDA EP vs CPU, FP16",
             "TensorRT engine build + parity", "runtime latency on the GPU")


def _gpucheck():
    spec = importlib.util.spec_from_file_location("gpucheck", HERE / "gpucheck.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(unavailable_reason() is None,
                    reason="a GPU is usable here: run `bash tests/gpu/run.sh` itself (minutes)")
def test_run_sh_without_gpu_skips_every_gpu_item_and_exits_0(tmp_path):
    env = {**os.environ, "HRLF_PYTHON": sys.executable}
    p = subprocess.run(["bash", str(HERE / "run.sh"), str(tmp_path)], capture_output=True,
                       text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    out = p.stdout
    assert out.count("hrlf GPU verification") == 1  # ONE summary
    for item in GPU_ITEMS:
        line = next(ln for ln in out.splitlines() if ln.startswith(item))
        assert "  SKIP  " in line and len(line.split("SKIP", 1)[1].strip()) > 10, line
    assert " failed, " in out and "0 failed" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    statuses = {i["item"]: i["status"] for i in summary["items"]}
    assert all(statuses[i] == "SKIP" for i in GPU_ITEMS)
    assert statuses["kernel bench"] == "PASS"  # numpy timings run on any machine
    bench = json.loads((tmp_path / "kernels.json").read_text())
    assert {r["impl"] for r in bench["results"]} == {"numpy-cpu", "cuda-fused",
                                                     "cuda-naive-per-frame"}
    assert any("no NVIDIA GPU" in n for n in summary["setup"])


def test_summary_counts_and_failures_do_not_stop_other_items():
    g = _gpucheck()
    s = g.Summary()

    def boom(_s, _item):
        raise ValueError("broken\nsecond line")

    s.run("a", boom)
    s.add("b", "SKIP", "no GPU here; use a GPU machine")
    text = s.render()
    assert "a  FAIL  ValueError: broken" in text and "second line" not in text
    assert text.strip().endswith("0 passed, 1 failed, 1 skipped")


def test_untrained_fallback_run_dir_loads(tmp_path):
    pytest.importorskip("torch")
    from hrlf.train.checkpoint import load_run

    run = _gpucheck().tiny_run_dir(tmp_path / "run")
    net, spec = load_run(run)
    assert spec.modalities == ("text", "audio", "vision")
    assert net.config.dims == {m: spec.dim(m) for m in spec.modalities}
