"""Reproduce results/: MOSI (2 protocols, 10 seeds, tuned and isolating baselines) and the
harder synthetic benchmark, in one command:

    python -m hrlf.train.reproduce --data ../shared/data/mosi --out results/

Order of work (every job: one process, one torch thread; ``--workers`` processes):

1. **Sweep** (MOSI train/valid split only; never a test-split video). HRLF: the HMI/HAL/KD
   weight w in {0.01, 0.1, 1} x HMI/HAL summed over the five representations or averaged
   over scales (6 trials). Dropout student, its own knobs: lr in {5e-4, 1e-3, 2e-3} x
   model dropout default or raised (6 trials). Criterion: the validation loss (mean over
   the 7 conditions), mean over the sweep seeds.
1b. **Design** (same split and seeds): at the chosen weights, the design choices of earlier
   rounds are made again: the adopted design and one deviation at a time (full MSM, I1-Ht
   after dropout, joint clipping, minimax HAL; :data:`DESIGN_GRID`), same criterion.
   The choice of steps 1 and 1b is frozen here.
2. **Protocol A** (one job per seed): train on train, select on valid, score test.
3. **Protocol B** (one job per seed and outer fold): 5-fold CV over the *test* split's
   videos; inside each outer fold, one fifth of the training videos is the inner
   validation set used for early stopping; held-out predictions pooled per seed.
   Nothing of B is used to choose anything (steps 1 and 1b ran before and never saw these
   videos).
4. **Harder synthetic benchmark** (:mod:`hrlf.train.benchmark`), protocol A, 5 seeds,
   started with the sweep so both workers stay busy.

Models: ``hrlf`` (chosen weights), ``dropout`` (chosen knobs), ``msm_only`` (L_task under
HRLF's own MSM corruption, no teacher), ``kd_only`` (L_task + L_KD under MSM, the chosen
w_KD), ``no_frf``/``no_hmi``/``no_hal`` (HRLF minus one term; protocol A), and the frozen
``teacher``. One teacher per (seed, fold) is shared by every student that needs one.
Statistics, tables and plots: :mod:`hrlf.train.summary`.
"""
from __future__ import annotations

import json
import os
import pickle
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
import multiprocessing as mp

import numpy as np

from ..runtime import protocol
from ..runtime.datasets import group_folds

SEEDS = tuple(range(10))
SWEEP_SEEDS = (100, 101)
SYN_SEEDS = (0, 1, 2, 3, 4)
#: Training budget of every MOSI model (shorter than the 50/10/5 of single runs; see README).
BUDGET = {"epochs": 30, "early_stop": 6, "lr_patience": 3}
#: The harder synthetic benchmark trains to convergence: early stopping decides.
SYN_BUDGET = {"epochs": 150, "early_stop": 8, "lr_patience": 3, "min_delta": 0.002,
              "model": {"layers": 2}}
HRLF_GRID = [{"w_hmi": w, "w_hal": w, "w_kd": w, "scale_reduce": r}
             for r in ("sum", "mean") for w in (0.01, 0.1, 1.0)]
_RAISED = {"embed_dropout": 0.3, "attn_dropout": 0.2, "out_dropout": 0.2}
DROPOUT_GRID = [{"baseline": "dropout", "lr": lr, "model": dict(m)}
                for lr in (5e-4, 1e-3, 2e-3) for m in ({}, _RAISED)]
ABLATION_MODELS = ("no_frf", "no_hmi", "no_hal")
#: Design choices of earlier rounds, re-made here on the train/valid split at the chosen
#: weights (step 1b): the adopted design, then one deviation at a time.
DESIGN_GRID = [{}, {"msm": "full"}, {"model": {"reps_after_dropout": True}},
               {"clip": "joint"}, {"hal_form": "minimax"}]
DESIGN_NAMES = ["adopted (inter-only MSM on one-frame clips, I1-Ht before dropout, "
                "separate clipping, non-saturating HAL)", "full MSM of §6.6",
                "I1-Ht after dropout", "one clipping norm over network and HMI critics",
                "HAL in the paper's minimax form"]
