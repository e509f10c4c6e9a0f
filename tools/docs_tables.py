"""Markdown tables for the docs site, rendered from what the repository commits, never typed:
the results (``results/*.json``), the benchmarks (``bench/results/*.json``), the extras
(``pyproject.toml``) and the command-line reference (the click command objects themselves).

A page asks for one with a marker on a line of its own, e.g. ``<!-- hrlf:paired mosi A -->``;
``tools/mkdocs_hooks.py`` replaces it at build time, so a rerun of ``reproduce`` or of a
benchmark changes the site without anyone retyping a figure. Stdlib only.
"""
from __future__ import annotations

import json
import pathlib
import re
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # the sibling modules
import docs_bench  # noqa: E402
from docs_common import REPO, _cell, _cond, _load, _num  # noqa: E402,F401

METRICS = ("f1", "corr", "auc", "mae")
CONDITIONS = ("l", "a", "v", "la", "lv", "av", "avg6", "lav")
MARKER = re.compile(r"^<!-- hrlf:(\w+)((?: [^ >]+)*) -->$", re.M)

#: every click command of the project: (how it is run, module, command object's name)
COMMANDS = (
    ("hrlf-train", "hrlf.train.cli", "train_main"),
    ("hrlf-eval", "hrlf.train.cli", "eval_main"),
    ("hrlf-export", "hrlf.export.cli", "main"),
    ("hrlf-run", "hrlf.runtime.cli", "main"),
    ("python -m hrlf.train.reproduce", "hrlf.train.reproduce", "main"),
    ("python -m hrlf.train.heads", "hrlf.train.heads", "main"),
    ("python -m hrlf.runtime.capture.realmedia", "hrlf.runtime.capture.realmedia", "main"),
    ("python -m hrlf.export.triton_server", "hrlf.export.triton_server", "main"),
)


def _stats(name: str, key: str) -> dict:
    return _load(f"results/{name}.json")["stats"][key]


