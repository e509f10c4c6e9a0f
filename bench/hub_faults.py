"""Hub memory and cost figures behind issue 21's contracts (re-runnable; JSON out).

* churn: ``--rounds`` rounds of adding ``--per-round`` live streams to one started hub,
  pushing a few seconds of frames into each, and removing them; resident memory (RSS)
  after every round. Memory must stay flat: removed streams are folded into the hub's
  totals, only the last few keep their stats.
* stats: ``hub.stats()`` with ``--live`` streams open (median of ``--repeats`` calls).
* footprint: ``--footprint`` live streams with callbacks (the 2,000-stream setting of
  ``bench/streams.py``), each fed a second of frames: objects Python's cyclic collector
  tracks per stream, and the time of one full collector pass (``gc.collect()``, median of
  ``--repeats``; every thread waits for it).
* dead server: ``Hub.close()`` time with ``--dead-streams`` streams whose backend fails
  every call after a ``--dead-timeout`` second stall (a stand-in for a dead Triton server
  whose client times out): bounded in total, not per stream; with ``--triton``, also
  against a real tritonserver on loopback that was killed, and one frozen (SIGSTOP).

    HRLF_TRITON_ENV=... python bench/hub_faults.py --triton --json bench/results/hub_faults.json
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import time

import numpy as np

from streams_proc import rss_mb  # bench/streams_proc.py (same folder)


class FakeBackend:
    """Scores every row 0 (the figures are about the hub, not the model)."""

    name, max_batch = "fake", 64

    def __init__(self, spec, stall_s: float = 0.0):
        self.spec, self.stall_s = spec, stall_s

    def run(self, feeds):
        if self.stall_s:
            from hrlf.errors import BackendUnavailable

            time.sleep(self.stall_s)
            raise BackendUnavailable("triton: inference failed (DEADLINE_EXCEEDED); stand-in")
        return np.zeros(len(feeds["modality_mask"]), np.float32)

    def close(self):
        pass


def push_seconds(stream, spec, seconds: float) -> None:
    for m in spec.modalities:
        rate = spec.features[m].frame_rate_hz
        n = int(seconds * rate)
        t = (np.arange(n) + 0.5) / rate
        stream.push_many(m, t, np.zeros((n, spec.dim(m)), np.float32))


def churn(spec, rounds: int, per_round: int) -> dict:
    from hrlf.runtime.hub import Hub, HubConfig
    from hrlf.runtime.session import SessionConfig

    hub = Hub(FakeBackend(spec), spec, HubConfig(stream=SessionConfig())).start()
    rss = [round(rss_mb(), 1)]
    for r in range(rounds):
        streams = [hub.add_stream(f"r{r}-{i}", on_result=lambda res: None)
                   for i in range(per_round)]
        for s in streams:
            push_seconds(s, spec, 3.0)
        for s in streams:
            hub.remove(s)
        del streams
        gc.collect()
        rss.append(round(rss_mb(), 1))
    st = hub.close().stats
    return {"rounds": rounds, "per_round": per_round, "streams": rounds * per_round,
            "rss_mb": rss, "rss_growth_mb": round(rss[-1] - rss[1], 1),
            "segments": st["segments"], "accounting_ok": st["accounting_ok"],
            "removed_stats_kept": len(hub.removed_stats)}


def stats_cost(spec, live: int, repeats: int) -> dict:
    from hrlf.runtime.hub import Hub, HubConfig
    from hrlf.runtime.session import SessionConfig

    hub = Hub(FakeBackend(spec), spec, HubConfig(stream=SessionConfig(live=True)))
    for i in range(live):
        s = hub.add_stream(f"s{i}")
        push_seconds(s, spec, 1.0)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        hub.stats()
        times.append((time.perf_counter() - t0) * 1e3)
    t0 = time.perf_counter()
    hub.close(timeout_s=60)
    return {"live_streams": live, "stats_ms_median": round(statistics.median(times), 2),
            "stats_ms_all": [round(t, 2) for t in times],
            "close_s": round(time.perf_counter() - t0, 2)}


def footprint(spec, streams: int, repeats: int) -> dict:
    from hrlf.runtime.hub import Hub, HubConfig
    from hrlf.runtime.session import SessionConfig

    hub = Hub(FakeBackend(spec), spec, HubConfig(stream=SessionConfig(live=True)))
    gc.collect()
    before = len(gc.get_objects())
    for i in range(streams):
        push_seconds(hub.add_stream(f"s{i}", on_result=lambda res: None), spec, 1.0)
    gc.collect()
    tracked = len(gc.get_objects()) - before
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - t0) * 1e3)
    hub.close(timeout_s=60)
    return {"streams": streams, "gc_tracked_per_stream": round(tracked / streams, 1),
            "gc_full_pass_ms_median": round(statistics.median(times), 1),
            "gc_full_pass_ms_all": [round(t, 1) for t in times]}


def dead_close(spec, streams: int, stall_s: float) -> dict:
    from hrlf.runtime.hub import Hub, HubConfig
    from hrlf.runtime.session import SessionConfig

    hub = Hub(FakeBackend(spec, stall_s), spec, HubConfig(stream=SessionConfig()))
    for i in range(streams):
        push_seconds(hub.add_stream(f"s{i}"), spec, 3.0)
    t0 = time.perf_counter()
    closed = hub.close(timeout_s=60)
    return {"streams": streams, "backend_stall_s": stall_s,
            "close_s": round(time.perf_counter() - t0, 2), "timed_out": closed.timed_out,
            "backend_error": closed.stats["segments_dropped"].get("backend_error", 0),
            "backend_calls_tried": hub._guard.failures}


def triton_dead_close(streams: int, how: str) -> dict:
    """Hub.close() of ``streams`` streams on a real tritonserver (the demo model's
    repository, loopback) that was killed (``kill``) or frozen (``stop``) first."""
    import shutil
    import signal
    import tempfile

    from hrlf.export import triton as triton_repo
    from hrlf.export.triton_server import TritonServer
    from hrlf.runtime.assets import demo_model_dir
    from hrlf.runtime.hub import Hub, HubConfig
    from hrlf.runtime.session import SessionConfig
    from hrlf.runtime.spec import ModelSpec

    md = demo_model_dir()
    spec = ModelSpec.load(md)
    root = tempfile.mkdtemp(prefix="hrlf-bench-")
    repo = os.path.join(root, "repo")
    triton_repo.commit(triton_repo.stage_repository(repo, spec, os.path.join(md, "model.onnx"),
                                                    None, 8))
    srv = TritonServer(repo, (triton_repo.PYTHON_MODEL,)).start()
    try:
        hub = Hub.load(md, backend="triton", triton_url=srv.grpc_url,
                       config=HubConfig(max_batch=8, stream=SessionConfig()))
        for i in range(streams):
            push_seconds(hub.add_stream(f"s{i}"), spec, 3.0)
        os.killpg(srv.proc.pid, signal.SIGKILL if how == "kill" else signal.SIGSTOP)
        t0 = time.perf_counter()
        closed = hub.close(timeout_s=60)
        out = {"streams": streams, "server": how, "close_s": round(time.perf_counter() - t0, 2),
               "timed_out": closed.timed_out,
               "backend_error": closed.stats["segments_dropped"].get("backend_error", 0),
               "backend_timeout_s": 5.0}
    finally:
        if how == "stop" and srv.proc.poll() is None:
            os.killpg(srv.proc.pid, signal.SIGCONT)
        srv.stop(signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--per-round", type=int, default=2000)
    ap.add_argument("--live", type=int, default=8000)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--footprint", type=int, default=2000, metavar="N")
    ap.add_argument("--dead-streams", type=int, default=10)
    ap.add_argument("--dead-timeout", type=float, default=5.0)
    ap.add_argument("--triton", action="store_true",
                    help="also Hub.close() against a killed and a frozen tritonserver "
                         "(needs $HRLF_TRITON_ENV or .triton-env)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    from hrlf.runtime.assets import demo_model_dir
    from hrlf.runtime.spec import ModelSpec

    spec = ModelSpec.load(demo_model_dir())
    out = {"loadavg_start": open("/proc/loadavg").read().split()[:3],
           "cpus": os.cpu_count(),
           "churn": churn(spec, args.rounds, args.per_round),
           "stats": stats_cost(spec, args.live, args.repeats),
           "footprint": footprint(spec, args.footprint, args.repeats),
           "dead_server_close": dead_close(spec, args.dead_streams, args.dead_timeout)}
    if args.triton:
        out["triton_dead_close"] = [triton_dead_close(args.dead_streams, how)
                                    for how in ("kill", "stop")]
    out["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
