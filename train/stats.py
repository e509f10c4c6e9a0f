"""Paired comparisons with a video-level bootstrap of the test set (numpy only).

A bootstrap replicate draws the test set's videos with replacement; a clip's weight is the
number of times its video was drawn. Every metric is computed as a *weighted* statistic of
the clips, so one (B, N) weight matrix scores all replicates at once, and the same
replicates are used for every model and seed: the differences are paired.

* :func:`video_weights`: the (B, N) replicate weights (row 0 is not special).
* :func:`weighted_metrics`: F1 / Acc-2 (zero labels excluded, as the tables), MAE, Pearson
  r and the AUC of the sign (``label > 0`` ranked by the score) for every replicate.
* :func:`compare`: per-seed paired differences HRLF - other with percentile intervals,
  their mean over seeds with an interval that resamples videos (seeds fixed) and one that
  resamples seeds *and* videos (the one the verdict uses).
* :func:`verdict`: ``better`` / ``worse`` / ``indistinguishable`` from an interval.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

#: Metrics the bootstrap computes, and whether higher is better.
HIGHER_IS_BETTER = {"f1": True, "acc2": True, "corr": True, "auc": True, "mae": False}
BOOT_METRICS = tuple(HIGHER_IS_BETTER)


def video_weights(groups: Sequence, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, N) clip weights of a bootstrap over the distinct values of ``groups``."""
    groups = np.asarray(groups)
    uniq, inv = np.unique(groups, return_inverse=True)
    draws = rng.integers(0, len(uniq), size=(n_boot, len(uniq)))
    counts = np.zeros((n_boot, len(uniq)))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    return counts[:, inv]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def weighted_f1_acc(w: np.ndarray, true: np.ndarray, pred: np.ndarray):
    """Support-weighted binary F1 and accuracy for weights ``w`` (B, N); bools (N,)."""
    tp1 = w @ (true & pred)
    fp1 = w @ (~true & pred)
    fn1 = w @ (true & ~pred)
    tp0 = w @ (~true & ~pred)
    sup1, sup0 = tp1 + fn1, tp0 + fp1
    f1_1 = _ratio(2 * tp1, 2 * tp1 + fp1 + fn1)
    f1_0 = _ratio(2 * tp0, 2 * tp0 + fn1 + fp1)
    tot = sup1 + sup0
    return _ratio(sup1 * f1_1 + sup0 * f1_0, tot), _ratio(tp1 + tp0, tot)


