"""A call-center pipeline: audio features + transcript text, no video, one score per segment.

Reads a call as JSON lines (``{"t": .., "modality": "audio"|"text", "x": [...]}``), as an
ASR + audio-feature stage would emit them, iterates the session's results, and ends with
a per-call summary an agent dashboard could show. Without ``--calls`` it makes two demo
calls from the built-in synthetic stream.

    python examples/call_center.py [--model-dir DIR] [--calls a.jsonl b.jsonl]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading

import numpy as np

from hrlf.runtime.session import Session, SessionConfig
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


def score_call(model_dir, path: str) -> dict:
    session = Session.load(model_dir, config=SessionConfig(condition="la")).start()
    src = open_source(f"replay:{path}", session.spec)

    def feed():
        while True:
            r = src.read(0.05)
            for e in r.events:
                session.push(e.modality, e.t, e.x)
            if r.status == Status.EOS:
                break
        session.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    scores = []
    for r in session.results():  # ends when the session is closed
        scores.append(r.score)
        print(f"[call {os.path.basename(path)}] {r.t_start:5.1f}s {r.label:<8} {r.score:+.2f} "
              f"({'+'.join(r.modalities)})", flush=True)
    feeder.join()
    st = session.stats()
    return {"call": os.path.basename(path), "segments": len(scores),
            "mean_score": round(float(np.mean(scores)), 3) if scores else None,
            "negative_share": round(float(np.mean(np.array(scores) < -0.5)), 3) if scores else None,
            "frames_used": st["used"], "frames_dropped": st["dropped"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", default=None, help="MODEL_DIR (default: built-in demo model)")
    ap.add_argument("--calls", nargs="*", help="JSON-lines calls (default: two demo calls)")
    args = ap.parse_args()
    calls = args.calls
    if not calls:
        spec = Session.load(args.model_dir).spec
        tmp = tempfile.mkdtemp(prefix="hrlf-calls-")
        calls = [os.path.join(tmp, f"call{i}.jsonl") for i in (1, 2)]
        for i, p in enumerate(calls, 1):
            make_demo_call(p, spec, seed=i)
    for p in calls:
        print(json.dumps({"summary": score_call(args.model_dir, p)}), flush=True)


if __name__ == "__main__":
    main()