def paired(name: str, key: str, cond: str = "avg6") -> str:
    """HRLF − other (or a variant − its reference) per metric: mean [95 % interval] verdict."""
    rows = ["| difference | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for other, by_cond in _stats(name, key)["paired"].items():
        cells = []
        for m in METRICS:
            p = by_cond[cond][m]
            verdict = {"indistinguishable": "≈"}.get(p["verdict"], p["verdict"])
            lo, hi = p["ci"]
            cells.append(f"{_num(p['mean_diff'], True)} [{_num(lo, True)}, {_num(hi, True)}] "
                         f"{verdict}")
        label = other if "−" in other else f"HRLF − {other}"
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def models(name: str, key: str, metric: str = "f1") -> str:
    """One metric per model and condition: mean over seeds [95 % interval]."""
    rows = ["| model | " + " | ".join(_cond(c) for c in CONDITIONS) + " |",
            "|---" * (len(CONDITIONS) + 1) + "|"]
    for model, by_cond in _stats(name, key)["models"].items():
        cells = []
        for c in CONDITIONS:
            s = by_cond.get(c, {}).get(metric)
            cells.append("" if s is None else
                         f"{_num(s['mean'])} [{_num(s['ci'][0])}, {_num(s['ci'][1])}]")
        rows.append(f"| {model} | " + " | ".join(cells) + " |")
    return f"{metric}, mean over seeds [95 % interval]:\n\n" + "\n".join(rows)


def ridge(name: str = "mosi") -> str:
    floor = _load(f"results/{name}.json")["ridge_floor"]
    rows = ["| modalities | MAE | Corr | Acc-2 |", "|---|---|---|---|"]
    for cond, m in floor.items():
        rows.append(f"| {_cond(cond)} | {m['mae']:.3f} | {m['corr']:.3f} | {m['acc2']:.3f} |")
    return "\n".join(rows)


def cost() -> str:
    rows = ["| spec | parameters | MFLOPs per segment | frames (text/audio/vision) |",
            "|---|---|---|---|"]
    for name in ("mosi", "synthetic"):
        for spec, c in _load(f"results/{name}.json").get("cost", {}).items():
            fr = "/".join(str(c["frames"][m]) for m in ("text", "audio", "vision"))
            rows.append(f"| {spec} (`results/{name}.json`) | {c['parameters']:,} | "
                        f"{c['flops'] / 1e6:.2f} | {fr} |")
    return "\n".join(rows)


def runtime_speed() -> str:
    """Per-segment latency of each backend (``bench/results/runtime.json``)."""
    d = _load("bench/results/runtime.json")
    rows = ["| per segment | p50 | p99 | segments/s |", "|---|---|---|---|"]
    for b in d["backends"].values():
        rows.append(f"| {b['backend']} | {b['p50_ms']:.2f} ms | {b['p99_ms']:.2f} ms | "
                    f"{b['segments_per_s']:.0f} |")
    e2e = d["end_to_end_ort_fp32"]["latency_ms"]["total"]
    return "\n".join(rows + ["", f"ONNX Runtime FP32 against PyTorch eager: "
                             f"{d['ort_fp32_speedup_vs_torch']:.1f}× faster; the runtime's own "
                             f"overhead {d['runtime_overhead']['ms_per_segment']:.3f} ms per "
                             f"segment; end to end p50 {e2e['p50']:.2f} ms, p99 {e2e['p99']:.2f} "
                             f"ms; peak memory of `hrlf-run` "
                             f"{d['hrlf_run_memory']['peak_rss_mb']:.0f} MB."])


def _ms(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def export_latency() -> str:
    """CPU latency of the exported models, median (p99), 1 thread (``bench/export.py``)."""
    lat = _load("bench/results/export.json")["latency_cpu"]
    names = {"ort_fp32": "ORT FP32", "ort_fp16": "ORT FP16", "torch_eager": "PyTorch eager"}
    rows = ["| 1 thread | " + " | ".join(b.replace("_", " ") for b in lat) + " |",
            "|---" * (len(lat) + 1) + "|"]
    for key, label in names.items():
        cells = []
        for by_model in lat.values():
            m = by_model[key]
            cells.append(f"{_ms(m['median_ms'])} ms ({_ms(m['p99_ms'])})")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def streams(name: str = "streams") -> str:
    """One row per (mode, N) of ``bench/results/streams.json`` (``bench/streams.py``)."""
    rows = ["| mode | N | p50 | p99 | CPU ms/segment | segments (expected) | peak RSS MB | "
            "RSS/stream KB | load avg |", "|---" * 9 + "|"]
    for r in _load(f"bench/results/{name}.json")["runs"]:
        if r.get("skipped"):
            rows.append(f"| {r['mode']} | {r['n']} | skipped: {_cell(r['skipped'])} |"
                        + " |" * 6)
            continue
        lat, rss = r["latency_ms"], f"{r['peak_rss_mb']}"
        if r.get("server_peak_rss_mb") is not None:
            rss += f" + server {r['server_peak_rss_mb']}"
        rows.append(f"| {r['mode']} | {r['n']} | {lat['p50']:.0f} ms | {lat['p99']:.0f} ms | "
                    f"{r['cpu_s_per_segment_ms']:.2f} | {r['segments']} "
                    f"({r['segments_expected']}) | {rss} | {r['rss_per_stream_kb']:.0f} | "
                    f"{r['loadavg_1min_at_start']} |")
    return "\n".join(rows)


def streams_summary(name: str = "streams_hub") -> str:
    """One row per (mode, N) of a ``bench/streams.py --runs K`` summary: median and worst of
    the runs (each a fresh process), and whether every run held."""
    rows = ["| mode | N | runs | p99 median (worst) | delivered median (worst) | in time "
            "median (worst) | CPU cores median (worst) | load avg at start | every run held |",
            "|---" * 9 + "|"]
    d = _load(f"bench/results/{name}.json")
    for r in d["summary"]:
        load = r["loadavg_1min"]
        rows.append(f"| {r['mode']} | {r['n']} | {r['runs']} | {r['p99_ms_median']:.0f} ms "
                    f"({r['p99_ms_worst']:.0f}) | {r['delivered_pct_median']} % "
                    f"({r['delivered_pct_worst']} %) | {r['in_time_pct_median']} % "
                    f"({r['in_time_pct_worst']} %) | {r['cpu_cores_median']} "
                    f"({r['cpu_cores_worst']}) | {min(load)}–{max(load)} | "
                    f"{'yes' if r['held_every_run'] else 'no'} |")
    return "\n".join(rows) + _streams_where(d["runs"])


#: bench/streams.py's thread names, as the docs say them
_THREAD_GROUPS = {"hrlf-hub-infer": "inference threads", "MainThread": "the feeding thread",
                  "hrlf-hub": "the hub's worker", "hrlf-hub-cb": "callbacks"}


def _streams_where(runs: list) -> str:
    """Where the CPU went at the largest N (per thread group, medians of the runs) and the
    collector's long passes, when the runs recorded them."""
    if not runs:
        return ""
    top = max(r["n"] for r in runs)
    runs = [r for r in runs if r["n"] == top]
    if not all(r.get("thread_cpu_cores") for r in runs):
        return ""
    med = {k: statistics.median(r["thread_cpu_cores"].get(k, 0.0) for r in runs)
           for k in runs[0]["thread_cpu_cores"]}
    groups = ", ".join(f"{_THREAD_GROUPS.get(k, k)} {v:.2f}"
                       for k, v in sorted(med.items(), key=lambda kv: -kv[1]))
    text = (f"\n\nWhere the CPU went at N = {runs[0]['n']} (cores per thread group, from /proc, "
            f"medians of the runs): {groups}.")
    long = [ms for r in runs for _, ms in r.get("gc_passes", {}).get("long", [])]
    if long:
        text += (f" Collector passes over 10 ms: {len(long)} in {len(runs)} runs, "
                 f"{min(long):g}–{max(long):g} ms.")
    return text


def _leaves(d, prefix=""):
    """(dotted key, value) for every scalar of a JSON document; short lists of scalars inline."""
    if isinstance(d, dict):
        for k, v in d.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(d, list):
        if all(not isinstance(x, (dict, list)) for x in d) and len(d) <= 8:
            yield prefix, ", ".join(str(x) for x in d)
        else:
            yield prefix, f"({len(d)} entries: see the JSON)"
    else:
        yield prefix, d


def bench(name: str, limit: int = 60) -> str:
    """A benchmark's figures as written: its command, machine and every scalar (the first
    ``limit``; the JSON has the rest)."""
    rel = f"bench/results/{name}.json"
    rows = ["| field | value |", "|---|---|"]
    leaves = list(_leaves(_load(rel)))
    for key, value in leaves[:limit]:
        text = str(value).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")
        rows.append(f"| `{key}` | {text[:160]} |")
    more = f"\n\n…and {len(leaves) - limit} more fields in `{rel}`." if len(leaves) > limit else ""
    return f"From `{rel}`:\n\n" + "\n".join(rows) + more


def bench_all() -> str:
    """One section per committed benchmark JSON."""
    parts = []
    for path in sorted((REPO / "bench" / "results").glob("*.json")):
        parts += [f"## {path.stem}", "", bench(path.stem), ""]
    return "\n".join(parts)


#: what each extra is for (the installs column comes from pyproject.toml; a test checks that
#: every extra has a line here)
EXTRA_FOR = {
    "train": "`hrlf-train`, `hrlf-eval`",
    "export": "`hrlf-export`",
    "tensorrt": "TensorRT engines (on a Jetson: JetPack's system packages instead)",
    "tensorrt-pycuda": "TensorRT engines, with pycuda instead of cuda-python",
    "capture": "camera / microphone / media files, featurizers, PocketSphinx",
    "asr": "Whisper speech recognition (`--asr whisper`; `auto` prefers it; CTranslate2, no torch)",
    "triton": "`--backend triton` (a Triton server's client)",
    "openvino": "`--backend openvino`, and `auto` where it measures faster",
    "metrics": "Prometheus `/metrics`, `/healthz`, `/readyz`, the live page (`--metrics-port`)",
    "docs": "this site (`mkdocs build --strict`, `mkdocs serve`)",
    "dev": "tests: all of the above but TensorRT, and the test tools",
}


def extras() -> str:
    """The extras table, from pyproject.toml: what each one is for and installs."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    rows = ["| extra | for | installs |", "|---|---|---|",
            "| (core) | the runtime on an edge box | " + ", ".join(project["dependencies"]) + " |"]
    for extra, reqs in project["optional-dependencies"].items():
        rows.append(f"| `[{extra}]` | {EXTRA_FOR.get(extra, '')} | "
                    + ", ".join(r.replace("|", "\\|") for r in reqs) + " |")
    return "\n".join(rows)


def _command(prog: str):
    import importlib

    import click

    for name, module, attr in COMMANDS:
        if name == prog:
            cmd = getattr(importlib.import_module(module), attr)
            settings = {"terminal_width": 100, "max_content_width": 100, **cmd.context_settings}
            ctx = click.Context(cmd, info_name=prog, **settings)
            return cmd, ctx
    raise ValueError(f"unknown command {prog!r}; add it to COMMANDS in tools/docs_tables.py")


def _default(param, ctx) -> str:
    value = param.get_default(ctx, call=False)
    if callable(value) or value is None or type(value).__name__ == "Sentinel":
        return ""
    if getattr(param, "is_flag", False):  # an on/off pair names its default; a lone flag: none
        return f"`{(param.opts if value else param.secondary_opts)[0]}`" if param.secondary_opts else ""
    if isinstance(value, (list, tuple)):
        value = " ".join(map(str, value))
    return f"`{value}`" if str(value) != "" else ""


def cli(*prog: str) -> str:
    """One command's reference, from its click object: the exact ``--help`` text, then a
    table of its arguments and options (type, default, environment variable, help)."""
    import click

    prog = " ".join(prog)
    cmd, ctx = _command(prog)
    rows = ["| option | type | default | env | description |", "|---|---|---|---|---|"]
    for param in cmd.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if isinstance(param, click.Option):
            names = f"`{param.get_help_record(ctx)[0]}`"
            kind = "flag" if param.is_flag else param.type.name
        else:
            names, kind = f"`{param.human_readable_name}` (argument)", param.type.name
        env = param.envvar if isinstance(param.envvar, str) else ", ".join(param.envvar or ())
        rows.append(f"| {names} | {_cell(kind)} | {_default(param, ctx)} | "
                    f"{f'`{env}`' if env else ''} | {_cell(getattr(param, 'help', '') or '')} |")
    return "\n".join(["```text", cmd.get_help(ctx).rstrip(), "```", "", *rows])


TABLES = {"paired": paired, "models": models, "ridge": ridge, "cost": cost, "bench": bench,
          "bench_all": bench_all, "runtime_speed": runtime_speed,
          "streams": streams, "streams_summary": streams_summary,
          "export_latency": export_latency, "extras": extras, "cli": cli,
          **docs_bench.TABLES}


def expand(markdown: str) -> str:
    """Replace every ``<!-- hrlf:NAME ARGS -->`` marker by its generated table."""
    def one(m):
        name, args = m.group(1), m.group(2).split()
        if name not in TABLES:
            raise ValueError(f"unknown docs table {name!r}; known: {', '.join(TABLES)}")
        return TABLES[name](*args)
    return MARKER.sub(one, markdown)


if __name__ == "__main__":  # print one: python tools/docs_tables.py cli hrlf-run
    print(TABLES[sys.argv[1]](*sys.argv[2:]))
