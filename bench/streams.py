"""Many concurrent real-time streams: one Session per stream vs the shared hub vs Triton.

    python bench/streams.py --json bench/results/streams.json [--n 1 10 100 1000]
        [--modes session hub triton] [--seconds 20] [--warmup 4]

N streams of the demo model (text 4 Hz x 32, audio 20 Hz x 24, vision 10 Hz x 32; 2 s
windows, 1 s hop) are fed at real-time pace: every frame is pushed at its timestamp on the
wall clock, each stream starting at a random phase within the first second (so windows
come due spread over each second, as independent calls do). Modes:

* ``session``: one live ``Session`` per stream, each with its own worker thread, all
  sharing one ONNX Runtime session (1 thread) — N sessions started side by side;
* ``hub``: one ``Hub`` with one ONNX Runtime backend (1 thread) scoring all streams, with
  cross-stream batching (``--max-batch``, ``--max-wait-ms``);
* ``triton``: the same hub with ``--backend triton``: windows are packed here and scored by
  a ``tritonserver`` on loopback (Python backend running onnxruntime, 1 thread, dynamic
  batching), started by this script from the repository ``hrlf-export --triton`` writes.

Each (mode, N) runs in a fresh process. Reported, over the measured seconds (after
``--warmup``): per-segment latency p50/p99 (from the moment a window is due — its end plus
the 0.1 s grace — until its result is delivered), CPU seconds per segment (this process;
plus the server's for triton), peak RSS, resident memory per stream (RSS after the run
minus RSS with the model loaded and no stream, divided by N), segments expected vs
delivered, windows dropped, and how late the pushes ran behind the wall clock
(``push_lag_ms``: when it grows, the box could not keep up). The machine's load average at
the start of each run is recorded: this 2-core VM is shared.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _stat(pid: int) -> list:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def family(pid: int) -> list[int]:
    """``pid`` and its descendants (the server and its Python-backend stub)."""
    kids: dict = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                kids.setdefault(int(_stat(int(d))[1]), []).append(int(d))
            except (OSError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def proc_cpu_s(pid: int) -> float:
    """user + system CPU seconds of a process and its descendants (from /proc)."""
    total = 0
    for p in family(pid):
        try:
            f = _stat(p)
            total += int(f[11]) + int(f[12])
        except (OSError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def proc_hwm_mb(pid: int) -> float:
    """Peak resident memory of a process and its descendants, summed (MB)."""
    total = 0.0
    for p in family(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                total += next((int(x.split()[1]) for x in f if x.startswith("VmHWM:")), 0) / 1024
        except OSError:
            pass
    return total


def recording(spec, seconds: float) -> dict:
    """The demo stream as per-modality (times, frames) arrays, shared by every stream."""
    from hrlf.runtime.sources import Status, open_source

    src = open_source("demo:0", spec, duration_s=seconds)
    per: dict = {m: ([], []) for m in spec.modalities}
    while True:
        r = src.read(0)
        for e in r.events:
            per[e.modality][0].append(e.t)
            per[e.modality][1].append(np.asarray(e.x, np.float32))
        if r.status == Status.EOS:
            break
    return {m: (np.asarray(t), np.stack(x)) for m, (t, x) in per.items()}


def second_schedule(rec: dict, phases: np.ndarray, s: int, mods: list):
    """Every push of wall second [s, s+1) of the run: (wall offsets, stream, modality, row),
    sorted by wall time. Stream i's clock starts at wall ``phases[i]``."""
    walls, sid, mid, row = [], [], [], []
    for j, m in enumerate(mods):
        times = rec[m][0]
        lo = np.searchsorted(times, s - phases, "left")
        hi = np.searchsorted(times, s + 1 - phases, "left")
        n = hi - lo
        streams = np.repeat(np.arange(len(phases)), n)
        idx = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)
        walls.append(phases[streams] + times[idx])
        sid.append(streams)
        mid.append(np.full(len(idx), j))
        row.append(idx)
    w = np.concatenate(walls)
    order = np.argsort(w, kind="stable")
    return w[order], np.concatenate(sid)[order], np.concatenate(mid)[order], \
        np.concatenate(row)[order]


