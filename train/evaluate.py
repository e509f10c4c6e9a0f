"""Evaluation under the missingness protocol, exactly as the exported graph computes it.

Scores come from :class:`hrlf.train.model.InferenceGraph` (the student's clamped ``score``,
the ONNX output), so offline numbers, exported models and the streaming runtime agree.

* :func:`condition_metrics`: every inter-modality condition plus ``avg6`` (the mean of
  each metric over the six incomplete conditions, as the paper's "Avg.");
* :func:`intra_curve`: metrics against the intra-modality ratio r = 0, 0.1, ..., 1 with a
  fixed seed per ratio (:func:`hrlf.runtime.protocol.drop_frames` on all three modalities);
* :func:`clip_scores` / :func:`clip_metrics`: per-clip results (the mean of a clip's
  window scores, as a user reads a clip streamed through ``hrlf-run``): sign accuracy, MAE;
* :func:`representations` / :func:`project_2d`: student representations for a 2-D plot.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from ..runtime import protocol
from ..runtime.metrics import METRIC_KEYS, regression_metrics
from ..runtime.spec import input_names
from . import data as D
from .model import HRLFNet, InferenceGraph

#: Columns of the Markdown tables (all of them are in the JSON).
TABLE_KEYS = ("f1", "acc2", "f1_has0", "acc2_has0", "acc7", "mae", "corr")


@torch.no_grad()
def scores(net: HRLFNet, batch: Mapping[str, np.ndarray], device="cpu",
           chunk: int = 1024) -> np.ndarray:
    """(N,) clamped scores of the inference graph for a numpy batch."""
    graph = InferenceGraph(net.to(device)).eval()
    n = len(batch[protocol.MODALITY_MASK])
    out = []
    for i in range(0, n, chunk):
        t = D.to_torch(D.take(batch, np.arange(i, min(n, i + chunk))), device)
        out.append(graph(*[t[k] for k in input_names()]).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def average6(per_cond: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Mean of every metric over the six incomplete conditions."""
    return {k: float(np.mean([per_cond[c][k] for c in protocol.INCOMPLETE]))
            for k in METRIC_KEYS}


def condition_metrics(net: HRLFNet, batch: Mapping[str, np.ndarray], label: np.ndarray,
                      device="cpu") -> tuple[dict, dict]:
    """Metrics for each of the 7 conditions and ``avg6``, and the scores per condition.

    Returns:
        ``({cond: metrics, ..., "avg6": metrics}, {cond: (N,) scores})``.
    """
    res, preds = {}, {}
    for c in protocol.CONDITIONS:
        preds[c] = scores(net, protocol.apply_condition(batch, c), device)
        res[c] = regression_metrics(preds[c], label)
    res["avg6"] = average6(res)
    return res, preds


def clip_scores(pred: np.ndarray, label: np.ndarray, groups: np.ndarray) -> dict:
    """Per clip (recording): the mean of its window scores and its label.

    Returns:
        ``{"clip": (K,) ids in first-seen order, "score": (K,), "label": (K,), "windows": (K,)}``.
    """
    groups = np.asarray(groups)
    ids, first, inv = np.unique(groups, return_index=True, return_inverse=True)
    order = np.argsort(first)
    sums = np.bincount(inv, weights=np.asarray(pred, np.float64), minlength=len(ids))
    counts = np.bincount(inv, minlength=len(ids))
    lab = np.asarray(label, np.float64)[first]
    return {"clip": ids[order], "score": (sums / counts)[order], "label": lab[order],
            "windows": counts[order]}


def clip_metrics(pred: np.ndarray, label: np.ndarray, groups: np.ndarray) -> dict:
    """Clip-level sign accuracy (zero labels left out) and MAE of the clip-mean scores."""
    c = clip_scores(pred, label, groups)
    nz = c["label"] != 0
    acc = float(np.mean((c["score"][nz] > 0) == (c["label"][nz] > 0))) if nz.any() else 0.0
    mae = float(np.mean(np.abs(c["score"] - c["label"])))
    return {"sign_acc": round(acc, 4), "mae": round(mae, 4), "clips": int(len(c["clip"]))}


def clip_report(preds: Mapping[str, np.ndarray], label: np.ndarray, groups: np.ndarray) -> dict:
    """Clip-level results for every condition, ``avg6``, and one row per clip.

    Args:
        preds: condition -> (N,) window scores (:func:`condition_metrics`' second value).
        label, groups: per window, the label and the clip (recording) id.

    Returns:
        ``{"conditions": {cond: clip_metrics, ..., "avg6": ...}, "clips": [{"clip", "label",
        "windows", "score": {cond: clip-mean score}}, ...]}``.
    """
    conds = {c: clip_metrics(preds[c], label, groups) for c in protocol.CONDITIONS}
    conds["avg6"] = {k: round(float(np.mean([conds[c][k] for c in protocol.INCOMPLETE])), 4)
                     for k in ("sign_acc", "mae")}
    per = {c: clip_scores(preds[c], label, groups) for c in protocol.CONDITIONS}
    first = per["lav"]
    rows = [{"clip": str(first["clip"][i]), "label": float(first["label"][i]),
             "windows": int(first["windows"][i]),
             "score": {c: round(float(per[c]["score"][i]), 4) for c in protocol.CONDITIONS}}
            for i in range(len(first["clip"]))]
    return {"conditions": conds, "clips": rows}


