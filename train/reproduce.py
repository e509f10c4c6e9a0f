"""Reproduce the README's MOSI tables: 5 seeds x (HRLF, dropout, ablations, teacher), 2 protocols.

    python -m hrlf.train.reproduce --data ../shared/data/mosi --out results/

* Protocol A (``models``): train on train, select on valid (early stopping / best valid
  loss), report test. The valid clips' features look fit to their labels (data README), so
  selection on them can mislead; test is the only fair number.
* Protocol B (``cv``, leakage-free): 5-fold cross-validation over the *test* split's
  videos (:func:`hrlf.runtime.datasets.group_folds`); inside each training part, one fifth
  of its videos is the inner validation set used for selection. Per seed, the held-out
  predictions of the 5 folds are pooled (every test clip predicted once) and scored.

Per seed and fold, one teacher is trained and shared by HRLF and its ablations (each is
the full student minus one term); the dropout baseline has no teacher. Jobs run in
``--workers`` processes with one torch thread each. Test labels are only ever scored.
"""
from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing as mp

import numpy as np

from hrlf.runtime import protocol
from hrlf.runtime.datasets import group_folds
from hrlf.runtime.metrics import regression_metrics

SEEDS = (0, 1, 2, 3, 4)
STUDENTS = {"hrlf": {}, "dropout": {"baseline": "dropout"}, "no_frf": {"ablate": "frf"},
            "no_hmi": {"ablate": "hmi"}, "no_hal": {"ablate": "hal"}}
MODELS = tuple(STUDENTS) + ("teacher",)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _splits(data: str, synthetic: dict, proto: str, fold: int, folds: int):
    """(train, valid, eval split, eval row indices into the full eval split)."""
    from hrlf.train import data as D

    ds = D.load_data(data, synthetic)
    if proto == "A":
        te = ds.splits["test"]
        return ds.splits["train"], ds.splits["valid"], te, np.arange(len(te))
    te = ds.splits["test"]
    f = group_folds(te.group, folds)
    held = np.flatnonzero(f == fold)
    pool = np.flatnonzero(f != fold)
    inner = group_folds(te.group[pool], folds)  # one fifth of the pool's videos
    return (te.subset(pool[inner != 0]), te.subset(pool[inner == 0]), te.subset(held), held)


def run_job(job: dict) -> dict:
    """Train and score every model for one (protocol, fold, seed); returns scores per model.

    Returns:
        ``{"job": job, "idx": held-out rows, "label": labels, "scores": {model: {cond: (n,)}},
        "intra": {model: curve} (sequence data only), "embedding": {...} (first job only)}``.
    """
    import torch

    from hrlf.train import evaluate as E
    from hrlf.train import loop as L
    from hrlf.train.run import seed_everything

    t0, c0 = time.time(), time.process_time()
    tr, va, ev, idx = _splits(job["data"], job["synthetic"], job["proto"], job["fold"], job["folds"])
    if job.get("score") == "valid":  # design decisions: score the validation part, never test
        ev, idx = va, np.arange(len(va))
    prep = L.prepare_splits(tr, va)
    batch = ev.batch(prep.norm)
    base = {"model": {}, **job.get("config", {}), "epochs": job["epochs"], "seed": job["seed"]}
    out = {"job": job, "idx": idx, "label": ev.label, "scores": {}, "intra": {}, "epochs": {}}
    nets = {}
    seed_everything(job["seed"])
    teacher = L.train_teacher(L.TrainConfig(**base), prep)
    nets["teacher"] = teacher
    for name, kw in STUDENTS.items():
        seed_everything(job["seed"])
        cfg = L.TrainConfig(**base, **kw)
        stage = L.make_student_stage(cfg, L._dims(prep), teacher, L.frames_of(prep))
        L.run_stage(stage, prep, cfg.epochs)
        nets[name] = stage.best_net()
        out["epochs"][name] = stage.epoch
    for name, net in nets.items():
        out["scores"][name] = {c: E.scores(net, protocol.apply_condition(batch, c))
                               for c in protocol.CONDITIONS}
        if job.get("intra"):
            out["intra"][name] = E.intra_curve(net, batch, ev.label, job["eval_seed"])
    if job.get("embed"):
        cls = np.digitize(ev.label, (-0.5, 0.5))
        out["embedding"] = {
            f"{name}, {protocol.condition_label(c)}": (
                E.project_2d(E.representations(nets[name], protocol.apply_condition(batch, c)),
                             job["eval_seed"]), cls)
            for name in ("hrlf", "dropout") for c in ("lav", "l")}
    out["seconds"], out["cpu_s"] = time.time() - t0, time.process_time() - c0
    del torch
    return out