def chunk_schedule(rec: dict, phases: np.ndarray, s: int, mods: list, chunk_s: float):
    """Every chunk released in wall second [s, s+1): (wall offsets, stream, modality, lo, hi)
    sorted by wall time. A chunk holds a modality's frames of stream time
    [c * chunk_s, (c + 1) * chunk_s) and is released when it ends (as a featurizer emits)."""
    per_s = int(round(1 / chunk_s))
    c_lo = np.ceil((s - phases) * per_s).astype(int) - 1
    c_hi = np.ceil((s + 1 - phases) * per_s).astype(int) - 1
    n = np.maximum(c_hi - c_lo, 0)
    sid = np.repeat(np.arange(len(phases)), n)
    c = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(c_lo, n)
    keep = c >= 0
    sid, c = sid[keep], c[keep]
    walls = phases[sid] + (c + 1) * chunk_s
    out = []
    for j, m in enumerate(mods):
        lo = np.searchsorted(rec[m][0], c * chunk_s - 1e-9, "left")
        hi = np.searchsorted(rec[m][0], (c + 1) * chunk_s - 1e-9, "left")
        ok = hi > lo
        out.append((walls[ok], sid[ok], np.full(ok.sum(), j), lo[ok], hi[ok]))
    w = np.concatenate([o[0] for o in out])
    order = np.argsort(w, kind="stable")
    return tuple(np.concatenate([o[i] for o in out])[order] for i in range(5))


def open_streams(mode: str, n: int, args, on_result):
    """(streams with push/clock, closer, backend name) for one mode."""
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
        sessions[0].base_rss = base
        return sessions, lambda: [s.close() for s in sessions], be.name
    opts = {"backend": args.backend, "threads": args.threads} if mode == "hub" else \
        {"backend": "triton", "triton_url": args.triton_url}
    hub = Hub.load(args.model_dir, config=HubConfig(
        max_batch=args.max_batch, max_wait_s=args.max_wait_ms / 1e3, stream=live), **opts)
    if hasattr(hub.backend, "compile_all"):  # compiled models are not per-stream memory
        hub.backend.compile_all()
    base = rss_mb()
    t_add = time.perf_counter()
    streams = [hub.add_stream(on_result=on_result) for _ in range(n)]
    hub.add_ms_per_stream = (time.perf_counter() - t_add) * 1e3 / n
    hub.start()
    hub.base_rss = base
    return streams, hub.close, hub.backend.name


def feed_second(args, streams, rec, phases, mods, t0, sec, lags) -> None:
    """Push wall second ``sec`` of every stream at its timestamps (``lags``: push lateness)."""
    frames = [rec[m][1] for m in mods]
    times = [rec[m][0] for m in mods]
    chunked = args.chunk_ms > 0 and args.mode != "session"
    if chunked:
        walls, sid, mid, lo, hi = chunk_schedule(rec, phases, sec, mods, args.chunk_ms / 1e3)
    else:
        walls, sid, mid, lo = second_schedule(rec, phases, sec, mods)
    for k in range(len(walls)):
        due = t0 + walls[k]
        now = time.monotonic()
        if due > now + 0.002:
            time.sleep(due - now)
        elif lags is not None and k % 16 == 0:
            lags.append(max(0.0, now - due) * 1e3)
        j, r = mid[k], lo[k]
        if chunked:
            streams[sid[k]].push_many(mods[j], times[j][r:hi[k]], frames[j][r:hi[k]])
        else:
            streams[sid[k]].push(mods[j], float(times[j][r]), frames[j][r])


