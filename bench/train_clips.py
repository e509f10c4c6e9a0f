"""Training on a user-sized clip set: cold and warm ``hrlf-train`` time, and the whole path.

    python bench/train_clips.py --json bench/results/train_clips.json [--clips 26] [--seed 7]

Builds a fresh real-media clip set (:mod:`hrlf.runtime.capture.realmedia`: face photographs
over photo backgrounds, espeak-ng speech, labels +2/-2, 15 train / 4 valid / 7 test for
26 clips), then runs the default ``hrlf-train --data clips.csv`` twice as a user would (a
subprocess each, no options): cold (empty feature cache) and warm (cache filled by the
first run). It records the wall time of each and the run log's breakdown (featurizing,
teacher, student, probe), the student's valid metrics beside the linear-probe floor and
the warning, if any. Then ``hrlf-export --fp16`` and ``hrlf-run --precision fp16 --stream
file:CLIP`` on every held-out (test) clip: the clip-mean score's sign against the label.
The machine's load average is recorded before and after: on a shared machine the wall
times move with it; ``cpu_s`` (user + system seconds of hrlf-train and its featurizing
workers) does much less.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

BIN = os.path.dirname(sys.executable)


def _tool(name: str) -> str:
    return os.path.join(BIN, name) if os.path.exists(os.path.join(BIN, name)) else name


def _children_cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(cmd: list[str]) -> tuple[float, str, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    sec = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return sec, p.stdout, p.stderr


def train(csv_path: str, out: str) -> dict:
    cpu0 = _children_cpu_s()
    sec, stdout, stderr = _run([_tool("hrlf-train"), "--data", csv_path, "--out", out, "--quiet"])
    cpu_s = _children_cpu_s() - cpu0  # the process and its featurizing workers
    with open(os.path.join(out, "train_log.json")) as f:
        log = json.load(f)
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    floor = metrics["probe"]["floor"]
    return {"wall_s": round(sec, 2), "cpu_s": round(cpu_s, 2), "time": log["time"],
            "steps": {r: log[r]["steps"] for r in ("teacher", "student") if r in log},
            "regime": {k: v["value"] for k, v in log["regime"].items()},
            "student_valid": {**metrics["student"]["lav"], "clip": metrics["student"]["clip"]},
            "probe_floor": {"probe": floor, **metrics["probe"][floor]},
            "warning": metrics["warning"],
            "stderr_lines": [ln for ln in stderr.splitlines() if ln.startswith("hrlf-train ")]}


def stream_test_clips(csv_path: str, model: str) -> dict:
    base = os.path.dirname(os.path.abspath(csv_path))
    with open(csv_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("split") == "test"]
    clips = []
    for r in rows:
        _, out, _ = _run([_tool("hrlf-run"), model, "--precision", "fp16", "--stream",
                          f"file:{os.path.join(base, r['media'])}", "--stats-every", "0"])
        segs = [json.loads(ln) for ln in out.splitlines() if ln.startswith('{"segment"')]
        mean = float(np.mean([s["score"] for s in segs]))
        ok = bool((mean > 0) == (float(r["label"]) > 0))
        clips.append({"media": r["media"], "label": float(r["label"]), "segments": len(segs),
                      "clip_mean": round(mean, 3), "sign_ok": ok,
                      "backend": segs[0]["backend"] if segs else None})
    return {"clips": clips, "sign_right": sum(c["sign_ok"] for c in clips), "of": len(clips)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--clips", type=int, default=26)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", default=None, help="keep the clip set and runs here")
    a = ap.parse_args()
    from hrlf.runtime.capture import realmedia

    work = a.workdir or tempfile.mkdtemp(prefix="hrlf-bench-clips-")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    t0 = time.perf_counter()
    csv_path = realmedia.build_clip_set(os.path.join(work, "clips"), a.clips, a.seed)
    build_s = time.perf_counter() - t0
    load0 = os.getloadavg()
    cold = train(csv_path, os.path.join(work, "run_cold"))
    warm = train(csv_path, os.path.join(work, "run_warm"))
    load1 = os.getloadavg()
    _run([_tool("hrlf-export"), os.path.join(work, "run_warm"), "--out",
          os.path.join(work, "model"), "--fp16"])
    e2e = stream_test_clips(csv_path, os.path.join(work, "model"))
    res = {"command": " ".join(["python"] + sys.argv), "clips": a.clips, "seed": a.seed,
           "build_clip_set_s": round(build_s, 2), "cold": cold, "warm": warm,
           "hrlf_run_fp16_test_clips": e2e,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "loadavg_before": [round(x, 2) for x in load0],
                       "loadavg_after_training": [round(x, 2) for x in load1],
                       "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}}
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps({"cold_s": cold["wall_s"], "warm_s": warm["wall_s"],
                      "cold_cpu_s": cold["cpu_s"], "warm_cpu_s": warm["cpu_s"],
                      "sign_right": f"{e2e['sign_right']}/{e2e['of']}",
                      "warning": warm["warning"], "loadavg": res["machine"]["loadavg_before"]}))
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
