"""The linear-probe floor: ridge regression on window means, per modality and on all.

Every ``hrlf-train`` run fits it on the same normalized train windows the networks see and
scores it on the same valid windows, so a student can be compared with what a linear model
gets from the features alone. Each window becomes the mean of its valid (unmasked) frames
per modality (zeros for an absent modality); ridge's alpha is chosen by grouped
cross-validation on the train split (folds by recording, so windows of one clip never sit
on both sides). A student worse than the floor, or no better than predicting the train
mean, gets a one-line warning that says what to try (:func:`floor_warning`).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..runtime.metrics import regression_metrics
from ..runtime.spec import MODALITIES, frame_mask_name

PROBES = MODALITIES + ("all",)
ALPHAS = tuple(float(a) for a in np.logspace(-2, 4, 13))
KEEP = ("acc2", "f1", "mae", "corr")
#: A student is "worse" than the floor when its valid MAE exceeds the floor's by this much
#: or its sign accuracy is lower by this much: a few valid clips make both noisy.
MAE_TOL, ACC_TOL = 0.25, 0.1
#: "Learned nothing": valid MAE at least this fraction of a constant predictor's.
NOTHING_FRAC = 0.9
#: "Nothing learnable": every modality's clip-wise CV probe on train leaves more than this
#: fraction of the label variance unexplained (see :func:`cv_skill`).
NOTHING_CV = 0.6


def window_means(batch: Mapping[str, np.ndarray], modalities=MODALITIES) -> np.ndarray:
    """(N, sum d_m) masked mean over each window's valid frames, modalities concatenated."""
    parts = []
    for m in modalities:
        mask = batch[frame_mask_name(m)].astype(np.float64)        # (N, T)
        x = batch[m].astype(np.float64)                             # (N, T, d)
        n = mask.sum(1, keepdims=True)
        parts.append((x * mask[..., None]).sum(1) / np.maximum(n, 1.0))
    return np.concatenate(parts, axis=1)


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float):
    """Closed-form ridge with an unpenalized intercept; returns (w, b)."""
    mx, my = x.mean(0), y.mean()
    xc = x - mx
    if xc.shape[0] < xc.shape[1]:  # dual form: (n x n) system
        k = xc @ xc.T
        w = xc.T @ np.linalg.solve(k + alpha * np.eye(len(k)), y - my)
    else:
        w = np.linalg.solve(xc.T @ xc + alpha * np.eye(xc.shape[1]), xc.T @ (y - my))
    return w, my - mx @ w


def choose_alpha(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 5) -> float:
    """Alpha with the lowest grouped cross-validated MSE (folds by group)."""
    fold = _folds(groups, folds)
    if fold is None:
        return 1.0
    return ALPHAS[int(np.argmin([_cv_se(x, y, fold, a) for a in ALPHAS]))]


def cv_skill(train: Mapping[str, np.ndarray], train_y: np.ndarray,
             train_groups: np.ndarray) -> dict[str, float]:
    """Per modality, the label variance a ridge probe leaves unexplained on held-out clips.

    Grouped (by clip) cross-validation on the train split only; 1.0 = no better than the
    mean, 0.0 = perfect. Used by :func:`hrlf.train.regime.choose` on small data.
    """
    y = np.asarray(train_y, np.float64)
    folds = _folds(train_groups)
    if folds is None:
        return {}
    out = {}
    for m in MODALITIES:
        x = window_means(train, (m,))
        base = sum(float(np.sum((y[folds != k].mean() - y[folds == k]) ** 2))
                   for k in np.unique(folds))
        best = min(_cv_se(x, y, folds, a) for a in ALPHAS)
        out[m] = round(best / base, 4) if base > 0 else 1.0
    return out


def _folds(groups: np.ndarray, folds: int = 5) -> np.ndarray | None:
    uniq = np.unique(groups)
    if len(uniq) < 3:
        return None
    rng = np.random.default_rng(0)
    fold_of = dict(zip(rng.permutation(uniq), np.arange(len(uniq)) % min(folds, len(uniq))))
    return np.array([fold_of[g] for g in groups])


def _cv_se(x: np.ndarray, y: np.ndarray, fold: np.ndarray, alpha: float) -> float:
    se = 0.0
    for k in np.unique(fold):
        tr, te = fold != k, fold == k
        w, b = _ridge(x[tr], y[tr], alpha)
        se += float(np.sum((x[te] @ w + b - y[te]) ** 2))
    return se