def clip_table(report: Mapping) -> str:
    """Markdown: clip-level sign accuracy and MAE per condition (+ avg6)."""
    cols = list(protocol.CONDITIONS) + ["avg6"]
    head = [protocol.condition_label(c) if c != "avg6" else "avg6" for c in cols]
    c = report["conditions"]
    return "\n".join(["| clip-level | " + " | ".join(head) + " |", "|---" * (len(cols) + 1) + "|",
                      "| sign acc | " + " | ".join(fmt(c[k]["sign_acc"]) for k in cols) + " |",
                      "| MAE | " + " | ".join(fmt(c[k]["mae"]) for k in cols) + " |"])


def clip_rows_table(report: Mapping) -> str:
    """Markdown: one row per clip, its label, windows and clip-mean score per condition."""
    conds = list(protocol.CONDITIONS)
    head = "| clip | label | windows | " + " | ".join(protocol.condition_label(c)
                                                   for c in conds) + " |"
    rows = [f"| {r['clip'].replace('|', '/')} | {r['label']:+.2f} | {r['windows']} | "
            + " | ".join(f"{r['score'][c]:+.2f}" for c in conds) + " |"
            for r in report["clips"]]
    return "\n".join([head, "|---" * (len(conds) + 3) + "|", *rows])


def intra_curve(net: HRLFNet, batch: Mapping[str, np.ndarray], label: np.ndarray,
                seed: int, ratios=protocol.INTRA_RATIOS, device="cpu") -> list[dict]:
    """Metrics against the intra-modality missing ratio (all modalities kept)."""
    out = []
    for i, r in enumerate(ratios):
        dropped = protocol.drop_frames(batch, r, np.random.default_rng([seed, i]))
        out.append({"ratio": float(r), **regression_metrics(scores(net, dropped, device), label)})
    return out


@torch.no_grad()
def representations(net: HRLFNet, batch: Mapping[str, np.ndarray], key: str = "Ht",
                    device="cpu") -> np.ndarray:
    """(N, k) student representation ``key`` (H, I1, I2, I3 or Ht) in eval mode."""
    net = net.to(device).eval()
    n = len(batch[protocol.MODALITY_MASK])
    parts = [net(D.to_torch(D.take(batch, np.arange(i, min(n, i + 1024))), device))[key]
             for i in range(0, n, 1024)]
    return torch.cat(parts).cpu().numpy()


def project_2d(x: np.ndarray, seed: int, method: str = "tsne") -> np.ndarray:
    """2-D t-SNE (or PCA) projection of representations, seeded."""
    if method == "pca" or len(x) < 10:
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(5, len(x) // 4)))
    return TSNE(n_components=2, init="pca", random_state=seed,
                perplexity=perplexity).fit_transform(x)


def markdown_table(models: Mapping[str, Mapping], cond: str = "avg6",
                   keys=TABLE_KEYS) -> str:
    """One row per model for one condition; values ``mean ± std`` when aggregated."""
    lines = ["| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, res in models.items():
        lines.append(f"| {name} | " + " | ".join(fmt(res[cond][k]) for k in keys) + " |")
    return "\n".join(lines)


def condition_table(models: Mapping[str, Mapping], key: str = "f1") -> str:
    """One row per model, one column per condition (+ avg6), for one metric."""
    cols = list(protocol.INCOMPLETE) + ["avg6", "lav"]
    head = [protocol.condition_label(c) if c != "avg6" else "avg6" for c in cols]
    lines = ["| model | " + " | ".join(head) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, res in models.items():
        lines.append(f"| {name} | " + " | ".join(fmt(res[c][key]) for c in cols) + " |")
    return "\n".join(lines)


def fmt(v) -> str:
    """``0.781`` or ``0.781 ± 0.012`` for a ``{"mean", "std"}`` dict."""
    if isinstance(v, Mapping):
        return f"{v['mean']:.3f} ± {v['std']:.3f}"
    return f"{float(v):.3f}"


def aggregate(runs: list[Mapping[str, Mapping[str, float]]]) -> dict:
    """Per condition and metric, mean and (population) std over runs (seeds or folds)."""
    out = {}
    for cond in runs[0]:
        out[cond] = {k: {"mean": float(np.mean([r[cond][k] for r in runs])),
                         "std": float(np.std([r[cond][k] for r in runs]))}
                     for k in METRIC_KEYS}
    return out
