"""hrlf-train under a shared CPU: wall time idle vs next to a CPU-bound process.

    python bench/train_load.py --data ../shared/data/mosi/mosi_utterance.npz \\
        --json bench/results/train_load.json

Runs the full ``hrlf-train --data DATA`` (every stage, its default epochs and early
stopping) with the automatic thread choice, alternately with no extra load ("idle") and
next to one extra CPU-bound process (``while True: pass``, started a second before), for
``--repeats`` pairs, back to back and interleaved so both see the same background. Then
the cause: ``--legacy-epochs`` epochs with one thread per CPU (what torch chose before,
``--threads <cpus>``) idle and loaded, against the automatic choice loaded.

"Idle" means only that this script adds no load: on a shared machine other work runs too,
so each run records the load average and the CPUs the thread choice saw busy with other
processes. The JSON holds every run (wall time, thread lines printed by hrlf-train) and
the medians; ``ratio_loaded_over_idle`` is what the README quotes.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

THREAD_LINE = re.compile(r"^hrlf-train INFO threads: (\d+) intra-op[^(]*\(([^)]*)\)", re.M)
BUSY = re.compile(r"([\d.]+) busy")
CHANGE_LINE = re.compile(r"^hrlf-train INFO threads: (\d+) -> (\d+)", re.M)


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _train(data: str, root: str, extra: list[str], loaded: bool) -> dict:
    """One hrlf-train run: wall and CPU seconds, its CPU share, the thread lines it printed,
    and the CPUs that other processes (not hrlf-train, not the burner) kept busy meanwhile."""
    from hrlf.train.threads import CpuSampler

    out = tempfile.mkdtemp(dir=root)
    os.rmdir(out)
    burner = None
    if loaded:
        burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(1.0)  # let it take its CPU before hrlf-train chooses
    load0 = os.getloadavg()
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                        "HRLF_THREADS")}
    cpu0, sampler = _children_cpu_s(), CpuSampler()
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "hrlf.train.cli", "--data", data, "--out",
                            out, "--quiet", *extra], capture_output=True, text=True, env=env)
    finally:
        wall = time.perf_counter() - t0
        busy_all = sampler.sample()  # every process but this script, over the run
        train_cpu = _children_cpu_s() - cpu0
        if burner is not None:
            burner.kill()
            burner.wait()
    burner_cpu = _children_cpu_s() - cpu0 - train_cpu  # its whole life: ~1 s more than the run
    shutil.rmtree(out, ignore_errors=True)
    if p.returncode != 0:
        raise SystemExit(f"hrlf-train failed ({p.returncode}):\n{p.stderr[-2000:]}")
    first = THREAD_LINE.search(p.stderr)
    busy = BUSY.search(first.group(2)) if first else None
    return {"loaded": loaded, "args": extra, "wall_s": round(wall, 2),
            "train_seconds": json.loads(p.stdout.strip().splitlines()[-1])["seconds"],
            "train_cpu_s": round(train_cpu, 2), "train_cpu_share": round(train_cpu / wall, 3),
            "burner_cpu_share": round(burner_cpu / (wall + 1.0), 3) if loaded else None,
            "background_busy_cpus": None if busy_all is None else round(
                max(0.0, busy_all - train_cpu / wall - (burner_cpu / (wall + 1.0))), 2),
            "threads_start": int(first.group(1)) if first else None,
            "others_busy_cpus_at_start": float(busy.group(1)) if busy else None,
            "thread_changes": [[int(a), int(b)] for a, b in CHANGE_LINE.findall(p.stderr)],
            "thread_lines": [ln for ln in p.stderr.splitlines()
                             if ln.startswith("hrlf-train INFO threads:")],
            "loadavg_1min_at_start": round(load0[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="the MOSI npz (or any hrlf-train --data)")
    ap.add_argument("--json", required=True, help="output JSON file")
    ap.add_argument("--repeats", type=int, default=2, help="idle/loaded pairs [2]")
    ap.add_argument("--legacy-epochs", type=int, default=3,
                    help="epochs of the one-thread-per-CPU comparison (0: skip) [3]")
    args = ap.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the `finally` blocks stop the burner and hrlf-train
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    root = tempfile.mkdtemp(prefix="hrlf-train-load-")
    cpus = len(os.sched_getaffinity(0))
    runs, legacy = [], []
    try:
        for i in range(args.repeats):
            for loaded in ((False, True) if i % 2 == 0 else (True, False)):
                runs.append(_train(args.data, root, [], loaded))
                print(json.dumps(runs[-1]), file=sys.stderr)
        if args.legacy_epochs > 0:
            ep = ["--epochs", str(args.legacy_epochs)]
            for extra, loaded in ((ep + ["--threads", str(cpus)], False),
                                  (ep + ["--threads", str(cpus)], True), (ep, True)):
                legacy.append(_train(args.data, root, extra, loaded))
                print(json.dumps(legacy[-1]), file=sys.stderr)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    idle = statistics.median(r["wall_s"] for r in runs if not r["loaded"])
    loaded = statistics.median(r["wall_s"] for r in runs if r["loaded"])
    res = {"command": " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
           "train_command": f"hrlf-train --data {args.data} --out RUN_DIR --quiet",
           "machine": {"cpus_affinity": cpus, "cpu_count": os.cpu_count(),
                       "platform": platform.platform(), "python": platform.python_version(),
                       "niceness": os.nice(0), "loadavg_end": os.getloadavg()},
           "load": "one extra `python -c 'while True: pass'` process, started 1 s before",
           "median_wall_s": {"idle": idle, "loaded": loaded},
           "ratio_loaded_over_idle": round(loaded / idle, 3),
           "median_train_cpu_s": {k: statistics.median(r["train_cpu_s"] for r in runs
                                                       if r["loaded"] == v)
                                  for k, v in (("idle", False), ("loaded", True))},
           "median_train_cpu_share": {k: statistics.median(r["train_cpu_share"] for r in runs
                                                           if r["loaded"] == v)
                                      for k, v in (("idle", False), ("loaded", True))},
           "runs": runs, "legacy_one_thread_per_cpu": legacy,
           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps({k: res[k] for k in ("median_wall_s", "ratio_loaded_over_idle")}))


if __name__ == "__main__":
    main()
