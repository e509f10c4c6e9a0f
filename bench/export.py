"""Export benchmark: export time, model sizes, CPU latency of ONNX Runtime FP32 / FP16 and
PyTorch eager at batch 1 and 32 (median and p99 over repeats), written as JSON.

    python bench/export.py --json results/bench_export.json
    python bench/export.py --run runs/mosi --threads 2 --json out.json

Without --run it exports a freshly initialized default-size student (weights do not change
latency) on the default synthetic spec (2 s windows: 8 text, 40 audio, 20 vision frames).
The machine's load average is recorded before and after: on a shared machine it matters.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np


def _default_run(root: str) -> str:
    import torch

    from hrlf.runtime.synthetic import SyntheticConfig, make_synthetic
    from hrlf.train.checkpoint import save_network
    from hrlf.train.model import HRLFNet, ModelConfig

    ds = make_synthetic(SyntheticConfig(videos={"train": 6, "valid": 2, "test": 2}))
    spec = ds.spec(ds.splits["train"].norm())
    torch.manual_seed(0)
    net = HRLFNet(ModelConfig(dims={m: spec.dim(m) for m in spec.modalities}))
    run = os.path.join(root, "run")
    os.makedirs(run)
    save_network(os.path.join(run, "student.pt"), net, role="student")
    spec.save(os.path.join(run, "spec.json"))
    return run


def _feeds(spec, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    from hrlf.export.parity import make_feeds

    frames = {m: spec.frames(m) for m in spec.modalities}
    return dict(make_feeds(spec, batch, frames, (1.0, 1.0, 1.0), np.random.default_rng(seed)))


def _time(fn, repeats: int, warmup: int) -> dict:
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    ms.sort()
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    return {"median_ms": statistics.median(ms), "p99_ms": p99, "min_ms": ms[0],
            "repeats": repeats}


def _latency(model_dir: str, net, spec, batches, threads: int, repeats: int, warmup: int) -> dict:
    import onnxruntime as ort
    import torch

    from hrlf.train.model import InferenceGraph

    torch.set_num_threads(threads)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    sessions = {name: ort.InferenceSession(os.path.join(model_dir, f), opts,
                                           providers=["CPUExecutionProvider"])
                for name, f in (("ort_fp32", "model.onnx"), ("ort_fp16", "model.fp16.onnx"))}
    graph = InferenceGraph(net).eval()
    out = {}
    for b in batches:
        feeds = _feeds(spec, b)
        tfeeds = {k: torch.from_numpy(v) for k, v in feeds.items()}
        row = {name: _time(lambda s=s: s.run(None, feeds), repeats, warmup)
               for name, s in sessions.items()}
        with torch.inference_mode():
            row["torch_eager"] = _time(lambda: graph(**tfeeds), repeats, warmup)
        out[f"batch_{b}"] = row
        print(f"batch {b}: " + ", ".join(f"{k} {v['median_ms']:.2f} ms (p99 {v['p99_ms']:.2f})"
                                        for k, v in row.items()), file=sys.stderr)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True, help="write results here")
    ap.add_argument("--run", help="RUN_DIR to export (default: a fresh default-size student)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for ORT and torch")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    args = ap.parse_args(argv)

    from hrlf.export.api import export_model
    from hrlf.train.checkpoint import load_run
    from hrlf.train.model import inference_parameters

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as root:
        run = args.run or _default_run(root)
        model_dir = os.path.join(root, "model")
        t0 = time.perf_counter()
        report = export_model(run, model_dir, fp16=True)
        export_s = time.perf_counter() - t0
        net, spec = load_run(run)
        sizes = {f: os.path.getsize(os.path.join(model_dir, f))
                 for f in ("model.onnx", "model.fp16.onnx")}
        latency = _latency(model_dir, net, spec, args.batches, args.threads, args.repeats,
                           args.warmup)
    result = {
        "what": "hrlf-export benchmark (bench/export.py)",
        "model": {"run": args.run or "fresh default ModelConfig on default synthetic spec",
                  "config": dict(net.config.__dict__),
                  "inference_parameters": inference_parameters(net),
                  "frames": {m: spec.frames(m) for m in spec.modalities}},
        "export_s": export_s, "export_stages_s": report["seconds"],
        "parity": report["parity"], "size_bytes": sizes,
        "latency_cpu": latency, "threads": args.threads,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.processor(), "python": platform.python_version(),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "versions": _versions(),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print(f"export {export_s:.1f} s; sizes {sizes}; wrote {args.json}", file=sys.stderr)
    return 0


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("torch", "onnx", "onnxruntime", "onnxscript", "onnx-graphsurgeon", "polygraphy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


if __name__ == "__main__":
    sys.exit(main())