def fit_probes(train: Mapping[str, np.ndarray], train_y: np.ndarray, train_groups: np.ndarray,
               valid: Mapping[str, np.ndarray], valid_y: np.ndarray,
               valid_groups: np.ndarray | None = None) -> dict:
    """Fit the four probes on train windows and score them on valid windows.

    Args:
        train, valid: normalized model batches (as the networks see them).
        train_groups: recording id per train window (for the alpha search).
        valid_groups: recording id per valid window; adds clip-level metrics.

    Returns:
        ``{probe: {"alpha", "acc2", "f1", "mae", "corr"[, "clip"]}, "constant": {...},
        "floor": name of the probe with the lowest valid MAE}``.
    """
    out = {}
    for name in PROBES:
        mods = MODALITIES if name == "all" else (name,)
        xtr, xva = window_means(train, mods), window_means(valid, mods)
        alpha = choose_alpha(xtr, train_y.astype(np.float64), train_groups)
        w, b = _ridge(xtr, train_y.astype(np.float64), alpha)
        pred = np.clip(xva @ w + b, -3.0, 3.0)
        out[name] = {"alpha": alpha, **_metrics(pred, valid_y, valid_groups)}
    const = np.full(len(valid_y), float(np.mean(train_y)))
    out["constant"] = _metrics(const, valid_y, valid_groups)
    out["floor"] = min(PROBES, key=lambda n: out[n]["mae"])
    return out


def _metrics(pred: np.ndarray, y: np.ndarray, groups) -> dict:
    res = regression_metrics(pred, y)
    out = {k: round(float(res[k]), 4) for k in KEEP}
    if groups is not None:
        from .evaluate import clip_metrics

        out["clip"] = clip_metrics(pred, y, groups)
    return out


def floor_warning(student: Mapping[str, float], probes: Mapping) -> str | None:
    """One line when the student (valid, all modalities) is worse than the floor or learned
    nothing; None when it is fine.

    Args:
        student: the student's valid metrics (``mae``, ``acc2``) with all modalities.
        probes: :func:`fit_probes` output, with ``cv_unexplained`` (:func:`cv_skill`) where
            it was computed (small data).
    """
    cv = probes.get("cv_unexplained") or {}
    if cv and min(cv.values()) > NOTHING_CV:
        parts = ", ".join(f"{m} {max(0.0, 1 - r):.0%}" for m, r in cv.items())
        return ("no modality carries the label from clip to clip in the train split (a ridge "
                f"probe cross-validated by clip explains {parts} of its variance): the "
                "features do not carry these labels; check the labels, add clips, or make "
                "sure the words/voice/face carry the sentiment")
    const = probes["constant"]["mae"]
    floor = probes["floor"]
    f = probes[floor]
    s_mae, s_acc = float(student["mae"]), float(student["acc2"])
    if s_mae >= NOTHING_FRAC * const:
        if f["mae"] >= NOTHING_FRAC * const:
            return (f"the student learned nothing (valid MAE {s_mae:.2f}; predicting the train "
                    f"mean: {const:.2f}) and neither did the linear probe ({floor}: "
                    f"{f['mae']:.2f}): the features do not carry these labels; check the "
                    "labels, add clips, or make sure the words/voice/face carry the sentiment")
        return (f"the student learned nothing (valid MAE {s_mae:.2f}; predicting the train "
                f"mean: {const:.2f}) but the {floor} probe did ({f['mae']:.2f}); try more "
                "steps (--config '{\"min_steps\": 1500}'), --baseline dropout, or more clips")
    if s_mae > f["mae"] + MAE_TOL or s_acc < f["acc2"] - ACC_TOL:
        return (f"the student is worse than the linear probe on valid (MAE {s_mae:.2f} vs "
                f"{f['mae']:.2f}, sign accuracy {s_acc:.2f} vs {f['acc2']:.2f}, {floor} probe); "
                "try more steps (--config '{\"min_steps\": 1500}'), --baseline dropout, or "
                "more clips")
    return None


def summary_line(student: Mapping[str, float], probes: Mapping) -> str:
    """``valid MAE / sign acc: student 0.41/1.00 | probe all 0.35/1.00, text ..., constant``."""
    parts = [f"student {student['mae']:.2f}/{student['acc2']:.2f}"]
    parts += [f"{n} {probes[n]['mae']:.2f}/{probes[n]['acc2']:.2f}" for n in PROBES]
    parts.append(f"constant {probes['constant']['mae']:.2f}")
    return ("valid MAE/sign-acc (windows, all modalities): " + " | ".join(parts)
            + f"; floor = {probes['floor']} probe")
