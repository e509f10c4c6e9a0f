"""A call-center box: many concurrent calls (audio features + transcript text, no video)
scored by one model in one process.

Each call is read as JSON lines (``{"t": .., "modality": "audio"|"text", "x": [...]}``), as
an ASR + audio-feature stage would emit them, by its own thread into its own stream of a
``Hub``. The hub's worker scores the windows of all calls together (cross-stream
batching), each call keeps its own buffers, results and accounting, and calls come and go
while the others run. At the end: a summary per call an agent dashboard could show, and the
hub's batching figures. Without ``--calls`` it makes ``--demo-calls`` synthetic calls.

    python examples/call_center.py [--model-dir DIR] [--calls a.jsonl b.jsonl ...]
        [--demo-calls 6]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading

import numpy as np

from hrlf.runtime.hub import Hub, HubConfig
from hrlf.runtime.session import SessionConfig
from hrlf.runtime.sources import Status, open_source


def make_demo_call(path: str, spec, seed: int) -> None:
    src = open_source(f"demo:{seed}", spec, duration_s=20.0)
    with open(path, "w") as f:
        while True:
            r = src.read(0)
            for e in r.events:
                if e.modality != "vision":  # a phone call has no video
                    f.write(json.dumps({"t": round(e.t, 4), "modality": e.modality,
                                        "x": np.round(e.x, 5).tolist()}) + "\n")
            if r.status == Status.EOS:
                return


def run_call(hub: Hub, path: str, summaries: list, lock: threading.Lock) -> None:
    """One call: its own stream in the hub, fed by this thread until the call ends."""
    name = os.path.basename(path)
    scores: list = []

    def on_result(r):  # called on a delivery thread of the hub, this call's results in order
        scores.append(r.score)
        print(f"[call {name}] {r.t_start:5.1f}s {r.label:<8} {r.score:+.2f} "
              f"({'+'.join(r.modalities)}) batch {r.batch}", flush=True)

    call = hub.add_stream(name, on_result=on_result)
    src = open_source(f"replay:{path}", hub.spec)
    while True:
        r = src.read(0.05)
        for e in r.events:
            call.push(e.modality, e.t, e.x)
        if r.status == Status.EOS:
            break
    src.close()
    call.close()  # scores the last windows; the call leaves the hub
    st = call.stats()
    with lock:
        summaries.append({
            "call": name, "segments": len(scores),
            "mean_score": round(float(np.mean(scores)), 3) if scores else None,
            "negative_share": round(float(np.mean(np.array(scores) < -0.5)), 3) if scores else None,
            "frames_used": st["used"], "frames_dropped": st["dropped"],
            "accounting_ok": st["accounting_ok"]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", default="demo", help="MODEL_DIR, or demo (the built-in model)")
    ap.add_argument("--calls", nargs="*", help="JSON-lines calls (default: demo calls)")
    ap.add_argument("--demo-calls", type=int, default=6, help="how many demo calls to make")
    args = ap.parse_args()
    # files are read as fast as possible (not live): a window is due once data past it arrived
    hub = Hub.load(args.model_dir, config=HubConfig(
        max_batch=64, max_wait_s=0.02, stream=SessionConfig(condition="la"))).start()
    calls = args.calls
    if not calls:
        tmp = tempfile.mkdtemp(prefix="hrlf-calls-")
        calls = [os.path.join(tmp, f"call{i}.jsonl") for i in range(1, args.demo_calls + 1)]
        for i, p in enumerate(calls, 1):
            make_demo_call(p, hub.spec, seed=i)
    summaries: list = []
    lock = threading.Lock()
    threads = [threading.Thread(target=run_call, args=(hub, p, summaries, lock)) for p in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    st = hub.close().stats  # every call's counts, summed (removed streams included)
    order = {os.path.basename(p): i for i, p in enumerate(calls)}
    for s in sorted(summaries, key=lambda s: order[s["call"]]):
        print(json.dumps({"summary": s}), flush=True)
    print(json.dumps({"hub": {k: st[k] for k in ("streams_added", "segments", "calls",
                                                 "mean_batch", "accounting_ok", "backend")}}),
          flush=True)


if __name__ == "__main__":
    main()
