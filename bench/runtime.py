"""Runtime benchmark: per-segment latency and throughput per backend, runtime overhead, RSS.

    python bench/runtime.py --json bench/results/runtime.json [--model-dir DIR] [--seconds 300]

Measures, on the same student (default: the built-in demo model, whose folder also holds
its ``student.pt`` for the PyTorch reference):
  * batch-1 latency p50/p99 and throughput of ONNX Runtime FP32, ONNX Runtime FP16 and
    PyTorch eager (when torch is installed), on windows packed from a synthetic stream;
  * the runtime's own overhead per segment (push + window bookkeeping + packing) with a
    backend that does no work;
  * end-to-end per-segment latency (wait + pack + infer) of a streaming session on ORT FP32;
  * peak resident memory of an ``hrlf-run`` process streaming the demo (no torch loaded).
Targets on a 2-core CPU (issue 7): ORT >= 3x faster than PyTorch eager, overhead <= 0.2 ms
per segment, end-to-end p99 <= 5 ms.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from hrlf.runtime.assets import demo_model_dir
from hrlf.runtime.backends.base import open_backend
from hrlf.errors import BackendUnavailable
from hrlf.runtime.session import Session, SessionConfig
from hrlf.runtime.spec import ModelSpec
from hrlf.runtime.sources import open_source


def stream_events(spec: ModelSpec, seconds: float) -> list:
    src = open_source("demo", spec, duration_s=seconds)
    events = []
    while (chunk := src.read(0)).events:
        events += chunk.events
    return events


def window_feeds(spec: ModelSpec, events: list, n: int) -> list[dict]:
    """Batch-1 feeds of the first n windows, captured from a session."""
    feeds = []

    class Capture:
        name, max_batch = "capture", 1

        def __init__(self):
            self.spec = spec

        def run(self, f):
            feeds.append(f)
            return np.zeros(len(f["modality_mask"]), np.float32)

        def close(self):
            pass

    s = Session(Capture(), spec, SessionConfig(max_batch=1))
    for e in events:
        s.push(e.modality, e.t, e.x)
        if len(feeds) >= n:
            break
        s.advance()
    return feeds[:n]


def time_backend(backend, feeds: list[dict], repeats: int) -> dict:
    for f in feeds[:20]:
        backend.run(f)  # warm-up
    times = []
    for i in range(repeats):
        f = feeds[i % len(feeds)]
        t = time.perf_counter()
        backend.run(f)
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 4),
            "p99_ms": round(float(np.percentile(ms, 99)), 4),
            "segments_per_s": round(float(1e3 / ms.mean()), 1), "repeats": repeats}


def session_run(spec, backend, events) -> dict:
    s = Session(backend, spec, SessionConfig(max_batch=1))
    t = time.perf_counter()
    for i, e in enumerate(events):
        s.push(e.modality, e.t, e.x)
        if i % 16 == 0:
            s.advance()
    s.close()
    wall = time.perf_counter() - t
    st = s.stats()
    return {"segments": st["segments"], "wall_ms_per_segment": round(wall * 1e3 / st["segments"], 4),
            "latency_ms": st["latency_ms"], "accounting_ok": st["accounting_ok"]}


class NullBackend:
    name, max_batch = "null", 1

    def __init__(self, spec):
        self.spec = spec

    def run(self, feeds):
        return np.zeros(len(feeds["modality_mask"]), np.float32)

    def close(self):
        pass


def peak_rss_of_hrlf_run(model_dir: str, seconds: float) -> dict:
    code = ("import resource, subprocess, sys; "
            f"subprocess.run(['hrlf-run', {model_dir!r}, '--pace', 'fast', '--stats-every', '0', "
            f"'--duration', '{seconds}'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, "
            "check=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {"peak_rss_mb": round(int(out.stdout.strip()) / 1024, 1), "stream_seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True, help="output JSON path")
    ap.add_argument("--model-dir", default=None, help="MODEL_DIR (default: the demo model)")
    ap.add_argument("--seconds", type=float, default=300.0, help="stream length for session runs")
    ap.add_argument("--repeats", type=int, default=2000)
    args = ap.parse_args()
    model_dir = args.model_dir or demo_model_dir()
    spec = ModelSpec.load(model_dir)
    events = stream_events(spec, args.seconds)
    feeds = window_feeds(spec, events, 200)
    out = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                       "python": platform.python_version()},
           "model_dir": os.path.relpath(model_dir), "threads": 1, "backends": {}}
    for label, name, opts in (("ort_fp32", "ort", {"precision": "fp32"}),
                              ("ort_fp16", "ort", {"precision": "fp16"}),
                              ("torch_eager", "torch", {})):
        try:
            be = open_backend(name, model_dir, spec, threads=1, **opts)
        except BackendUnavailable as e:
            out["backends"][label] = {"skipped": str(e)}
            continue
        out["backends"][label] = {"backend": be.name, **time_backend(be, feeds, args.repeats)}
        be.close()
    b = out["backends"]
    if "p50_ms" in b.get("torch_eager", {}) and "p50_ms" in b.get("ort_fp32", {}):
        out["ort_fp32_speedup_vs_torch"] = round(b["torch_eager"]["p50_ms"] / b["ort_fp32"]["p50_ms"], 2)
    null = session_run(spec, NullBackend(spec), events)
    out["runtime_overhead"] = {"ms_per_segment": null["wall_ms_per_segment"],
                               "pack_ms": null["latency_ms"]["pack"], "segments": null["segments"],
                               "what": "push of every frame + window bookkeeping + packing, "
                                       "with a backend that does no work"}
    out["end_to_end_ort_fp32"] = session_run(spec, open_backend("ort", model_dir, spec,
                                                                precision="fp32", threads=1), events)
    out["hrlf_run_memory"] = peak_rss_of_hrlf_run(model_dir, min(args.seconds, 120.0))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
