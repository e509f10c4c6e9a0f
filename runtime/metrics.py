"""Sentiment metrics in the conventions of this literature (MulT / MMSA), numpy only.

Keys returned by :func:`regression_metrics`:
  * ``acc2``, ``f1``: negative vs positive, samples with label 0 excluded, class ``v > 0``
    (MulT's ``exclude_zero=True``; the paper's tables report this F1);
  * ``acc2_has0``, ``f1_has0``: negative vs non-negative on all samples, class ``v >= 0``;
  * ``acc7`` (``acc5``): predictions and labels clipped to [-3, 3] ([-2, 2]) and rounded;
  * ``mae``: mean |pred - label|, no clipping; ``corr``: Pearson r (0.0 when either side
    is constant, where r is undefined);
  * ``n``: number of samples.
F1 is sklearn's ``average='weighted'``: per-class F1 weighted by the class's support.
"""
from __future__ import annotations

import numpy as np


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Support-weighted F1 over the classes present in ``y_true`` (sklearn's 'weighted')."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.size == 0:
        return 0.0
    total = 0.0
    for c in np.unique(y_true):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        denom = 2 * tp + fp + fn
        f1 = 2 * tp / denom if denom else 0.0
        total += f1 * np.sum(y_true == c)
    return float(total / y_true.size)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0.0 where either input is constant (r undefined)."""
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    denom = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.sum(a * b) / denom) if denom > 0 else 0.0


def _acc_k(pred: np.ndarray, y: np.ndarray, bound: float) -> float:
    return float(np.mean(np.round(np.clip(pred, -bound, bound))
                         == np.round(np.clip(y, -bound, bound))))


def regression_metrics(pred: np.ndarray, label: np.ndarray) -> dict[str, float]:
    """All metrics of one prediction vector against labels in [-3, 3] (see module docstring).

    Raises:
        ValueError: shapes differ, inputs are empty, or contain NaN/Inf.
    """
    pred = np.asarray(pred, np.float64).reshape(-1)
    y = np.asarray(label, np.float64).reshape(-1)
    if pred.shape != y.shape or pred.size == 0:
        raise ValueError(f"metrics: {pred.size} predictions for {y.size} labels")
    if not (np.isfinite(pred).all() and np.isfinite(y).all()):
        raise ValueError("metrics: predictions or labels contain NaN/Inf")
    nz = y != 0
    cls_nz_true, cls_nz_pred = y[nz] > 0, pred[nz] > 0
    cls_true, cls_pred = y >= 0, pred >= 0
    return {
        "acc2": float(np.mean(cls_nz_true == cls_nz_pred)) if nz.any() else 0.0,
        "f1": weighted_f1(cls_nz_true, cls_nz_pred),
        "acc2_has0": float(np.mean(cls_true == cls_pred)),
        "f1_has0": weighted_f1(cls_true, cls_pred),
        "acc7": _acc_k(pred, y, 3.0),
        "acc5": _acc_k(pred, y, 2.0),
        "mae": float(np.mean(np.abs(pred - y))),
        "corr": pearson(pred, y),
        "n": int(y.size),
    }


METRIC_KEYS = ("f1", "acc2", "f1_has0", "acc2_has0", "acc7", "acc5", "mae", "corr")