#: the keys of a design that the isolating baselines share with HRLF (its corruption and
#: representations; clipping and the HAL form have nothing to act on without HMI/HAL)
_SHARED_DESIGN = ("msm", "clip")


def students(hrlf: dict, dropout: dict, ablations: bool) -> dict:
    """Model name -> TrainConfig overrides, given the chosen HRLF and dropout settings."""
    shared = {k: hrlf[k] for k in _SHARED_DESIGN if k in hrlf}
    if hrlf.get("model", {}).get("reps_after_dropout"):
        shared["model"] = {"reps_after_dropout": True}
    out = {"hrlf": dict(hrlf), "dropout": dict(dropout),
           "msm_only": {"baseline": "msm_only", **shared},
           "kd_only": {"baseline": "kd_only", "w_kd": hrlf.get("w_kd", 1.0), **shared}}
    if ablations:
        out.update({f"no_{t}": {**hrlf, "ablate": t} for t in ("frf", "hmi", "hal")})
    return out


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _splits(data: str, synthetic: dict, proto: str, fold: int, folds: int):
    """(train, valid, eval split, eval row indices into the full eval split)."""
    from . import data as D

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


def _merge(base: dict, over: dict) -> dict:
    return {**base, **over, "model": {**base.get("model", {}), **over.get("model", {})}}


def _train(job: dict, prep, teacher):
    """Train every student of ``job``; returns ({name: net}, {name: info})."""
    from . import loop as L
    from .run import seed_everything

    nets, info = {}, {}
    base = {**job["budget"], "seed": job["seed"]}
    for name, over in job["students"].items():
        seed_everything(job["seed"])
        cfg = L.TrainConfig(**_merge(base, over))
        stage = L.make_student_stage(cfg, L._dims(prep), teacher, L.frames_of(prep))
        L.run_stage(stage, prep, cfg.epochs)
        nets[name] = stage.best_net()
        info[name] = {"epochs": stage.epoch, "converged": stage.bad >= cfg.early_stop,
                      "best_valid_loss": stage.best_loss,
                      "z_std_epochs": [h["z_std"] for h in stage.history]}
    return nets, info


def run_job(job: dict) -> dict:
    """Train and score the models of one (kind, protocol, fold, seed) job.

    Returns:
        ``{"job", "idx", "label", "group", "scores": {model: {cond: (n,)}}, "intra":
        {model: {mode: {ratio: (n,)}}}, "info": {model: {...}}, "z_std": {model: {cond:
        {...}}}, "seconds", "cpu_s"}``; a sweep job scores the validation part.
    """
    from . import evaluate as E
    from . import loop as L
    from .benchmark import INTRA_MODES
    from .run import seed_everything

    t0, c0 = time.time(), time.process_time()
    tr, va, ev, idx = _splits(job["data"], job["synthetic"], job["proto"], job["fold"],
                              job["folds"])
    if job["kind"] == "sweep":
        ev, idx = va, np.arange(len(va))
    prep = L.prepare_splits(tr, va)
    out = {"job": job, "idx": idx, "label": ev.label, "group": ev.group, "scores": {},
           "intra": {}, "info": {}, "z_std": {}}
    teacher, nets = None, {}
    if any(L.TrainConfig(**_merge(job["budget"], o)).needs_teacher
           for o in job["students"].values()):
        seed_everything(job["seed"])
        stage = L.make_teacher_stage(L.TrainConfig(**{**job["budget"], "seed": job["seed"]}),
                                     L._dims(prep))
        L.run_stage(stage, prep, stage.cfg.epochs)
        teacher = stage.best_net()
        out["info"]["teacher"] = {"epochs": stage.epoch, "best_valid_loss": stage.best_loss,
                                  "converged": stage.bad >= stage.cfg.early_stop}
    trained, info = _train(job, prep, teacher)
    out["info"].update(info)
    nets.update(trained)
    if teacher is not None and job["kind"] != "sweep" and job.get("score_teacher", True):
        nets["teacher"] = teacher
    batch = ev.batch(prep.norm)
    for name, net in nets.items():
        out["scores"][name] = {c: E.scores(net, protocol.apply_condition(batch, c))
                               for c in protocol.CONDITIONS}
        out["z_std"][name] = {c: L.z_spread(net, protocol.apply_condition(batch, c))
                              for c in ("lav", "a")}
        if job.get("intra"):
            out["intra"][name] = {
                mode: {float(r): E.scores(net, f(batch, r, np.random.default_rng([1234, i, k])))
                       for i, r in enumerate(protocol.INTRA_RATIOS)}
                for k, (mode, f) in enumerate(INTRA_MODES.items())}
    out["seconds"], out["cpu_s"] = time.time() - t0, time.process_time() - c0
    return out


