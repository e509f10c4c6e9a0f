"""Attention heads decided by evidence: the paper's 10 heads against 2 and 1 at equal width.

    python -m hrlf.train.heads --data ../shared/data/mosi --out results/

writes ``results/heads.json`` and ``results/heads.md``. Same design as
:mod:`hrlf.train.reproduce`: MOSI protocols A and B (10 seeds) and the harder synthetic
benchmark (10 seeds), HRLF at the weights and design that the reproduction froze on the
train/valid split (read from ``OUT/mosi.json``; the defaults for synthetic), one torch
thread per job, ``--workers`` processes. For every seed (and fold) a head count trains its
own teacher and student with that count (the pipeline a user runs with it); the model
width d = 40 is the same, so parameters and FLOPs are identical and only the attention's
shape differs. Seeds are paired (same data order), and the verdicts are the reproduction's:
the paired difference *fewer heads - 10 heads* with the two-level bootstrap interval of
:mod:`hrlf.train.stats` (videos or recordings and seeds resampled), ``better`` / ``worse``
when the 95 % interval excludes 0. Finished jobs are cached in ``OUT/.jobs/`` (a rerun
resumes); ``--summarize`` writes the files from the cache without training.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
import types
from concurrent.futures import ProcessPoolExecutor, as_completed

import click
import numpy as np

from hrlf.runtime import protocol
from hrlf.runtime.cli_base import OneLineCommand
from hrlf.runtime.errors import InputError
from hrlf.train import reproduce as R
from hrlf.train import stats as ST
from hrlf.train import summary as S
from hrlf.train.reproduce_cli import IntList

HEADS = (10, 2, 1)
PAPER = 10
SEEDS = tuple(range(10))
KEYS = ("f1", "corr", "auc", "mae")
CONDS = ("avg6", "lav", "l")


def label(h: int) -> str:
    return f"{h} head" + ("s" if h != 1 else "")


def hrlf_config(out: str) -> dict:
    """HRLF's loss weights and design as the reproduction froze them (OUT/mosi.json)."""
    path = os.path.join(out, "mosi.json")
    try:
        with open(path) as f:
            return json.load(f)["sweep"]["design"]["config"]
    except (OSError, KeyError, ValueError) as e:
        raise InputError(f"{path}: no frozen HRLF choice ({type(e).__name__}); run "
                         "python -m hrlf.train.reproduce first or pass its --out") from None


def mosi_jobs(args, cfg: dict) -> list[dict]:
    jobs = []
    for s in args.seeds:
        for h in args.heads:
            common = dict(kind="eval", data=args.data, synthetic={}, folds=args.folds,
                          seed=s, heads=h, students={"hrlf": cfg}, score_teacher=False,
                          budget={**R._budget(args, R.BUDGET), "model": {"heads": h}})
            if "A" in args.protocols:
                jobs.append(dict(common, proto="A", fold=0))
            if "B" in args.protocols:
                jobs += [dict(common, proto="B", fold=k) for k in range(args.folds)]
    return jobs


def synthetic_jobs(args) -> list[dict]:
    from hrlf.train.benchmark import HARDER

    model = R.SYN_BUDGET["model"]
    return [dict(kind="eval", data="synthetic", synthetic=dict(HARDER), proto="A", fold=0,
                 folds=args.folds, seed=s, heads=h, intra=True, students={"hrlf": {}},
                 score_teacher=False,
                 budget={**R._budget(args, R.SYN_BUDGET, True),
                         "model": {**model, "heads": h}})
            for s in args.syn_seeds for h in args.heads]


def all_jobs(args) -> list[tuple[str, dict]]:
    """Seed-major, so an interrupted run has whole seeds of every comparison."""
    mosi = mosi_jobs(args, hrlf_config(args.out)) if args.data else []
    syn = synthetic_jobs(args) if args.synthetic else []
    out = []
    for s in sorted({j["seed"] for j in mosi + syn}):
        out += [("synthetic", j) for j in syn if j["seed"] == s]
        out += [("mosi", j) for j in mosi if j["seed"] == s]
    return out


def run(args, log=print) -> dict:
    """Train every job not in the cache; returns {part: [results]} with wall time and loads."""
    cache = R.JobCache(args.out)
    queue = all_jobs(args)
    done = {"mosi": [], "synthetic": [], "loadavg": [R._load()]}
    todo = []
    for part, job in queue:
        hit = cache.get(job)
        if hit is not None:
            done[part].append(hit)
        elif not args.summarize:
            todo.append((part, job))
    cached = len(done["mosi"]) + len(done["synthetic"])
    log(f"{len(queue)} jobs, {cached} cached, {len(todo)} to train", flush=True)
    t0 = time.time()
    if todo:
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(args.workers, mp_context=ctx,
                                 initializer=R._init_worker) as pool:
            futs = {pool.submit(R.run_job, j): part for part, j in todo}
            for f in as_completed(futs):
                r = f.result()
                cache.put(r)
                done[futs[f]].append(r)
                done["loadavg"].append(R._load())
                j = r["job"]
                log(f"[{time.time() - t0:6.0f} s] {futs[f]} {j['proto']} fold {j['fold']} "
                    f"seed {j['seed']} heads {j['heads']} {r['seconds']:.0f} s "
                    f"load {done['loadavg'][-1][0]}", flush=True)
    done.update(wall_s=time.time() - t0, complete=len(done["mosi"]) + len(done["synthetic"])
                == len(queue))
    return done


