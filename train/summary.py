"""Results files of :mod:`hrlf.train.reproduce_runs`: ``mosi.json``/``synthetic.json``, their
Markdown (tables generated here + the hand-written ``<name>.notes.md``) and the PNGs."""
from __future__ import annotations

import json
import math
import os

import numpy as np

from ..runtime import protocol
from ..runtime.metrics import regression_metrics
from . import evaluate as E
from . import stats as ST

RIDGE_FLOOR = {"lav": {"mae": 0.954, "corr": 0.627, "acc2": 0.778},
               "l": {"mae": 0.956, "corr": 0.603, "acc2": 0.784}}
PROTOCOLS = {
    "A": "train on train (1252 clips), select on valid (195; its features look fit to the "
         "labels), report test (752 clips, 31 videos)",
    "A_ablations": "protocol A, HRLF against its three ablations (separate jobs per seed, "
                   "run last; each retrains the same seeded teacher)",
    "B": "5-fold CV over the test split's 31 videos (folds by video); inside each outer fold "
         "an inner validation fifth of the training videos is used for early stopping only; "
         "the held-out predictions of the 5 folds are pooled per seed and scored on all 752 "
         "test clips. Loss weights and the dropout student's knobs were chosen on the "
         "train/valid split and frozen before B ran"}
SYN_PROTOCOL = ("A: train on the train recordings' windows, select on valid, report test "
                "(disjoint recordings, drawn from disjoint seeds)")
ABLATIONS = ("no_frf", "no_hmi", "no_hal")
MODEL_ORDER = ("hrlf", "dropout", "msm_only", "kd_only", "no_frf", "no_hmi", "no_hal", "teacher")