def sweep_jobs(args) -> list[dict]:
    common = dict(kind="sweep", data=args.data, synthetic={}, proto="A", fold=0,
                  folds=args.folds, budget=_budget(args, BUDGET))
    jobs = []
    for s in args.sweep_seeds:
        jobs.append(dict(common, seed=s, family="hrlf",
                         students={f"hrlf#{i}": g for i, g in enumerate(HRLF_GRID)}))
        jobs.append(dict(common, seed=s, family="dropout",
                         students={f"dropout#{i}": g for i, g in enumerate(DROPOUT_GRID)}))
    return jobs


def _lowest(results: list[dict], family: str, grid: list[dict]) -> dict:
    """The trial of ``family`` with the lowest validation loss, mean over the seeds."""
    rs = [r for r in results if r["job"]["family"] == family]
    losses = np.array([[r["info"][f"{family}#{i}"]["best_valid_loss"]
                        for i in range(len(grid))] for r in rs])
    mean = losses.mean(0)
    best = int(np.argmin(mean))
    return {"grid": grid, "seeds": [r["job"].get("seed") for r in rs],
            "valid_loss_mean": mean.round(5).tolist(), "valid_loss_per_seed": losses.tolist(),
            "chosen": best, "config": grid[best]}


def choose(sweep: list[dict]) -> dict:
    """The trial with the lowest mean validation loss over the sweep seeds, per family."""
    return {family: _lowest(sweep, family, grid)
            for family, grid in (("hrlf", HRLF_GRID), ("dropout", DROPOUT_GRID))}


def design_jobs(args, chosen: dict) -> list[dict]:
    """Step 1b: at the chosen weights, the adopted design and one deviation at a time, on
    the train/valid split (the sweep seeds), so B's videos inform no design choice."""
    h = chosen["hrlf"]["config"]
    return [dict(kind="sweep", data=args.data, synthetic={}, proto="A", fold=0,
                 folds=args.folds, budget=_budget(args, BUDGET), seed=s, family="design",
                 students={f"design#{i}": _merge(h, g) for i, g in enumerate(DESIGN_GRID)})
            for s in args.sweep_seeds]


def choose_design(design: list[dict], chosen: dict) -> dict:
    """The design with the lowest mean validation loss; HRLF's final config in
    ``chosen["design"]["config"]``. ``repeat_check``: the adopted design's loss here minus
    the same trial's in the weight sweep (same seed and teacher: 0 when training is
    deterministic)."""
    d = _lowest(design, "design", DESIGN_GRID)
    k = chosen["hrlf"]["chosen"]
    sweep_loss = {s: v[k] for s, v in zip(chosen["hrlf"].get("seeds", []),
                                          chosen["hrlf"]["valid_loss_per_seed"])}
    rep = [float(r["info"]["design#0"]["best_valid_loss"] - sweep_loss[r["job"]["seed"]])
           for r in design if r["job"]["seed"] in sweep_loss]
    return {**chosen, "design": {
        **d, "names": DESIGN_NAMES, "repeat_check": rep,
        "config": _merge(chosen["hrlf"]["config"], d["config"])}}


