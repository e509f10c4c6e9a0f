"""Many concurrent real-time streams: one Session per stream vs the shared hub vs Triton.

    python bench/streams.py --modes hub --n 1000 2000 --runs 5
        [--json bench/results/streams.json] [--seconds 20] [--warmup 4]
        [--budget-ms 250] [--workers N] [--target-batch N] [--in-time-ms 100]

N streams of the demo model (text 4 Hz x 32, audio 20 Hz x 24, vision 10 Hz x 32; 2 s
windows, 1 s hop) are fed at real-time pace: every frame is pushed at its timestamp on the
wall clock, each stream starting at a random phase within the first second (so windows
come due spread over each second, as independent calls do). The hub and triton modes
receive 250 ms chunks (``--chunk-ms``): by default (``--feed batch``) every 5 ms the chunks
that came due go in one ``Hub.push_batch`` call per modality, as a gateway receiving many
streams would; ``--feed per-stream``: one ``push_many`` per stream and chunk. Modes:

* ``session``: one live ``Session`` per stream, each with its own worker thread, all
  sharing one ONNX Runtime session (1 thread) — N sessions started side by side;
* ``hub``: one ``Hub`` (``Hub.load``: its batch size measured, inference threads from the
  usable CPUs, latency budget ``--budget-ms``) on ONNX Runtime (1 intra-op thread);
* ``triton``: the same hub with ``--backend triton``: windows are packed here and scored by
  a ``tritonserver`` on loopback (Python backend running onnxruntime, 1 thread, dynamic
  batching), started by this script from the repository ``hrlf-export --triton`` writes.

Every (mode, N) runs ``--runs`` times, each in a fresh process (a single run says little on
a shared machine). Per run, over the measured seconds (after ``--warmup``): latency p50/p99
of the windows that came due in the span (from the moment a window is due — its end plus
the 0.1 s grace — until its result is delivered); ``delivered_pct`` and ``in_time_pct``:
of those windows, how many got a result, and how many within ``--in-time-ms``; windows
shed (``segments_dropped``, by reason); CPU cores used (this process's CPU time over wall
time; plus the server's for triton); what the rest of the machine used meanwhile
(``others_cpu_cores``: busy CPU time of the machine minus ours) and the load average at
start and end; peak RSS and resident memory per stream; how late the pushes ran
(``push_lag_ms``). The summary per (mode, N) gives the median and the worst of every run,
and whether every run held (p99 <= --in-time-ms and >= 99 % delivered).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from streams_feed import feed_second, recording, windows_due
from streams_proc import (  # noqa: F401
    loadavg,
    machine_busy_s,
    proc_cpu_s,
    proc_hwm_mb,
    rss_mb,
    thread_cpu_s,
)

HERE = os.path.dirname(os.path.abspath(__file__))


def open_streams(mode: str, n: int, args, on_result):
    """(streams with push/clock, closer, backend name, hub or None, base RSS) for a mode."""
    from hrlf.runtime.hub import Hub, HubConfig
    from hrlf.runtime.session import Session, SessionConfig

    live = SessionConfig(live=True, grace_s=0.1, max_batch=1 if mode == "session" else 32)
    if mode == "session":  # N sessions, N worker threads, one shared ORT session
        from hrlf.runtime.backends.base import open_backend
        from hrlf.runtime.hub_stream import SharedBackend
        from hrlf.runtime.spec import ModelSpec

        spec = ModelSpec.load(args.model_dir)
        be = open_backend(args.backend, args.model_dir, spec, threads=1)
        if hasattr(be, "compile_all"):
            be.compile_all()
        base = rss_mb()
        sessions = [Session(SharedBackend(be), spec, live, on_result=on_result).start()
                    for _ in range(n)]
        return sessions, lambda: [s.close() for s in sessions], be.name, None, base
    opts = {"backend": args.backend, "threads": args.threads} if mode == "hub" else \
        {"backend": "triton", "triton_url": args.triton_url}
    cfg = HubConfig(max_batch=args.max_batch, max_wait_s=args.max_wait_ms / 1e3, stream=live,
                    workers=args.workers or None, target_batch=args.target_batch or None,
                    latency_budget_s=args.budget_ms / 1e3 if args.budget_ms > 0 else None)
    hub = Hub.load(args.model_dir, config=cfg, **opts)
    if hasattr(hub.backend, "compile_all"):  # compiled models are not per-stream memory
        hub.backend.compile_all()
    base = rss_mb()
    t_add = time.perf_counter()
    streams = [hub.add_stream(on_result=on_result) for _ in range(n)]
    hub.add_ms_per_stream = (time.perf_counter() - t_add) * 1e3 / n
    hub.start()
    return streams, hub.close, hub.backend.name, hub, base


def gc_pauses():
    """Start timing the collector's passes; returns a function of the measured span's
    start (monotonic) giving, per generation, [passes, longest ms, total ms], and the
    passes over 10 ms as [seconds into the span, ms] (a pass holds the GIL: every thread
    waits)."""
    import gc

    seen: dict = {}
    long: list = []
    t: list = [0.0]

    def cb(phase, info):
        if phase == "start":
            t[0] = time.monotonic()
            return
        ms = (time.monotonic() - t[0]) * 1e3
        g = seen.setdefault(str(info["generation"]), [0, 0.0, 0.0])
        g[0], g[1], g[2] = g[0] + 1, max(g[1], ms), g[2] + ms
        if ms > 10:
            long.append((t[0], ms))

    gc.callbacks.append(cb)
    return lambda tm0: {**{k: [v[0], round(v[1], 2), round(v[2], 1)]
                           for k, v in sorted(seen.items())},
                        "long": [[round(a - tm0, 2), round(ms, 1)] for a, ms in long]}


def _pct(a, q) -> float:
    return round(float(np.percentile(a, q)), 2) if len(a) else 0.0


def worker(args) -> dict:
    """One (mode, N) run in this process; returns its figures."""
    from hrlf.runtime.assets import demo_model_dir
    from hrlf.runtime.spec import ModelSpec

    args.model_dir = args.model_dir or demo_model_dir()
    spec = ModelSpec.load(args.model_dir)
    mods = list(spec.modalities)
    total_s = args.warmup + args.seconds
    rec = recording(spec, total_s + 3)
    phases = np.sort(np.random.default_rng(args.n).uniform(0, 1, args.n))
    got: list = []  # (monotonic time delivered, latency ms) of every scored window

    def on_result(r):
        if r.status == "ok":
            got.append((time.monotonic(), r.latency_ms["total"]))

    streams, close, backend, hub, base = open_streams(args.mode, args.n, args, on_result)
    push_batch = hub.push_batch if hub is not None and args.feed == "batch" else None
    t0 = time.monotonic()
    for i, s in enumerate(streams):  # each stream's clock starts at its phase
        s._t0_wall = t0 + phases[i]
    lags: list = []
    gc_seen = gc_pauses()
    for sec in range(int(total_s)):
        if sec == args.warmup:
            cpu0, busy0 = resource.getrusage(resource.RUSAGE_SELF), machine_busy_s()
            feed0, threads0 = time.thread_time(), thread_cpu_s()
            srv0 = proc_cpu_s(args.server_pid) if args.server_pid else 0.0
            tm0, load0 = time.monotonic(), loadavg()
        feed_second(streams, rec, phases, mods, t0, sec, args.chunk_ms / 1e3,
                    lags if sec >= args.warmup else None, push_batch)
    tm1 = time.monotonic()
    cpu1, busy1 = resource.getrusage(resource.RUSAGE_SELF), machine_busy_s()
    feed_cpu = time.thread_time() - feed0  # the feeding (this thread): pushes
    threads1 = thread_cpu_s()
    srv_cpu = (proc_cpu_s(args.server_pid) - srv0) if args.server_pid else 0.0
    load1, rss_run = loadavg(), rss_mb()
    time.sleep(min(2.0, 3 * args.in_time_ms / 1e3 + 0.5))  # the span's last windows
    t_close = time.perf_counter()
    stats = close()
    close_s = time.perf_counter() - t_close
    measured_s = tm1 - tm0
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    d = np.asarray(got) if got else np.zeros((0, 2))
    lat = d[(d[:, 0] - d[:, 1] / 1e3 >= tm0) & (d[:, 0] - d[:, 1] / 1e3 < tm1), 1]
    expected = windows_due(phases, t0, tm0, tm1)
    out = {"mode": args.mode, "n": args.n, "backend": backend, "measured_s": round(measured_s, 2),
           "segments": int(len(lat)), "segments_expected": expected,
           "delivered_pct": round(100 * len(lat) / max(1, expected), 2),
           "in_time_pct": round(100 * float((lat <= args.in_time_ms).sum()) / max(1, expected), 2),
           "latency_ms": {"p50": _pct(lat, 50), "p99": _pct(lat, 99),
                          "max": round(float(lat.max()), 2) if len(lat) else 0.0},
           "cpu_cores": round((cpu + srv_cpu) / measured_s, 3),
           "client_cpu_cores": round(cpu / measured_s, 3),
           "feeder_cpu_cores": round(feed_cpu / measured_s, 3),
           "thread_cpu_cores": {k: round((v - threads0.get(k, 0.0)) / measured_s, 3)
                                for k, v in sorted(threads1.items())},
           "server_cpu_cores": round(srv_cpu / measured_s, 3),
           "others_cpu_cores": round((busy1 - busy0 - cpu - srv_cpu) / measured_s, 3),
           "loadavg": {"start": load0, "end": load1},
           "cpu_ms_per_segment": round(1e3 * (cpu + srv_cpu) / max(1, len(lat)), 4),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "rss_model_loaded_mb": round(base, 1),
           "rss_per_stream_kb": round((rss_run - base) * 1024 / args.n, 1),
           "push_lag_ms": {"p50": _pct(lags, 50), "p99": _pct(lags, 99)},
           "close_s": round(close_s, 2), "gc_passes": gc_seen(tm0)}
    if hub is not None:
        st = getattr(stats, "stats", None) or hub.stats()
        out.update(add_stream_ms=round(hub.add_ms_per_stream, 3), mean_batch=st["mean_batch"],
                   segments_dropped=st["segments_dropped"], batching=st["batching"])
    if args.server_pid:
        out["server_peak_rss_mb"] = round(proc_hwm_mb(args.server_pid), 1)
    return out


def run_one(mode: str, n: int, args, server) -> dict:
    """One (mode, N) run in a fresh worker process."""
    cmd = [sys.executable, __file__, "--worker", "--mode", mode, "--n", str(n),
           "--seconds", str(args.seconds), "--warmup", str(args.warmup), *run_flags(args)]
    if args.model_dir:
        cmd += ["--model-dir", args.model_dir]
    if mode == "triton":
        cmd += ["--triton-url", server.grpc_url, "--server-pid", str(server.proc.pid)]
    out = subprocess.run(cmd, capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    if out.returncode != 0:
        return {"mode": mode, "n": n, "error": out.stderr.strip().splitlines()[-3:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict], in_time_ms: float) -> list[dict]:
    """Per (mode, N): the median and the worst of its runs, and whether every run held."""
    out = []
    for key in dict.fromkeys((r["mode"], r["n"]) for r in runs):
        rs = [r for r in runs if (r["mode"], r["n"]) == key and "latency_ms" in r]
        if not rs:
            continue
        p99 = [r["latency_ms"]["p99"] for r in rs]
        dl = [r["delivered_pct"] for r in rs]
        it = [r["in_time_pct"] for r in rs]
        cores = [r["cpu_cores"] for r in rs]
        out.append({
            "mode": key[0], "n": key[1], "runs": len(rs),
            "errors": sum(1 for r in runs if (r["mode"], r["n"]) == key and "error" in r),
            "p50_ms_median": round(statistics.median(r["latency_ms"]["p50"] for r in rs), 2),
            "p99_ms_median": round(statistics.median(p99), 2), "p99_ms_worst": max(p99),
            "p99_ms_all": p99,
            "delivered_pct_median": statistics.median(dl), "delivered_pct_worst": min(dl),
            "in_time_pct_median": statistics.median(it), "in_time_pct_worst": min(it),
            "cpu_cores_median": round(statistics.median(cores), 3), "cpu_cores_worst": max(cores),
            "others_cpu_cores_median": round(statistics.median(
                r["others_cpu_cores"] for r in rs), 3),
            "loadavg_1min": [r["loadavg"]["start"][0] for r in rs],
            "held_every_run": all(r["latency_ms"]["p99"] <= in_time_ms
                                  and r["delivered_pct"] >= 99.0 for r in rs)})
    return out


def table(summary: list[dict]) -> str:
    """The summary as a markdown table (what README quotes)."""
    lines = ["| mode | N | runs | p50 median | p99 median | p99 worst | delivered (worst) | "
             "in time (worst) | CPU cores median (worst) | others' cores | load avg (1 min) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        la = s["loadavg_1min"]
        lines.append(
            f"| {s['mode']} | {s['n']} | {s['runs']} | {s['p50_ms_median']} ms | "
            f"{s['p99_ms_median']} ms | {s['p99_ms_worst']} ms | {s['delivered_pct_median']} % "
            f"({s['delivered_pct_worst']} %) | {s['in_time_pct_median']} % "
            f"({s['in_time_pct_worst']} %) | {s['cpu_cores_median']} ({s['cpu_cores_worst']}) | "
            f"{s['others_cpu_cores_median']} | {min(la)}–{max(la)} |")
    return "\n".join(lines)


def serve_demo(tmp: str):
    """A Triton repository of the demo model, served on loopback (Python backend)."""
    from hrlf.export import triton as triton_repo
    from hrlf.export.triton_server import TritonServer
    from hrlf.runtime.assets import demo_model_dir
    from hrlf.runtime.spec import ModelSpec

    d = demo_model_dir()
    repo = os.path.join(tmp, "repo")
    triton_repo.commit(triton_repo.stage_repository(repo, ModelSpec.load(d),
                                                    os.path.join(d, "model.onnx"), None, 64))
    return TritonServer(repo, (triton_repo.PYTHON_MODEL,)).start()


def add_run_args(ap) -> None:
    """The settings of one run (the hub's, the backend's, the feeding); bench/metrics_cost.py
    takes the same options for its runs of this worker."""
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--max-wait-ms", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=0, help="hub inference threads (0: auto)")
    ap.add_argument("--target-batch", type=int, default=0, help="hub batch size (0: measured)")
    ap.add_argument("--budget-ms", type=float, default=250.0,
                    help="hub latency budget: windows that would miss it are shed (0: never)")
    ap.add_argument("--in-time-ms", type=float, default=100.0,
                    help="a result within this of its window's due time is in time")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads")
    ap.add_argument("--backend", default="ort", choices=["ort", "openvino"],
                    help="in-process backend of the session and hub modes")
    ap.add_argument("--chunk-ms", type=float, default=250.0,
                    help="hub/triton: frames arrive in chunks of this many ms per modality, "
                         "pushed with push_many (0: frame by frame); session mode pushes "
                         "frame by frame")
    ap.add_argument("--feed", default="batch", choices=["batch", "per-stream"],
                    help="hub/triton chunks: every 5 ms, the chunks that came due in one "
                         "Hub.push_batch call per modality (a gateway receiving many "
                         "streams; a chunk waits up to 5 ms, counted in push_lag_ms), or "
                         "one push_many call per stream and chunk at its time")


def run_flags(args) -> list[str]:
    """The options of :func:`add_run_args` as a worker's command-line flags."""
    cmd = ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms),
           "--threads", str(args.threads), "--backend", args.backend,
           "--chunk-ms", str(args.chunk_ms), "--feed", args.feed,
           "--budget-ms", str(args.budget_ms),
           "--in-time-ms", str(args.in_time_ms)]
    for flag, v in (("--workers", args.workers), ("--target-batch", args.target_batch)):
        if v:
            cmd += [flag, str(v)]
    return cmd


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=os.path.join(HERE, "results", "streams.json"))
    ap.add_argument("--n", type=int, nargs="+", default=[1, 10, 100, 1000, 2000])
    ap.add_argument("--modes", nargs="+", default=["session", "hub", "triton"],
                    choices=["session", "hub", "triton"])
    ap.add_argument("--runs", type=int, default=5, help="fresh processes per (mode, N)")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=int, default=4)
    add_run_args(ap)
    ap.add_argument("--max-session-n", type=int, default=100,
                    help="skip the session mode above this N (one thread per stream: at "
                         "N=1000 it drove this 2-core VM's load average past 100)")
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="hub", help=argparse.SUPPRESS)
    ap.add_argument("--triton-url", default="", help=argparse.SUPPRESS)
    ap.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    if args.worker:
        args.n = args.n[0]
        if args.mode == "session":
            args.chunk_ms = 0.0
        print(json.dumps(worker(args)), flush=True)
        return
    runs, server = [], None
    tmp = tempfile.mkdtemp(prefix="hrlf-bench-streams-")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on TERM too
    try:
        if "triton" in args.modes:
            server = serve_demo(tmp)
        for mode in args.modes:
            for n in args.n:
                if mode == "session" and n > args.max_session_n:
                    continue
                for _ in range(args.runs):
                    run = run_one(mode, n, args, server)
                    print(json.dumps(run), flush=True)
                    runs.append(run)
    finally:
        if server is not None:
            server.stop()
    summary = summarize(runs, args.in_time_ms)
    result = {"command": "python bench/streams.py " + " ".join(sys.argv[1:]),
              "machine": {"cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
                          "platform": platform.platform(), "python": platform.python_version()},
              "settings": {k: getattr(args, k) for k in (
                  "runs", "seconds", "warmup", "max_batch", "max_wait_ms", "workers",
                  "target_batch", "budget_ms", "in_time_ms", "threads", "backend", "chunk_ms",
                  "feed")},
              "summary": summary, "runs": runs}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    print(table(summary), file=sys.stderr)


if __name__ == "__main__":
    main()