def pooled(results: list[dict], proto: str, heads) -> tuple:
    """(label, group, {label(h): [per seed {cond: scores}]}, seeds, {label(h): results})
    over the seeds that every head count finished."""
    per_h = {h: [r for r in results if r["job"]["heads"] == h and r["job"]["proto"] == proto]
             for h in heads}
    if not all(per_h.values()):
        return None
    pools = {h: S.pool(rs, proto, ("hrlf",)) for h, rs in per_h.items()}
    seeds = sorted(set.intersection(*(set(p[3]) for p in pools.values())))
    label_, group = pools[heads[0]][0], pools[heads[0]][1]
    preds = {label(h): [p[2]["hrlf"][p[3].index(s)] for s in seeds] for h, p in pools.items()}
    return label_, group, preds, seeds, per_h


def compare(table: dict, heads, seed: int = 1) -> dict:
    """Every fewer-heads model minus the paper's, per condition and metric."""
    paper = label(PAPER)
    out = {"models": ST.paired_report(table, paper, seed)["models"], "paired": {}}
    for h in heads:
        if h == PAPER:
            continue
        rep = ST.paired_report({label(h): table[label(h)], paper: table[paper]}, label(h), seed)
        out["paired"][f"{label(h)} − {paper}"] = rep["paired"][paper]
    return out


def _protocol_stats(results: list[dict], proto: str, heads, n_boot: int,
                    intra: bool = False) -> dict | None:
    got = pooled(results, proto, heads)
    if got is None:
        return None
    lab, group, preds, seeds, per_h = got
    tab = ST.boot_table(preds, lab, group, protocol.CONDITIONS, n_boot)
    res = {"seeds": seeds, **compare(tab, heads),
           "paper_points": {c: {k: tab[label(PAPER)][c][k]["point"].tolist() for k in KEYS}
                            for c in protocol.CONDITIONS},
           "runs": {label(h): S._info(rs, proto).get("hrlf") for h, rs in per_h.items()},
           "teacher_runs": {label(h): S._info(rs, proto).get("teacher")
                            for h, rs in per_h.items()}}
    if intra:
        res["intra"] = _intra(per_h, lab, group, seeds, heads, n_boot)
    return res


def _intra(per_h: dict, lab, group, seeds, heads, n_boot: int) -> dict:
    """F1 against the intra-modality drop ratio, per mode: fewer heads - 10 heads."""
    out = {}
    first = per_h[heads[0]][0]["intra"]["hrlf"]
    for mode, by_ratio in first.items():
        ratios = [str(r) for r in by_ratio]
        ip = {label(h): [{str(r): v for r, v in next(
            x for x in per_h[h] if x["job"]["seed"] == s)["intra"]["hrlf"][mode].items()}
            for s in seeds] for h in heads}
        out[mode] = compare(ST.boot_table(ip, lab, group, ratios, n_boot, avg6=False), heads)
    return out


def repeat_check(out: str, stats: dict) -> dict:
    """The 10-head runs against the reproduction's HRLF on the same seeds (its JSON keeps 5
    decimals): equal when nothing that training depends on changed, e.g. the logit floor of
    :func:`hrlf.train.model.masked_softmax` (it was added after results/ were made)."""
    res = {}
    for name, proto in (("mosi", "A"), ("mosi", "B"), ("synthetic", "A")):
        path = os.path.join(out, f"{name}.json")
        st = stats.get(f"{name}_{proto}")
        if not (st and os.path.isfile(path)):
            continue
        with open(path) as f:
            ref = json.load(f)
        seeds = ref.get("seeds_per_protocol", {}).get(proto)
        if not seeds or "hrlf" not in ref.get("stats", {}).get(proto, {}).get("models", {}):
            continue  # no reproduction results to compare with
        if not set(seeds) <= set(st["seeds"]):
            res[f"{name}_{proto}"] = {"comparable": False, "seeds": seeds}
            continue
        rows = [st["seeds"].index(s) for s in seeds]
        old = ref["stats"][proto]["models"]["hrlf"]
        pts = st["paper_points"]
        diffs = [abs(round(float(np.mean(np.asarray(pts[c][k])[rows])), 5) - old[c][k]["mean"])
                 for c in protocol.CONDITIONS for k in KEYS]
        res[f"{name}_{proto}"] = {"comparable": True, "seeds": seeds,
                                  "max_abs_diff_of_means": round(max(diffs), 6),
                                  "equal": bool(max(diffs) < 1e-9)}
    return res