def weighted_corr(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weighted Pearson r per row of ``w``; 0.0 where either side is constant."""
    x, y = x - x.mean(), y - y.mean()  # exact zeros for a constant side
    tot = w.sum(1)
    mx, my = _ratio(w @ x, tot), _ratio(w @ y, tot)
    vx = _ratio(w @ (x * x), tot) - mx ** 2
    vy = _ratio(w @ (y * y), tot) - my ** 2
    cov = _ratio(w @ (x * y), tot) - mx * my
    den = np.sqrt(np.clip(vx, 0, None) * np.clip(vy, 0, None))
    return np.where(den > 1e-12, cov / np.where(den > 1e-12, den, 1.0), 0.0)


def weighted_auc(w: np.ndarray, score: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Weighted ROC AUC of ``score`` for the boolean ``positive`` (ties count one half).

    0.5 where a replicate has no positive or no negative sample.
    """
    order = np.argsort(score, kind="stable")
    s, pos = score[order], positive[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # groups of tied scores
    ws = w[:, order]
    gp = np.add.reduceat(ws * pos, starts, axis=1)
    gn = np.add.reduceat(ws * ~pos, starts, axis=1)
    below = np.cumsum(gn, axis=1) - gn
    num = np.sum(gp * (below + 0.5 * gn), axis=1)
    den = gp.sum(1) * gn.sum(1)
    return np.where(den > 0, _ratio(num, den), 0.5)


def weighted_metrics(score: np.ndarray, label: np.ndarray, w: np.ndarray) -> dict:
    """Every metric of :data:`BOOT_METRICS` for each row of ``w`` (B, N): dict of (B,).

    F1, Acc-2 and AUC leave out clips with label 0 (class ``> 0``), as the tables do; MAE
    and Pearson r use every clip.
    """
    x = np.asarray(score, np.float64).reshape(-1)
    y = np.asarray(label, np.float64).reshape(-1)
    w = np.atleast_2d(np.asarray(w, np.float64))
    nz = y != 0
    wz = w * nz
    f1, acc2 = weighted_f1_acc(wz, y > 0, x > 0)
    return {"f1": f1, "acc2": acc2, "mae": _ratio(w @ np.abs(x - y), w.sum(1)),
            "corr": weighted_corr(w, x, y),
            "auc": weighted_auc(wz[:, nz], x[nz], y[nz] > 0)}


def interval(samples: np.ndarray, level: float = 0.95) -> list[float]:
    """Percentile interval of bootstrap ``samples``."""
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(np.asarray(samples, np.float64), [a, 1.0 - a])
    return [float(lo), float(hi)]


def verdict(ci: Sequence[float], higher_is_better: bool = True) -> str:
    """``better`` when the interval of (HRLF - other) excludes 0 on the good side, ``worse``
    when it excludes 0 on the bad side, else ``indistinguishable``."""
    lo, hi = float(ci[0]), float(ci[1])
    if lo > 0 or hi < 0:
        good = lo > 0 if higher_is_better else hi < 0
        return "better" if good else "worse"
    return "indistinguishable"


def compare(ours: np.ndarray, other: np.ndarray, point_ours: np.ndarray,
            point_other: np.ndarray, rng: np.random.Generator, higher_is_better: bool = True,
            level: float = 0.95) -> dict:
    """Paired comparison of one metric over seeds.

    Args:
        ours, other: (S, B) metric per seed and bootstrap replicate (same replicates).
        point_ours, point_other: (S,) metric per seed on the actual test set.
        rng: draws the seeds of the two-level bootstrap.

    Returns:
        ``{"per_seed": [{"diff", "ci"}...], "mean_diff", "ci_videos" (seeds fixed),
        "ci" (seeds and videos resampled), "verdict"}``.
    """
    d = np.asarray(ours, np.float64) - np.asarray(other, np.float64)
    pd = np.asarray(point_ours, np.float64) - np.asarray(point_other, np.float64)
    s, b = d.shape
    pick = rng.integers(0, s, size=(b, s))  # replicate r uses seeds pick[r] and videos r
    two_level = d[pick, np.arange(b)[:, None]].mean(1)
    ci = interval(two_level, level)
    return {"per_seed": [{"diff": float(pd[i]), "ci": interval(d[i], level)} for i in range(s)],
            "mean_diff": float(pd.mean()), "ci_videos": interval(d.mean(0), level), "ci": ci,
            "verdict": verdict(ci, higher_is_better),
            "seeds_favouring": int(np.sum(pd > 0 if higher_is_better else pd < 0))}


def summarize(samples: np.ndarray, points: np.ndarray, rng: np.random.Generator,
              level: float = 0.95) -> dict:
    """Mean over seeds of one model's metric, with the two-level bootstrap interval."""
    x = np.asarray(samples, np.float64)
    s, b = x.shape
    pick = rng.integers(0, s, size=(b, s))
    return {"mean": float(np.mean(points)), "std": float(np.std(points)),
            "ci": interval(x[pick, np.arange(b)[:, None]].mean(1), level)}


def boot_table(preds: Mapping[str, Sequence[Mapping[str, np.ndarray]]], label: np.ndarray,
               groups: Sequence, conditions: Sequence[str], n_boot: int = 1000,
               seed: int = 0, avg6: bool = True) -> dict:
    """Metric samples for every model, seed and condition, plus ``avg6`` over ``conditions[:6]``.

    Args:
        preds: model -> list over seeds of {condition: (N,) scores}.
        label, groups: (N,) labels and video ids of the scored clips.
        conditions: the condition keys; the first six are averaged into ``avg6`` (unless
            ``avg6`` is False, e.g. for intra-ratio curves).

    Returns:
        model -> cond -> metric -> {"boot": (S, B), "point": (S,)}.
    """
    w = video_weights(groups, n_boot, np.random.default_rng(seed))
    ones = np.ones((1, len(label)))
    out = {}
    for m, seeds in preds.items():
        res = {c: {k: {"boot": [], "point": []} for k in BOOT_METRICS}
               for c in list(conditions) + (["avg6"] if avg6 else [])}
        for per_cond in seeds:
            b6, p6 = {k: 0.0 for k in BOOT_METRICS}, {k: 0.0 for k in BOOT_METRICS}
            for i, c in enumerate(conditions):
                bm = weighted_metrics(per_cond[c], label, w)
                pm = weighted_metrics(per_cond[c], label, ones)
                for k in BOOT_METRICS:
                    res[c][k]["boot"].append(bm[k])
                    res[c][k]["point"].append(float(pm[k][0]))
                    if i < 6:
                        b6[k] = b6[k] + bm[k] / 6
                        p6[k] = p6[k] + float(pm[k][0]) / 6
            for k in BOOT_METRICS if avg6 else ():
                res["avg6"][k]["boot"].append(b6[k])
                res["avg6"][k]["point"].append(p6[k])
        out[m] = {c: {k: {"boot": np.array(v["boot"]), "point": np.array(v["point"])}
                      for k, v in d.items()} for c, d in res.items()}
    return out


def paired_report(table: dict, ref: str, seed: int = 1) -> dict:
    """``ref`` against every other model of a :func:`boot_table`, and each model's summary.

    Returns:
        ``{"models": {model: {cond: {metric: summary}}}, "paired": {other: {cond: {metric:
        compare(...)}}}}``.
    """
    rng = np.random.default_rng(seed)
    models = {m: {c: {k: summarize(v["boot"], v["point"], rng) for k, v in d.items()}
                  for c, d in conds.items()} for m, conds in table.items()}
    paired = {}
    for other, conds in table.items():
        if other == ref:
            continue
        paired[other] = {c: {k: compare(table[ref][c][k]["boot"], v["boot"],
                                        table[ref][c][k]["point"], v["point"], rng,
                                        HIGHER_IS_BETTER[k])
                             for k, v in d.items()} for c, d in conds.items()}
    return {"models": models, "paired": paired}
