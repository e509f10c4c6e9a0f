"""Window-packing benchmark: numpy on the CPU, the fused CUDA kernel, and naive per-frame
host->device copies, for the synthetic spec's three modalities at batch 1 and 32.

    python bench/kernels.py --json OUT.json

* ``numpy-cpu``: :func:`hrlf.kernels.pack.pack_windows` with ``device='cpu'`` (the
  reference; one call per modality).
* ``cuda-fused``: the same call with ``device='cuda'``: host staging, one H2D copy, one
  kernel launch for all modalities, one D2H copy and the sync (end to end, numpy in and
  numpy out).
* ``cuda-naive-per-frame``: every frame of every window copied to its device slot with
  its own cuMemcpyHtoD, then one sync. Raw frames only (no averaging, masks or
  normalization), so it is a lower bound on that approach's cost.

GPU entries are recorded as ``"status": "skipped"`` with the reason on machines without a
usable GPU. Times are the median (and p90) over repeated calls, in milliseconds.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

BATCHES = (1, 32)


def workload(batch: int, duration_s: float = 60.0):
    """The synthetic spec, one synthetic recording's streams, and ``batch`` window starts."""
    from hrlf.runtime.spec import ModelSpec
    from hrlf.runtime.synthetic import SyntheticConfig, generate_recordings

    cfg = SyntheticConfig(duration_s=duration_s)
    feats = cfg.features()
    norm = {m: {"mean": (0.0,) * f.dim, "std": (1.0,) * f.dim} for m, f in feats.items()}
    spec = ModelSpec(features=feats, window_s=cfg.window_s, hop_s=cfg.hop_s, norm=norm,
                     data=cfg.fingerprint())
    rec = generate_recordings(cfg, "test", 1)[0]
    streams = {m: (rec.frames[m].astype(np.float32), rec.times[m]) for m in spec.modalities}
    starts = 10.0 + np.arange(batch) * cfg.hop_s  # overlapping windows when batch > 1
    return spec, streams, starts


def timeit(fn, repeats: int, warmup: int = 3) -> dict:
    for _ in range(warmup):
        fn()
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    ms = np.array(t) * 1e3
    return {"ms_per_call": float(np.median(ms)), "ms_p90": float(np.percentile(ms, 90)),
            "repeats": repeats}


def naive_per_frame(spec, streams, starts):
    """A callable doing one H2D copy per (window, frame), and the number of copies."""
    from hrlf.kernels.cuda_driver import open_api
    from hrlf.kernels.pack_ref import window_index

    api = open_api()
    jobs, off = [], 0
    for m in spec.modalities:
        frames, times = streams[m]
        lo, hi = window_index(times, starts, spec.window_s)
        row = 4 * frames.shape[1]
        for a, b in zip(lo, hi):
            for i in range(a, b):
                jobs.append((off, frames[i], row))
                off += row
    with api.current():
        dst = api.alloc(max(off, 1))

    def run():
        with api.current():
            for o, src, nbytes in jobs:
                api.htod(dst + o, src, nbytes)
            api.sync()

    return run, len(jobs)


def bench(repeats: int) -> dict:
    from hrlf.kernels.pack import cuda_unavailable_reason, pack_windows

    reason = cuda_unavailable_reason()
    results = []
    for batch in BATCHES:
        spec, streams, starts = workload(batch)
        n = repeats if batch == 1 else max(5, repeats // 4)
        frames = int(sum(((t >= s) & (t < s + spec.window_s)).sum()
                         for _, t in streams.values() for s in starts))
        common = {"batch": batch, "modalities": list(spec.modalities), "frames_in_windows": frames}
        results.append({"impl": "numpy-cpu", "status": "ok", **common,
                        **timeit(lambda: pack_windows(spec, streams, starts, device="cpu"), n)})
        for impl in ("cuda-fused", "cuda-naive-per-frame"):
            if reason is not None:
                results.append({"impl": impl, "status": "skipped", "reason": reason, **common})
                continue
            if impl == "cuda-fused":
                fn = lambda: pack_windows(spec, streams, starts, device="cuda")  # noqa: E731
                extra = {"launches": 1}
            else:
                fn, copies = naive_per_frame(spec, streams, starts)
                extra = {"h2d_copies": copies}
            results.append({"impl": impl, "status": "ok", **common, **extra, **timeit(fn, n)})
    env = {"python": platform.python_version(), "numpy": np.__version__,
           "cpu_count": os.cpu_count(), "machine": platform.machine(), "gpu": reason or _gpu_name()}
    return {"bench": "kernels", "unit": "ms", "env": env, "results": results}


def _gpu_name() -> str:
    try:
        from cuda.bindings import driver

        err, dev = driver.cuDeviceGet(0)
        err, name = driver.cuDeviceGetName(100, dev)
        return name.split(b"\0")[0].decode()
    except Exception as e:  # a name is nice to have, not worth failing the bench for
        return f"unknown ({type(e).__name__})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Window-packing benchmark (numpy vs CUDA).")
    ap.add_argument("--json", dest="out", default=None, help="write results here (else stdout)")
    ap.add_argument("--repeats", type=int, default=200, help="calls timed at batch 1 [200]")
    a = ap.parse_args(argv)
    res = bench(a.repeats)
    text = json.dumps(res, indent=1)
    if a.out:
        tmp = f"{a.out}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, a.out)
    for r in res["results"]:
        cell = f"{r['ms_per_call']:.3f} ms" if r["status"] == "ok" else f"skipped: {r['reason']}"
        print(f"{r['impl']:<22} batch {r['batch']:>2}: {cell}", file=sys.stderr)
    if not a.out:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
