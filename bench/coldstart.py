"""Cold start: time to the first result of ``hrlf-run --pace fast`` (the demo) against a
bare ``python -c "import numpy, onnxruntime"``.

    python bench/coldstart.py [--runs 7] [--json bench/results/coldstart.json]

Each round starts both processes once, in alternating order (interleaved, so a change in
the shared machine's load hits both alike); every figure is the median over ``--runs``
rounds. ``first_result_ms``: from ``Popen`` to the first JSON line on hrlf-run's stdout;
``bare_ms``: from ``Popen`` to the exit of the bare process (both include the
interpreter's own start). The ratio of the medians is the headline. hrlf-run runs the whole
demo (30 stream seconds) to its end, and its peak RSS (``ru_maxrss``) is recorded, as is
the bare process's. Wall times on a loaded machine include waiting for a core, so each
round also runs ``hrlf-run --duration 2`` (one segment, then exit) and records the CPU
time (user + system) of that whole process and of the bare one: ``cpu_*_ms`` are less
sensitive to other load than wall times. The 1-min load average is recorded before and after.
The ORT model cache (``hrlf.runtime.backends.ort_cache``) is measured in both states:
``warm`` (the optimized model file exists, as on every start after the first) and ``cold``
(its ``.ort`` file is removed before each hrlf-run, so that start writes it).
``stages_ms_fastest``: where an in-process start spends its time up to the first
inference (imports, the demo stream, the backend), fastest of ``--runs``, under hrlf-run's
:class:`hrlf.runtime.startup.quick_start` (collector paused, one BLAS thread) as the
command has it. The very first
start on a machine with OpenVINO installed also measures OpenVINO once for ``auto`` (about
2 s, kept in the model's cache folder); the warm-up run before the rounds pays that.
``--venv DIR`` measures a regular install of this checkout (what README's ``pip install .``
gives a user) in that venv, made there first: an editable install (``pip install -e``, a
developer's) puts an import hook before every ``import hrlf...`` that costs about 45 ms of
the first result here; ``install`` in the JSON says which was measured.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import time

import numpy as np

BARE = [sys.executable, "-c", "import numpy, onnxruntime"]


def hrlf_run_cmd(duration: float | None = None) -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "hrlf-run")
    if not os.path.isfile(exe):
        exe = shutil.which("hrlf-run") or exe
    return [exe, "--pace", "fast", "--stats-every", "0"] + (
        ["--duration", str(duration)] if duration else [])


def _wait(p: subprocess.Popen) -> tuple[float, float]:
    """Reap ``p``: (its peak RSS in MiB, its CPU time in ms)."""
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return ru.ru_maxrss / 1024.0, (ru.ru_utime + ru.ru_stime) * 1e3


def time_bare(env: dict) -> tuple[float, float, float]:
    """(wall ms, peak RSS MiB, CPU ms) of the bare import."""
    t0 = time.perf_counter()
    p = subprocess.Popen(BARE, env=env)
    rss, cpu = _wait(p)
    if p.returncode:
        raise SystemExit(f"{' '.join(BARE)}: exit status {p.returncode}")
    return (time.perf_counter() - t0) * 1e3, rss, cpu


def time_first_result(cmd: list[str], env: dict) -> tuple[float, float, float]:
    """(wall ms to the first line, peak RSS MiB, CPU ms of the whole process)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    first = p.stdout.readline()
    t = (time.perf_counter() - t0) * 1e3
    p.stdout.read()  # run to the end: the peak RSS covers the whole run
    p.stdout.close()
    rss, cpu = _wait(p)
    if p.returncode or not first.startswith(b"{"):
        raise SystemExit(f"{' '.join(cmd)}: exit status {p.returncode}, first line {first[:80]!r}")
    return t, rss, cpu


def ort_cache_dir() -> str | None:
    """Where the ORT backend keeps its optimized model for the demo (None: no cache).
    A cold round removes the ``.ort`` files only: the verdict of ``auto``'s one-time
    OpenVINO measurement stays, as on any start after the first."""
    try:
        from hrlf.runtime.assets import demo_model_dir
        from hrlf.runtime.backends import ort_cache
    except ImportError:
        return None
    return ort_cache.cache_dir(demo_model_dir())


def _hrlf(rows: dict, prefix: str, env: dict, cold: str | None) -> None:
    """One hrlf-run of the whole demo (wall to the first line, RSS) and one of a single
    segment (CPU), appended to ``rows`` under ``prefix``."""
    for cmd, full in ((hrlf_run_cmd(), True), (hrlf_run_cmd(2.0), False)):
        for old in glob.glob(os.path.join(cold, "*.ort")) if cold else ():
            os.remove(old)
        t, rss, cpu = time_first_result(cmd, env)
        if full:
            rows[prefix + "first_result_ms"].append(t)
            rows[prefix + "hrlf_run_rss_mib"].append(rss)
        else:
            rows[prefix + "cpu_one_segment_ms"].append(cpu)