def eval_jobs(args, chosen: dict) -> list[dict]:
    """A and B jobs of the core models, then (last, so an interrupted run loses them first)
    one protocol-A job per seed for the three ablations (it retrains the same teacher)."""
    common = dict(kind="eval", data=args.data, synthetic={}, folds=args.folds,
                  budget=_budget(args, BUDGET))
    h = chosen["design"]["config"] if "design" in chosen else chosen["hrlf"]["config"]
    d = chosen["dropout"]["config"]
    core = students(h, d, False)
    jobs = []
    if "A" in args.protocols:
        jobs += [dict(common, proto="A", fold=0, seed=s, students=core) for s in args.seeds]
    if "B" in args.protocols:
        jobs += [dict(common, proto="B", fold=k, seed=s, students=core)
                 for s in args.seeds for k in range(args.folds)]
    if "A" in args.protocols:
        abl = {k: v for k, v in students(h, d, True).items() if k in ABLATION_MODELS}
        jobs += [dict(common, proto="A", fold=0, seed=s, students=abl, part="ablations",
                      score_teacher=False) for s in args.seeds]
    return jobs


def synthetic_jobs(args) -> list[dict]:
    from .benchmark import HARDER

    syn = {**HARDER, **json.loads(args.synthetic_config or "{}")}
    return [dict(kind="eval", data="synthetic", synthetic=syn, proto="A", fold=0,
                 folds=args.folds, seed=s, intra=True, budget=_budget(args, SYN_BUDGET, True),
                 students=students({}, {"baseline": "dropout"}, False))
            for s in args.syn_seeds]


def _budget(args, base: dict, synthetic: bool = False) -> dict:
    b = dict(base)
    ep = args.syn_epochs if synthetic else args.epochs
    if ep:
        b["epochs"] = ep
    return b


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _key(job: dict) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(job, sort_keys=True, default=str).encode()).hexdigest()[:16]


class JobCache:
    """One pickle per finished job under ``OUT/.jobs/`` (ignored by git): a rerun of the
    same command skips what is done, and an interrupted run keeps its finished jobs."""

    def __init__(self, out: str):
        self.dir = os.path.join(out, ".jobs")
        os.makedirs(self.dir, exist_ok=True)

    def get(self, job: dict):
        path = os.path.join(self.dir, _key(job) + ".pkl")
        if os.path.isfile(path):
            with open(path, "rb") as f:
                return pickle.load(f)
        return None

    def put(self, result: dict) -> None:
        path = os.path.join(self.dir, _key(result["job"]) + ".pkl")
        with open(path + ".tmp", "wb") as f:
            pickle.dump(result, f)
        os.replace(path + ".tmp", path)


def _interleave(mosi: list[dict], syn: list[dict]) -> list[tuple[str, dict]]:
    """Seed-major order (A, then B's folds, then the synthetic job of that seed), ablation
    jobs last, so that an interrupted run has whole seeds of every main comparison."""
    out = []
    main = [j for j in mosi if not j.get("part")]
    for s in sorted({j["seed"] for j in main + syn}):
        out += [("mosi", j) for j in main if j["seed"] == s]
        out += [("synthetic", j) for j in syn if j["seed"] == s]
    return out + [("mosi", j) for j in mosi if j.get("part")]