def _metrics(scores: dict, label: np.ndarray) -> dict:
    res = {c: regression_metrics(scores[c], label) for c in protocol.CONDITIONS}
    from hrlf.train.evaluate import average6

    res["avg6"] = average6(res)
    return res


def collect(results: list[dict], proto: str, seeds, n_eval: int | None) -> dict:
    """Per model: metrics per seed (B: held-out predictions pooled over folds), aggregated.

    Runs scored on validation parts (``--score valid``) are not pooled: each (fold, seed)
    counts as one run.
    """
    from hrlf.train.evaluate import aggregate

    per_model = {m: [] for m in MODELS}
    if any(r["job"].get("score") == "valid" for r in results):
        for r in results:
            if r["job"]["proto"] == proto:
                for m in MODELS:
                    per_model[m].append(_metrics(r["scores"][m], r["label"]))
        return {m: aggregate(v) for m, v in per_model.items() if v}
    for seed in seeds:
        parts = [r for r in results if r["job"]["proto"] == proto and r["job"]["seed"] == seed]
        if not parts:
            continue
        n = n_eval or sum(len(p["idx"]) for p in parts)
        label = np.zeros(n, np.float32)
        for p in parts:
            label[p["idx"]] = p["label"]
        for m in MODELS:
            pooled = {c: np.zeros(n, np.float32) for c in protocol.CONDITIONS}
            for p in parts:
                for c in protocol.CONDITIONS:
                    pooled[c][p["idx"]] = p["scores"][m][c]
            per_model[m].append(_metrics(pooled, label))
    return {m: aggregate(v) for m, v in per_model.items() if v}


def jobs_for(args) -> list[dict]:
    config = {}
    if args.config:
        with open(args.config) as f:
            config = json.load(f)
    common = dict(data=args.data, synthetic=config.pop("synthetic", {}), epochs=args.epochs,
                  folds=args.folds, eval_seed=1234, intra=args.data == "synthetic",
                  config=config, score=args.score)
    jobs = []
    if "A" in args.protocols:
        jobs += [dict(common, proto="A", fold=0, seed=s, embed=(s == args.seeds[0]))
                 for s in args.seeds]
    if "B" in args.protocols:
        jobs += [dict(common, proto="B", fold=k, seed=s) for s in args.seeds
                 for k in range(args.folds)]
    return jobs


def run_all(jobs: list[dict], workers: int, log=print) -> list[dict]:
    """Run jobs in ``workers`` processes (1 torch thread each), biggest first."""
    if workers <= 1:
        _init_worker()
        return [run_job(j) for j in jobs]
    ctx = mp.get_context("spawn")
    out = []
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
        futures = [pool.submit(run_job, j) for j in jobs]
        for f in futures:
            r = f.result()
            j = r["job"]
            log(f"done {j['proto']} fold {j['fold']} seed {j['seed']} in {r['seconds']:.0f} s "
                f"(epochs {r['epochs']})")
            out.append(r)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data/mosi", help="MOSI npz/folder or 'synthetic'")
    ap.add_argument("--out", default="results", help="output folder [results]")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--protocols", default="AB", help="A, B or AB [AB]")
    ap.add_argument("--config", default=None, help="JSON of TrainConfig fields for every model")
    ap.add_argument("--score", choices=("test", "valid"), default="test",
                    help="'valid' scores the (inner) validation parts instead of test, for "
                         "design decisions that must not look at test labels")
    ap.add_argument("--render", metavar="NAME", default=None,
                    help="only rewrite OUT/NAME.md from OUT/NAME.json and OUT/NAME.notes.md")
    args = ap.parse_args(argv)
    from hrlf.train import summary

    if args.render:
        print(summary.render(args.out, args.render))
        return {}

    t0 = time.time()
    jobs = jobs_for(args)
    results = run_all(jobs, args.workers)
    wall = time.time() - t0
    res = summary.build(args, results, wall)
    summary.write(res, results, args.out, args.data)
    print(f"wall time {wall:.0f} s; wrote {args.out}")
    return res


if __name__ == "__main__":
    main()
