"""Where the CPU time of one segment goes: ONNX Runtime per-op profile, session options, OpenVINO.

    python bench/ort_profile.py --json bench/results/ort_profile.json [--rounds 20]

On the demo model (12.8 MFLOPs per segment; one core does ~100 GFLOP/s on a 512x512
matmul, so compute-bound is ~0.13 ms per segment):

* ``profile``: ONNX Runtime's own profiler (``enable_profiling``) at batch 1 and 32: time
  per op type per run, and the node count;
* ``variants``: ms per segment at batch 1, 8, 32 and 64 for ONNX Runtime with its default
  options as the runtime uses them (1 thread, ORT_ENABLE_ALL), with extended (not all)
  optimizations, with spinning off, with 2 intra-op threads, and OpenVINO with static
  shapes; measured in interleaved rounds (each round: every variant and batch, one warm
  call then 5 timed; the median over ``--rounds``), because this 2-core VM is shared and
  its speed drifts.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import tempfile
import time

import numpy as np
import onnxruntime as ort

from hrlf.runtime.assets import demo_model_dir
from hrlf.runtime.spec import ModelSpec

MFLOPS_PER_SEGMENT = 12.8
REPEAT = 5  # timed calls per variant, batch and round, after one warm call
CORE_GFLOPS = 100.0


def feeds_for(spec: ModelSpec, b: int) -> dict:
    rng = np.random.default_rng(b)
    f = {}
    for m in spec.modalities:
        t = spec.frames(m)
        f[m] = rng.normal(size=(b, t, spec.dim(m))).astype(np.float32)
        f[m + "_mask"] = (rng.random((b, t)) > 0.2).astype(np.float32)
    f["modality_mask"] = np.ones((b, 3), np.float32)
    return f


def ort_session(path: str, threads=1, level="all", spinning=True, profile_dir=None):
    o = ort.SessionOptions()
    o.intra_op_num_threads, o.inter_op_num_threads = threads, 1
    o.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}[level]
    if not spinning:
        o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_dir:
        o.enable_profiling = True
        o.profile_file_prefix = os.path.join(profile_dir, "ort")
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def op_profile(path: str, spec: ModelSpec, batch: int, runs: int = 30) -> dict:
    """Per-op-type time of one run (ONNX Runtime's profiler)."""
    with tempfile.TemporaryDirectory() as tmp:
        s = ort_session(path, profile_dir=tmp)
        f = feeds_for(spec, batch)
        for _ in range(runs):
            s.run(None, f)
        with open(s.end_profiling()) as fh:
            events = json.load(fh)
    per_op, count, total = collections.Counter(), collections.Counter(), 0.0
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"]
            count[e["args"]["op_name"]] += 1
        elif e.get("name") == "model_run":
            total += e["dur"]
    kern = sum(per_op.values())
    return {"batch": batch, "run_ms": round(total / runs / 1e3, 3),
            "kernels_ms": round(kern / runs / 1e3, 3), "nodes": sum(count.values()) // runs,
            "ops": {op: {"ms": round(us / runs / 1e3, 3), "share": round(us / kern, 3),
                         "nodes": count[op] // runs} for op, us in per_op.most_common(12)}}


def variants(path: str, spec: ModelSpec, batches, rounds: int) -> dict:
    runners = {
        "ort_default": ort_session(path),
        "ort_extended_opt": ort_session(path, level="extended"),
        "ort_no_spinning": ort_session(path, spinning=False),
        "ort_2_threads": ort_session(path, threads=2),
    }
    calls = {k: (lambda s: (lambda f: s.run(None, f)))(s) for k, s in runners.items()}
    try:
        from hrlf.runtime.backends.openvino import OpenVinoBackend

        ov = OpenVinoBackend(os.path.dirname(path), spec, max_batch=max(batches))
        for b in batches:  # compile every bucket before timing
            ov._get(b, tuple(spec.frames(m) for m in spec.modalities))
        calls["openvino_static"] = ov.run
    except ImportError:
        pass
    feeds = {b: feeds_for(spec, b) for b in batches}
    times = {k: {b: [] for b in batches} for k in calls}
    for _ in range(rounds):
        for b in batches:
            for k, fn in calls.items():
                fn(feeds[b])  # warm: caches hold this model and batch
                for _ in range(REPEAT):
                    t0 = time.perf_counter()
                    fn(feeds[b])
                    times[k][b].append((time.perf_counter() - t0) * 1e3 / b)
    return {k: {str(b): round(float(np.median(v)), 4) for b, v in per.items()}
            for k, per in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="bench/results/ort_profile.json")
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    d = demo_model_dir()
    spec, path = ModelSpec.load(d), os.path.join(d, "model.onnx")
    out = {"command": "python bench/ort_profile.py --rounds %d" % args.rounds,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "loadavg_1min_at_start": round(os.getloadavg()[0], 2)},
           "onnxruntime": ort.__version__,
           "compute_bound_ms_per_segment": round(MFLOPS_PER_SEGMENT / CORE_GFLOPS, 3),
           "profile": [op_profile(path, spec, b) for b in (1, 32)],
           "ms_per_segment": variants(path, spec, (1, 8, 32, 64), args.rounds)}
    try:
        import openvino

        out["openvino"] = openvino.__version__
    except ImportError:
        pass
    out["machine"]["loadavg_1min_at_end"] = round(os.getloadavg()[0], 2)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(out["ms_per_segment"], indent=1))


if __name__ == "__main__":
    main()