def run_all(args, log=print) -> dict:
    """Sweep first, then MOSI A and B with the frozen choice and the synthetic benchmark."""
    ctx = mp.get_context("spawn")
    t0, loads = time.time(), [_load()]
    done = {"sweep": [], "design": [], "mosi": [], "synthetic": []}
    cache = JobCache(args.out)

    def take(fut, part):
        r = fut.result() if hasattr(fut, "result") else fut
        j = r["job"]
        loads.append(_load())
        cache.put(r)
        log(f"[{time.time() - t0:6.0f} s] {part} {j['proto']} fold {j['fold']} seed {j['seed']}"
            f" {r['seconds']:.0f} s (cpu {r['cpu_s']:.0f} s) load {loads[-1][0]}", flush=True)
        done[part].append(r)

    def submit(pool, job):
        hit = cache.get(job)
        return hit if hit is not None else pool.submit(run_job, job)

    with ProcessPoolExecutor(args.workers, mp_context=ctx, initializer=_init_worker) as pool:
        sw = [submit(pool, j) for j in (sweep_jobs(args) if args.data else [])]
        syn = synthetic_jobs(args) if args.synthetic else []
        early = [(("synthetic", submit(pool, j))) for j in syn[:1]]  # keeps both workers busy
        for f in sw:
            take(f, "sweep")
        chosen = choose(done["sweep"]) if sw else None
        for f in [submit(pool, j) for j in (design_jobs(args, chosen) if sw else [])]:
            take(f, "design")
        chosen = choose_design(done["design"], chosen) if sw else None
        queue = _interleave(eval_jobs(args, chosen) if sw else [], syn[1:])
        futs = early + [(part, submit(pool, j)) for part, j in queue]
        for part, f in futs:  # cached results first; then in the order jobs finish
            if not hasattr(f, "result"):
                take(f, part)
        part_of = {f: part for part, f in futs if hasattr(f, "result")}
        for f in as_completed(part_of):
            take(f, part_of[f])
    return {"chosen": chosen, "wall_s": time.time() - t0, "loadavg": loads, **done}


def partial_runs(args) -> dict:
    """The finished jobs of an interrupted run (summary keeps whole seeds), marked ``partial``."""
    cache = JobCache(args.out)
    sweep = [cache.get(j) for j in sweep_jobs(args)]
    if any(r is None for r in sweep):
        raise SystemExit("the sweep did not finish: nothing to summarize")
    chosen = choose(sweep)
    design = [cache.get(j) for j in design_jobs(args, chosen)]
    if any(r is None for r in design):
        raise SystemExit("the design step did not finish: nothing to summarize")
    chosen = choose_design(design, chosen)
    runs = {"chosen": chosen, "sweep": sweep, "design": design, "partial": True}
    for part, jobs in (("mosi", eval_jobs(args, chosen)), ("synthetic", synthetic_jobs(args))):
        runs[part] = [r for r in (cache.get(j) for j in jobs) if r is not None]
    times = [os.path.getmtime(p) for p in
             (os.path.join(cache.dir, f) for f in os.listdir(cache.dir))]
    runs.update(wall_s=max(times) - min(times), loadavg=[], args=vars(args),
                cpu_children_s=sum(r["cpu_s"] for p in ("sweep", "design", "mosi", "synthetic")
                                   for r in runs[p]))
    return runs


def reproduce(args) -> dict:
    """Train (or, with ``resummarize``, reload) every job and write the results files;
    ``args`` has the attributes of :func:`hrlf.train.reproduce.main`'s options."""
    from ..runtime import logs
    from . import summary

    log = logs.tool_log()
    cache = os.path.join(args.out, ".runs.pkl")
    if args.resummarize and args.partial:
        runs = partial_runs(args)
    elif args.resummarize:
        with open(cache, "rb") as f:
            runs = pickle.load(f)
    else:
        c0 = os.times()
        runs = run_all(args, log=log.info)
        c1 = os.times()
        runs["cpu_children_s"] = (c1.children_user + c1.children_system
                                  - c0.children_user - c0.children_system)
        runs["args"] = vars(args)
        os.makedirs(args.out, exist_ok=True)
        with open(cache, "wb") as f:
            pickle.dump(runs, f)
    if args.wall_note:
        runs["wall_note"] = args.wall_note
    if args.wall_s:  # a resumed run: the jobs' own CPU time, wherever they ran
        runs["wall_s"] = args.wall_s
        runs["cpu_children_s"] = sum(r["cpu_s"] for p in ("sweep", "design", "mosi", "synthetic")
                                     for r in runs.get(p, []))
    written = summary.write_all(runs, args.out, n_boot=args.n_boot)
    log.info("wall time %.0f s; wrote %s", runs["wall_s"], ", ".join(written))
    return runs