def summarize(done: dict, args) -> dict:
    """heads.json's content."""
    stats = {}
    for name, proto in (("mosi", "A"), ("mosi", "B"), ("synthetic", "A")):
        st = _protocol_stats(done[name], proto, args.heads, args.n_boot, name == "synthetic")
        if st is not None:
            stats[f"{name}_{proto}"] = st
    la = np.array(done["loadavg"])
    cfg = (hrlf_config(args.out) if args.data else None)
    wall = {"wall_s_this_invocation": round(done["wall_s"], 1),
            "loadavg_1min_this_invocation": {"mean": round(float(la[:, 0].mean()), 2),
                                             "max": float(la[:, 0].max())}}
    if args.summarize:  # no training now: keep the figures of the invocation that trained
        wall = _previous_wall(args.out) or wall
    return {"command": "python -m hrlf.train.heads --data ../shared/data/mosi --out results/",
            "complete": done["complete"], "heads": list(args.heads), "paper": PAPER, "d": 40,
            "hrlf_config_mosi": cfg, "budget_mosi": R.BUDGET, "budget_synthetic": R.SYN_BUDGET,
            **wall,
            "cpu_s_all_jobs": round(sum(r["cpu_s"] for r in done["mosi"] + done["synthetic"]), 1),
            "bootstrap": "video-level (synthetic: recordings), the same replicates for every "
                         "model and seed; 'ci' also resamples the seeds; 95 % percentile "
                         "intervals; verdicts from 'ci'",
            "repeat_check": repeat_check(args.out, stats), "stats": stats}


def _previous_wall(out: str) -> dict | None:
    """Wall time and load of the invocation that trained, from OUT/heads.json."""
    try:
        with open(os.path.join(out, "heads.json")) as f:
            prev = json.load(f)
    except (OSError, ValueError):
        return None
    keys = ("wall_s_this_invocation", "loadavg_1min_this_invocation")
    return {k: prev[k] for k in keys} if all(k in prev for k in keys) and prev[keys[0]] else None


@click.command(cls=OneLineCommand, tool="heads", context_settings={"help_option_names": ["-h", "--help"]},
               epilog="\b\nExample:\n  python -m hrlf.train.heads --data ../shared/data/mosi --out results/")
@click.option("--data", default="../shared/data/mosi", show_default=True,
              help="MOSI npz or its folder; '' skips MOSI.")
@click.option("--out", default="results", show_default=True,
              help="Folder of mosi.json (the reproduction's choice) and the outputs.")
@click.option("--seeds", type=IntList(), default=",".join(map(str, SEEDS)), show_default=True,
              help="MOSI seeds.")
@click.option("--syn-seeds", type=IntList(), default=",".join(map(str, SEEDS)),
              show_default=True, help="Synthetic seeds.")
@click.option("--heads", type=IntList(), default=",".join(map(str, HEADS)), show_default=True,
              help=f"Head counts to compare (must include the paper's {PAPER}).")
@click.option("--epochs", type=click.IntRange(1), default=None,
              help=f"MOSI max epochs [{R.BUDGET['epochs']}].")
@click.option("--syn-epochs", type=click.IntRange(1), default=None,
              help=f"Synthetic max epochs [{R.SYN_BUDGET['epochs']}].")
@click.option("--no-synthetic", "synthetic", is_flag=True, flag_value=False, default=True,
              help="Skip the synthetic benchmark.")
@click.option("--protocols", type=click.Choice(["A", "B", "AB"]), default="AB",
              show_default=True, help="MOSI protocols to run.")
@click.option("--folds", type=click.IntRange(2), default=5, show_default=True,
              help="Outer folds of protocol B.")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True,
              help="Training processes.")
@click.option("--n-boot", type=click.IntRange(1), default=2000, show_default=True,
              help="Bootstrap replicates.")
@click.option("--summarize", is_flag=True,
              help="No training: summarize the cached jobs (whole seeds only).")
def main(**options) -> dict:
    """Attention heads decided by evidence: the paper's 10 heads against 2 and 1 at equal
    width (writes OUT/heads.json and OUT/heads.md)."""
    args = types.SimpleNamespace(**options)
    if PAPER not in args.heads:
        raise click.BadParameter(f"must include the paper's {PAPER}", param_hint="'--heads'")
    from hrlf.runtime import logs
    from hrlf.train import heads_md

    log = logs.tool_log()
    done = run(args, log=lambda msg, **_: log.info(msg))
    res = summarize(done, args)
    written = heads_md.write(S._round(res), args.out)
    log.info("wrote %s", ", ".join(written))
    return res


if __name__ == "__main__":
    main(prog_name="python -m hrlf.train.heads")
