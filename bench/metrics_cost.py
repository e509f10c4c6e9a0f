"""What serving metrics costs a hub of many real-time streams: CPU with and without
``HubConfig(metrics_port=...)``, medians of several runs.

    python bench/metrics_cost.py --json bench/results/metrics_cost.json [--n 1000]
        [--runs 5] [--seconds 15] [--warmup 3] [--scrape-s 5] [--backend ort]

Each run is one ``hub`` run of ``bench/streams.py`` (its functions, unchanged: N demo streams
fed at real-time pace in 250 ms chunks, one backend thread) in a fresh process, with metrics
off or on; runs alternate off/on so that a change of the machine's load hits both alike.
With metrics on, the hub serves /metrics on a loopback port and a thread of the same
process scrapes it every ``--scrape-s`` seconds (Prometheus' default is 15 s or 60 s, so 5 s
overstates the scrape share), and the scrape's own CPU counts in the figure.

Reported per setting: medians of the process's CPU cores over the measured seconds, CPU
ms per scored window, latency p50/p99 and segments; then ``cpu_overhead_pct`` = (median on
/ median off - 1) x 100, and the spread (min..max) of each. The load averages at each run's
start are recorded: on a shared machine the run-to-run spread can exceed the effect, so
``micro`` also times the added work itself in one process (``Observer.seen`` per result,
``Observer.call`` per backend call, one scrape of N streams) and ``cost_from_micro``
expresses it as a share of the hub's CPU with metrics off (one result per stream per
second at the demo's 1 s hop). ``--micro-only`` skips the stream runs.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = ("client_cpu_cores", "cpu_ms_per_segment", "segments")


def _streams_module():
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import streams  # bench/streams.py: its worker and stream setup, as they are

    return streams


class Scraper:
    """GETs ``url`` every ``every_s`` on a thread; counts scrapes and their wall time."""

    def __init__(self, url: str, every_s: float):
        self.url, self.every_s = url, every_s
        self.n, self.wall_s, self.bytes = 0, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            t = time.perf_counter()
            with urllib.request.urlopen(self.url, timeout=30) as r:
                self.bytes = len(r.read())
            self.wall_s += time.perf_counter() - t
            self.n += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


def worker(args) -> dict:
    """One hub run in this process (bench/streams.py's worker), metrics on or off."""
    S = _streams_module()
    scraper = []
    if args.metrics:
        import dataclasses

        import hrlf.runtime.hub as H

        base = H.HubConfig

        def with_metrics(*a, **kw):  # what open_streams builds, plus a metrics port
            return dataclasses.replace(base(*a, **kw), metrics_port=0)

        H.HubConfig = with_metrics
        opened = S.open_streams

        def open_streams(mode, n, a, on_result):
            streams, close, *rest = opened(mode, n, a, on_result)
            scraper.append(Scraper(streams[0].hub.observe.url + "metrics", args.scrape_s))

            def stop():
                scraper[0].stop()
                return close()
            return (streams, stop, *rest)

        S.open_streams = open_streams
    args.mode, args.model_dir, args.server_pid, args.triton_url = "hub", None, 0, ""
    out = S.worker(args)
    out["metrics"] = bool(args.metrics)
    if scraper:
        sc = scraper[0]
        out["scrapes"] = sc.n
        out["scrape_ms_mean"] = round(1e3 * sc.wall_s / max(1, sc.n), 2)
        out["scrape_bytes"] = sc.bytes
    return out


def micro(n: int, repeats: int = 200_000) -> dict:
    """The added work itself, timed in one process (immune to the run-to-run noise of a
    shared machine): ``Observer.seen`` per delivered result, ``Observer.call`` per backend
    call, and one scrape of a hub with ``n`` streams (each with results observed)."""
    from hrlf.runtime.hub import Hub, HubConfig
    from hrlf.runtime.observe.observer import Observer
    from hrlf.runtime.session_config import SessionConfig
    from hrlf.runtime.sinks import Result

    obs = Observer()

    class Stream:  # what seen() reads of a session
        name = "s"

    sessions = [Stream() for _ in range(1000)]
    r = Result(segment=1, t_start=0.0, t_end=2.0, score=0.5, label="positive",
               modalities=["text", "audio"], frames={}, latency_ms={"wait": 1.0, "pack": 0.1,
               "infer": 0.5, "total": 1.6}, backend="b", absent={"vision": "no_face"})
    batch = [r]
    t = time.perf_counter()
    for i in range(repeats):
        obs.seen(sessions[i % 1000], batch)
    seen_us = (time.perf_counter() - t) * 1e6 / repeats
    t = time.perf_counter()
    for i in range(repeats):
        obs.call(8)
    call_us = (time.perf_counter() - t) * 1e6 / repeats
    hub = Hub.load("demo", config=HubConfig(metrics_port=0, stream=SessionConfig(live=False)))
    hub.start()
    streams = [hub.add_stream(f"s{i}") for i in range(n)]
    rng = np.random.default_rng(0)
    for m, hz in (("text", 4), ("audio", 20), ("vision", 10)):
        ts = np.arange(0, 5, 1 / hz)
        xs = rng.standard_normal((len(ts), hub.spec.dim(m))).astype(np.float32)
        for st in streams:
            st.push_many(m, ts, xs)
    hub.advance()
    from prometheus_client import generate_latest

    times = []
    for _ in range(15):
        t = time.perf_counter()
        generate_latest(hub.observe.registry)
        times.append(time.perf_counter() - t)
    hub.close()
    return {"seen_us_per_result": round(seen_us, 3), "call_us_per_call": round(call_us, 3),
            "scrape_ms": round(float(np.median(times)) * 1e3, 2), "n": n,
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def shares(mic: dict, summary: dict, scrape_s: float) -> dict:
    """The micro figures as a share of the hub's CPU at N streams (metrics off)."""
    off = summary.get("off")
    if not off:
        return {}
    cores = off["client_cpu_cores"]["median"]
    n = mic["n"]  # one result per stream per second (1 s hop); calls from the mean batch
    calls = n / max(1.0, off.get("mean_batch", 1.0))
    hot = (mic["seen_us_per_result"] * n + mic["call_us_per_call"] * calls) / 1e6
    return {"hot_path_pct": round(100 * hot / cores, 2),
            "scrape_pct_every_15s": round(100 * mic["scrape_ms"] / 15e3 / cores, 2),
            f"scrape_pct_every_{scrape_s:g}s": round(100 * mic["scrape_ms"] / 1e3 / scrape_s
                                                   / cores, 2)}


def run_one(metrics: bool, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--n", str(args.n), "--seconds",
           str(args.seconds), "--warmup", str(args.warmup), "--scrape-s", str(args.scrape_s),
           *_streams_module().run_flags(args)]
    cmd += ["--metrics"] if metrics else []
    load = os.getloadavg()
    p = subprocess.run(cmd, capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    if p.returncode != 0:
        return {"metrics": metrics, "error": p.stderr.strip().splitlines()[-3:]}
    run = json.loads(p.stdout.strip().splitlines()[-1])
    run["loadavg_at_start"] = [round(x, 2) for x in load]
    return run


def summarize(runs: list[dict]) -> dict:
    out = {}
    for on in (False, True):
        rs = [r for r in runs if r.get("metrics") == on and "error" not in r]
        if not rs:
            continue
        d = {k: {"median": float(np.median([r[k] for r in rs])),
                 "min": min(r[k] for r in rs), "max": max(r[k] for r in rs)} for k in KEYS}
        d["latency_p50_ms_median"] = float(np.median([r["latency_ms"]["p50"] for r in rs]))
        d["latency_p99_ms_median"] = float(np.median([r["latency_ms"]["p99"] for r in rs]))
        d["mean_batch"] = float(np.median([r.get("mean_batch", 1.0) for r in rs]))
        d["runs"] = len(rs)
        out["on" if on else "off"] = d
    if "on" in out and "off" in out:
        for k in ("client_cpu_cores", "cpu_ms_per_segment"):
            out[f"{k}_overhead_pct"] = round(
                100 * (out["on"][k]["median"] / out["off"][k]["median"] - 1), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=os.path.join(HERE, "results", "metrics_cost.json"))
    ap.add_argument("--n", type=int, default=1000, help="streams")
    ap.add_argument("--runs", type=int, default=5, help="runs per setting (off, on)")
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--scrape-s", type=float, default=5.0)
    _streams_module().add_run_args(ap)  # the hub, backend and feeding: as bench/streams.py
    ap.add_argument("--micro-only", action="store_true",
                    help="only the in-process timings (no stream runs)")
    ap.add_argument("--metrics", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args)), flush=True)
        return
    runs = []
    for i in range(0 if args.micro_only else args.runs):
        for metrics in ((False, True) if i % 2 == 0 else (True, False)):
            run = run_one(metrics, args)
            print(json.dumps(run), flush=True)
            runs.append(run)
    result = {"command": "python bench/metrics_cost.py " + " ".join(sys.argv[1:]),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()},
              "settings": {k: getattr(args, k) for k in ("n", "runs", "seconds", "warmup",
                                                          "scrape_s", "backend", "max_batch",
                                                          "max_wait_ms", "chunk_ms")},
              "summary": summarize(runs), "runs": runs}
    result["micro"] = micro(args.n)
    result["summary"]["cost_from_micro"] = shares(result["micro"], result["summary"],
                                                  args.scrape_s)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({"summary": result["summary"], "micro": result["micro"]}, indent=1))


if __name__ == "__main__":
    main()