def measure(runs: int, cold_cache: bool, baseline: str | None = None) -> dict:
    """Interleaved rounds: bare, hrlf-run (and the baseline tree's hrlf-run), alternating."""
    env = dict(os.environ)
    base_env = {**env, "PYTHONPATH": baseline} if baseline else None
    cold = ort_cache_dir() if cold_cache else None
    time_first_result(hrlf_run_cmd(), env)  # warm the page cache, .pyc files, the ORT cache
    time_bare(env)
    names = ["first_result_ms", "cpu_one_segment_ms", "hrlf_run_rss_mib"]
    rows = {k: [] for k in ["bare_ms", "cpu_bare_ms", "bare_rss_mib"] + names
            + (["baseline_" + n for n in names] if baseline else [])}
    steps = ["bare", "hrlf"] + (["baseline"] if baseline else [])
    for i in range(runs):
        for k in (steps if i % 2 == 0 else steps[::-1]):
            if k == "bare":
                t, rss, cpu = time_bare(env)
                rows["bare_ms"].append(t)
                rows["bare_rss_mib"].append(rss)
                rows["cpu_bare_ms"].append(cpu)
            elif k == "hrlf":
                _hrlf(rows, "", env, cold)
            else:
                _hrlf(rows, "baseline_", base_env, None)
    med = {k: round(float(np.median(v)), 1) for k, v in rows.items()}
    out = {"median": med, "runs": {k: [round(x, 1) for x in v] for k, v in rows.items()}}
    for p in [""] + (["baseline_"] if baseline else []):
        out[p + "ratio_first_result_to_bare"] = round(med[p + "first_result_ms"] / med["bare_ms"], 3)
        out[p + "ratio_cpu_one_segment_to_bare"] = round(
            med[p + "cpu_one_segment_ms"] / med["cpu_bare_ms"], 3)
    return out


STAGES = r"""
import sys, time
t = [("start", time.perf_counter())]
def mark(name):
    t.append((name, time.perf_counter()))
from hrlf.runtime.startup import quick_start  # as hrlf-run: collector paused, one BLAS thread
start = quick_start(); ready = start.__enter__()
import numpy, onnxruntime; mark("numpy + onnxruntime")
import click; mark("click")
import hrlf.runtime.cli; mark("hrlf.runtime.cli")
from hrlf.runtime.backends.base import open_backend
from hrlf.runtime.runner import Runner
from hrlf.runtime.session import Session, SessionConfig
from hrlf.runtime.sources import open_source; mark("runner, session, sources")
from hrlf.runtime.assets import demo_model_dir
from hrlf.runtime.spec import ModelSpec
d = demo_model_dir(); spec = ModelSpec.load(d); mark("spec")
src = open_source("demo", spec, duration_s=30.0, model_dir=d); mark("demo stream")
be = open_backend("auto", d, spec, max_batch=32); mark("backend (auto)")
ready()
from hrlf.runtime.backends.choice import feeds
f = feeds(spec, 1); mark("random test input (not in hrlf-run)")
be.run(f); mark("first inference")
import json
print(json.dumps({n: (b - a) * 1e3 for (_, a), (n, b) in zip(t, t[1:])}))
"""


def stages(runs: int) -> dict:
    """In-process ms of each step to the first inference (the fastest of ``runs``)."""
    best: dict = {}
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", STAGES], capture_output=True, text=True,
                             check=True).stdout.strip().splitlines()[-1]
        for name, ms in json.loads(out).items():
            best[name] = min(best.get(name, float("inf")), ms)
    return {k: round(v, 1) for k, v in best.items()}


def install_kind() -> str:
    """``editable`` (``pip install -e``: an import hook) or ``regular`` (``pip install .``)."""
    import hrlf

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return "editable" if os.path.dirname(os.path.abspath(hrlf.__file__)) == root else "regular"


def rerun_in_venv(venv: str) -> None:
    """Re-run this script (without ``--venv``) with the Python of a regular install of this
    checkout in ``venv`` (``pip install -c constraints.txt .`` there when it has none)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    py = os.path.join(venv, "bin", "python")
    if not os.path.isfile(os.path.join(venv, "bin", "hrlf-run")):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "-c", "constraints.txt", "."],
                       cwd=root, check=True)
    else:  # the checkout may have changed since: reinstall hrlf alone
        subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", "."],
                       cwd=root, check=True)
    for d in ("build", "hrlf.egg-info"):  # what pip leaves in the checkout
        shutil.rmtree(os.path.join(root, d), ignore_errors=True)
    argv, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a == "--venv":
            skip = True
        elif not a.startswith("--venv="):
            argv.append(a)
    os.execv(py, [py, os.path.abspath(__file__)] + argv)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", default="bench/results/coldstart.json")
    ap.add_argument("--baseline", default=None, metavar="DIR",
                    help="also time the hrlf in DIR/hrlf (e.g. main: mkdir -p /tmp/base && git "
                         "archive main --prefix=hrlf/ | tar -x -C /tmp/base), interleaved")
    ap.add_argument("--venv", default=None, metavar="DIR",
                    help="measure a regular install (as README's `pip install .` makes) in the "
                         "venv DIR, made there first when missing; an editable install's "
                         "import hook adds tens of ms to every import of hrlf")
    args = ap.parse_args()
    if args.venv:
        rerun_in_venv(args.venv)
    import onnxruntime

    kind = install_kind()
    out = {"command": f"python bench/coldstart.py --runs {args.runs}"
                      + (" --baseline DIR" if args.baseline else "")
                      + (" --venv DIR" if kind == "regular" else ""),
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "python": platform.python_version(),
                       "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
           "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
           "bare": " ".join(BARE[1:]), "hrlf_run": " ".join(hrlf_run_cmd()),
           "ort_cache": ort_cache_dir(), "install": kind}
    out["warm_cache"] = measure(args.runs, False, args.baseline)
    if out["ort_cache"]:
        out["cold_cache"] = measure(args.runs, True)
    out["stages_ms_fastest"] = stages(args.runs)
    out["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
    os.replace(args.json + ".tmp", args.json)
    for k in ("warm_cache", "cold_cache"):
        if k in out:
            print(k, json.dumps(out[k]["median"]),
                  {r: v for r, v in out[k].items() if "ratio" in r})
    print("stages (ms, fastest run)", json.dumps(out["stages_ms_fastest"]))
    print("loadavg", out["machine"]["loadavg_at_start"], out["machine"]["loadavg_at_end"])


if __name__ == "__main__":
    main()