def worker(args) -> dict:
    """One (mode, N) run in this process; returns its figures."""
    from hrlf.runtime.assets import demo_model_dir
    from hrlf.runtime.spec import ModelSpec

    args.model_dir = args.model_dir or demo_model_dir()
    spec = ModelSpec.load(args.model_dir)
    mods = list(spec.modalities)
    total_s = args.warmup + args.seconds
    rec = recording(spec, total_s + 3)
    rng = np.random.default_rng(args.n)
    phases = np.sort(rng.uniform(0, 1, args.n))
    lat, measuring = [], [False]

    def on_result(r):
        if measuring[0] and r.status == "ok":
            lat.append(r.latency_ms["total"])

    rss0 = rss_mb()
    streams, close, backend = open_streams(args.mode, args.n, args, on_result)
    t0 = time.monotonic()
    for i, s in enumerate(streams):  # each stream's clock starts at its phase
        s._t0_wall = t0 + phases[i]
    lags = []
    for sec in range(int(total_s)):
        if sec == args.warmup:
            measuring[0] = True
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            srv0 = proc_cpu_s(args.server_pid) if args.server_pid else 0.0
            tm0 = time.monotonic()
        feed_second(args, streams, rec, phases, mods, t0, sec, lags if measuring[0] else None)
    measured_s = time.monotonic() - tm0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    srv_cpu = (proc_cpu_s(args.server_pid) - srv0) if args.server_pid else 0.0
    n_lat = len(lat)
    rss_run = rss_mb()
    t_close = time.perf_counter()
    close()
    close_s = time.perf_counter() - t_close
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    a = np.asarray(lat[:n_lat]) if n_lat else np.zeros(1)
    base = getattr(getattr(streams[0], "hub", streams[0]), "base_rss", rss0)
    out = {"mode": args.mode, "n": args.n, "backend": backend, "measured_s": round(measured_s, 2),
           "segments": n_lat, "segments_expected": int(round(args.n * measured_s / 1.0)),
           "latency_ms": {"p50": round(float(np.percentile(a, 50)), 2),
                          "p99": round(float(np.percentile(a, 99)), 2),
                          "max": round(float(a.max()), 2)},
           "cpu_s_per_segment_ms": round(1e3 * (cpu + srv_cpu) / max(1, n_lat), 4),
           "client_cpu_cores": round(cpu / measured_s, 3),
           "server_cpu_cores": round(srv_cpu / measured_s, 3),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "rss_model_loaded_mb": round(base, 1),
           "rss_per_stream_kb": round((rss_run - base) * 1024 / args.n, 1),
           "push_lag_ms": {"p50": round(float(np.percentile(lags, 50)), 2) if lags else 0.0,
                           "p99": round(float(np.percentile(lags, 99)), 2) if lags else 0.0},
           "close_s": round(close_s, 2)}
    hub = getattr(streams[0], "hub", None)
    if hub is not None:
        out["add_stream_ms"] = round(hub.add_ms_per_stream, 3)
        out["mean_batch"] = hub.stats()["mean_batch"]
    if args.server_pid:
        out["server_peak_rss_mb"] = round(proc_hwm_mb(args.server_pid), 1)
    return out


def run_one(mode: str, n: int, args, server) -> dict:
    """One (mode, N) run in a fresh worker process."""
    cmd = [sys.executable, __file__, "--worker", "--mode", mode, "--n", str(n),
           "--seconds", str(args.seconds), "--warmup", str(args.warmup),
           "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms),
           "--threads", str(args.threads), "--backend", args.backend,
           "--chunk-ms", str(args.chunk_ms)]
    if args.model_dir:
        cmd += ["--model-dir", args.model_dir]
    if mode == "triton":
        cmd += ["--triton-url", server.grpc_url, "--server-pid", str(server.proc.pid)]
    load = os.getloadavg()[0]
    out = subprocess.run(cmd, capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    if out.returncode != 0:
        run = {"mode": mode, "n": n, "error": out.stderr.strip().splitlines()[-1:]}
    else:
        run = json.loads(out.stdout.strip().splitlines()[-1])
    run["loadavg_1min_at_start"] = round(load, 2)
    return run


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=os.path.join(HERE, "results", "streams.json"))
    ap.add_argument("--n", type=int, nargs="+", default=[1, 10, 100, 1000])
    ap.add_argument("--modes", nargs="+", default=["session", "hub", "triton"],
                    choices=["session", "hub", "triton"])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--max-wait-ms", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=1, help="inference threads (hub, triton)")
    ap.add_argument("--backend", default="ort", choices=["ort", "openvino"],
                    help="in-process backend of the session and hub modes")
    ap.add_argument("--chunk-ms", type=float, default=250.0,
                    help="hub/triton: frames arrive in chunks of this many ms per modality, "
                         "pushed with push_many (0: frame by frame); session mode pushes "
                         "frame by frame")
    ap.add_argument("--max-session-n", type=int, default=100,
                    help="skip the session mode above this N (one thread per stream: at "
                         "N=1000 it drove this 2-core VM's load average past 100)")
    ap.add_argument("--model-dir", default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="hub", help=argparse.SUPPRESS)
    ap.add_argument("--triton-url", default="", help=argparse.SUPPRESS)
    ap.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.n = args.n[0]
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
                    runs.append({"mode": mode, "n": n, "skipped": (
                        f"N > --max-session-n {args.max_session_n}: one worker thread per "
                        "stream polling every 5 ms; at N=1000 the load average of this "
                        "2-core VM passed 100 within a minute and the run was stopped")})
                    continue
                run = run_one(mode, n, args, server)
                print(json.dumps(run), flush=True)
                runs.append(run)
    finally:
        if server is not None:
            server.stop()
    result = {"command": "python bench/streams.py " + " ".join(sys.argv[1:]),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()},
              "settings": {"seconds": args.seconds, "warmup": args.warmup,
                           "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms,
                           "threads": args.threads, "backend": args.backend,
                           "chunk_ms": args.chunk_ms, "grace_s": 0.1, "hop_s": 1.0},
              "runs": runs}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