def inference_cost(dims: dict, frames: dict, d_model: dict | None = None) -> dict:
    """Student inference parameters and FLOPs per segment (batch 1, all frames valid)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ..runtime.spec import input_names
    from .model import HRLFNet, InferenceGraph, ModelConfig, inference_parameters

    net = HRLFNet(ModelConfig(dims=dict(dims), **(d_model or {}))).eval()
    x = {m: torch.randn(1, frames[m], dims[m]) for m in dims}
    x.update({f"{m}_mask": torch.ones(1, frames[m]) for m in dims})
    x["modality_mask"] = torch.ones(1, 3)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        InferenceGraph(net)(*[x[k] for k in input_names()])
    return {"parameters": int(inference_parameters(net)), "flops": int(counter.get_total_flops()),
            "frames": dict(frames), "dims": dict(dims)}


def pool(results: list[dict], proto: str, models=None) -> tuple[np.ndarray, np.ndarray, dict, list]:
    """Per seed, every model's scores on the whole eval split (B: held-out folds pooled).

    Only seeds where every model of ``models`` (default: those of the first job) has scores
    for every fold are kept, so the comparisons stay paired by seed.

    Returns:
        ``(label, group, {model: [ {cond: (N,)} per seed ]}, seeds)``.
    """
    runs = [r for r in results if r["job"]["proto"] == proto]
    models = [m for m in MODEL_ORDER if m in (models or runs[0]["scores"])]
    folds = 1 if proto.startswith("A") else runs[0]["job"]["folds"]
    seeds = []
    for s in sorted({r["job"]["seed"] for r in runs}):
        have = [{r["job"]["fold"] for r in runs if r["job"]["seed"] == s and m in r["scores"]}
                for m in models]
        if all(len(h) == folds for h in have):
            seeds.append(s)
    n = max(int(np.max(r["idx"])) + 1 for r in runs)
    label, group = np.zeros(n, np.float32), np.empty(n, object)
    preds = {m: [] for m in models}
    for s in seeds:
        for m in models:
            pooled = {c: np.zeros(n, np.float32) for c in protocol.CONDITIONS}
            for p in (r for r in runs if r["job"]["seed"] == s and m in r["scores"]):
                label[p["idx"]], group[p["idx"]] = p["label"], p["group"]
                for c in protocol.CONDITIONS:
                    pooled[c][p["idx"]] = p["scores"][m][c]
            preds[m].append(pooled)
    return label, group.astype(str), preds, seeds


def aggregate_metrics(preds: dict, label: np.ndarray) -> dict:
    """All metrics per condition and avg6, mean ± std over seeds (the older table format)."""
    out = {}
    for m, seeds in preds.items():
        runs = []
        for per in seeds:
            res = {c: regression_metrics(per[c], label) for c in protocol.CONDITIONS}
            res["avg6"] = E.average6(res)
            runs.append(res)
        out[m] = E.aggregate(runs)
    return out


def _info(results: list[dict], proto: str | None = None) -> dict:
    """Epochs, convergence and the collapse monitor (across-sample std of Z), per model."""
    out = {}
    for r in results:
        if proto and r["job"]["proto"] != proto:
            continue
        for m, i in r["info"].items():
            d = out.setdefault(m, {"epochs": [], "converged": [], "z": {}})
            d["epochs"].append(i["epochs"])
            d["converged"].append(bool(i["converged"]))
        for m, per_cond in r["z_std"].items():
            for c, z in per_cond.items():
                for k, v in z.items():
                    out.setdefault(m, {"epochs": [], "converged": [], "z": {}})["z"].setdefault(
                        f"{c}/{k}", []).append(v)
    return {m: {"epochs_mean": float(np.mean(d["epochs"])), "epochs_max": int(max(d["epochs"])),
                "converged": f"{sum(d['converged'])}/{len(d['converged'])}",
                # fsum: the same mean whatever order the jobs finished in (a fresh run and
                # its --summarize from the cache round alike)
                "z_std": {k: round(math.fsum(v) / len(v), 4) for k, v in d["z"].items()},
                "z_std_min_run": {k: round(float(np.min(v)), 4) for k, v in d["z"].items()}}
            for m, d in out.items() if d["epochs"]}


def _compact(rep: dict) -> dict:
    """Verdicts only: other -> cond -> metric -> verdict."""
    return {o: {c: {k: v["verdict"] for k, v in d.items()} for c, d in conds.items()}
            for o, conds in rep["paired"].items()}


def mosi_result(runs: dict, n_boot: int) -> dict:
    res = _header(runs, "mosi")
    res.update(protocol=PROTOCOLS, sweep=runs["chosen"], ridge_floor=RIDGE_FLOOR,
               budget=runs["mosi"][0]["job"]["budget"], stats={}, verdicts={})
    res["sweep_info"] = _info(runs["sweep"] + runs.get("design", []))
    main = [r for r in runs["mosi"] if not r["job"].get("part")]
    abl = [r for r in runs["mosi"] if r["job"].get("part") == "ablations"]
    a_main = [r for r in main if r["job"]["proto"] == "A"]
    parts = [("A", "models", main, None), ("B", "cv", main, None),  # HRLF from the A jobs:
             ("A_ablations", "models_ablations", a_main + abl, ("hrlf",) + ABLATIONS)]
    for proto, key, rs, models in parts:
        rs = [dict(r, job={**r["job"], "proto": proto}) if proto == "A_ablations" else r
              for r in rs]
        if not any(r["job"]["proto"] == proto for r in rs):
            continue
        label, group, preds, seeds = pool(rs, proto, models)
        if not seeds:
            continue
        res[key] = aggregate_metrics(preds, label)
        tab = ST.boot_table(preds, label, group, protocol.CONDITIONS, n_boot)
        res["stats"][proto] = ST.paired_report(tab, "hrlf")
        res["verdicts"][proto] = _compact(res["stats"][proto])
        res.setdefault("seeds_per_protocol", {})[proto] = seeds
        res.setdefault("runs", {})[proto] = _info(rs, proto)
    res["cost"] = {"mosi": inference_cost({"text": 100, "audio": 73, "vision": 100},
                                          {"text": 1, "audio": 1, "vision": 1})}
    return res


def synthetic_result(runs: dict, n_boot: int) -> dict:
    res = _header(runs, "synthetic")
    job = runs["synthetic"][0]["job"]
    res.update(protocol={"A": SYN_PROTOCOL}, config=job["synthetic"], budget=job["budget"])
    label, group, preds, seeds = pool(runs["synthetic"], "A")
    res["models"] = aggregate_metrics(preds, label)
    tab = ST.boot_table(preds, label, group, protocol.CONDITIONS, n_boot)
    res["stats"] = {"A": ST.paired_report(tab, "hrlf")}
    res["verdicts"] = {"A": _compact(res["stats"]["A"])}
    res["runs"] = {"A": _info(runs["synthetic"])}
    res["intra"] = {}
    modes = next(iter(runs["synthetic"][0]["intra"].values()))
    for mode in modes:
        ratios = list(modes[mode])
        ip = {m: [{str(r): run["intra"][m][mode][r] for r in ratios}
                  for run in sorted(runs["synthetic"], key=lambda x: x["job"]["seed"])]
              for m in preds}
        t = ST.boot_table(ip, label, group, [str(r) for r in ratios], n_boot, avg6=False)
        res["intra"][mode] = ST.paired_report(t, "hrlf")
    res["seeds_per_protocol"] = {"A": seeds}
    res["cost"] = {"synthetic": inference_cost(
        {m: int(job["synthetic"].get("dims", {}).get(m, d)) for m, d in
         {"text": 32, "audio": 24, "vision": 32}.items()},
        {m: max(1, round(job["synthetic"]["window_s"] * job["synthetic"]["rates_hz"][m]))
         for m in ("text", "audio", "vision")}, job["budget"].get("model"))}
    return res


def _header(runs: dict, name: str) -> dict:
    la = np.array(runs["loadavg"]) if runs["loadavg"] else None
    part = (runs["mosi"] + runs["sweep"] + runs.get("design", []) if name == "mosi"
            else runs["synthetic"])
    a = runs.get("args", {})
    return {"partial": bool(runs.get("partial", False)),
            "command": "python -m hrlf.train.reproduce " + " ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in a.items()
                if k in ("data", "out") and v),
            "args": a, "wall_time_s": round(runs["wall_s"], 1),
            "wall_time_note": runs.get("wall_note", ""),
            "cpu_time_s": round(float(runs.get("cpu_children_s", 0.0)), 1),
            "cpu_time_this_part_s": round(sum(r["cpu_s"] for r in part), 1),
            "loadavg_1min": None if la is None else {
                "start": float(la[0, 0]), "mean": round(float(la[:, 0].mean()), 2),
                "max": float(la[:, 0].max()), "end": float(la[-1, 0])},
            "bootstrap": "video-level: test videos (synthetic: recordings) resampled with "
                         "replacement, the same replicates for every model and seed; "
                         "'ci' also resamples the seeds (two levels); 95 % percentile "
                         "intervals; verdicts from 'ci'"}


def _round(x, nd: int = 5):
    """Floats rounded to ``nd`` decimals (bootstrap intervals carry no more precision)."""
    if isinstance(x, float):
        return round(x, nd)
    if isinstance(x, dict):
        return {k: _round(v, nd) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_round(v, nd) for v in x]
    return x


def write_all(runs: dict, out: str, n_boot: int = 2000) -> list[str]:
    """Write every results file the runs allow; returns the paths written."""
    from . import report_md

    os.makedirs(out, exist_ok=True)
    written = []
    for name, build in (("mosi", mosi_result), ("synthetic", synthetic_result)):
        if not runs.get(name):
            continue
        res = build(runs, n_boot)
        path = os.path.join(out, f"{name}.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(_round(res), f, indent=1)
        os.replace(tmp, path)
        written += [path] + report_md.write(res, out, name)
    return written
