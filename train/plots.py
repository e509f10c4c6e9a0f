"""Matplotlib figures (Agg backend, PNG): conditions/ablations, intra-ratio curves, 2-D maps."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..runtime import protocol


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str) -> None:
    """Lay out, write ``path`` (PNG, 110 dpi) and free the figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _value(v) -> tuple[float, float]:
    return (v["mean"], v["std"]) if isinstance(v, Mapping) else (float(v), 0.0)


def plot_conditions(models: Mapping[str, Mapping], path: str, key: str = "f1",
                    title: str = "") -> None:
    """Grouped bars: one group per condition (six incomplete, avg6, complete), one bar per
    model; error bars when values are ``{"mean", "std"}``. Used for the ablations."""
    plt = _plt()
    cols = list(protocol.INCOMPLETE) + ["avg6", "lav"]
    names = list(models)
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(10, 4))
    x = np.arange(len(cols))
    for i, name in enumerate(names):
        vals = [_value(models[name][c][key]) for c in cols]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, [v[0] for v in vals], width,
               yerr=[v[1] for v in vals], label=name, capsize=2)
    ax.set_xticks(x, [protocol.condition_label(c) if c != "avg6" else "avg6" for c in cols])
    lo = min(_value(models[n][c][key])[0] for n in names for c in cols)
    ax.set_ylim(max(0.0, lo - 0.1), None)
    ax.set_ylabel(key)
    ax.set_title(title or f"{key} by condition")
    ax.legend(fontsize=8, ncol=min(6, len(names)))
    _save(plt, fig, path)


def plot_intra(curves: Mapping[str, Sequence[Mapping]], path: str, key: str = "f1",
               title: str = "") -> None:
    """``key`` against the intra-modality missing ratio, one line per model."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, pts in curves.items():
        r = [p["ratio"] for p in pts]
        vals = [_value(p[key]) for p in pts]
        m = np.array([v[0] for v in vals])
        s = np.array([v[1] for v in vals])
        ax.plot(r, m, marker="o", ms=3, label=name)
        if s.any():
            ax.fill_between(r, m - s, m + s, alpha=0.15)
    ax.set_xlabel("intra-modality missing ratio r")
    ax.set_ylabel(key)
    ax.set_title(title or f"{key} vs intra-modality missing ratio")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(plt, fig, path)


def plot_embedding(panels: Mapping[str, tuple[np.ndarray, np.ndarray]], class_names,
                   path: str, title: str = "") -> None:
    """Scatter of 2-D points per panel, coloured by class index.

    Args:
        panels: panel title -> ((N, 2) points, (N,) int class index).
        class_names: name of each class index.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.5), squeeze=False)
    colors = ["tab:red", "tab:gray", "tab:blue", "tab:green", "tab:orange"]
    for ax, (name, (xy, cls)) in zip(axes[0], panels.items()):
        for k, cname in enumerate(class_names):
            sel = cls == k
            ax.scatter(xy[sel, 0], xy[sel, 1], s=6, alpha=0.7, c=colors[k % len(colors)],
                       label=f"{cname} ({int(sel.sum())})")
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, markerscale=2)
    if title:
        fig.suptitle(title)
    _save(plt, fig, path)


def _ci_err(s: Mapping) -> tuple[float, float, float]:
    """(mean, lower error, upper error) of a ``{"mean", "ci"}`` summary."""
    return s["mean"], max(0.0, s["mean"] - s["ci"][0]), max(0.0, s["ci"][1] - s["mean"])


def plot_paired(paired: Mapping[str, Mapping], path: str, cond: str = "avg6",
                keys: Sequence[str] = ("f1", "corr", "auc", "mae"), title: str = "") -> None:
    """Forest plot: HRLF - each other model, one panel per metric, with the two-level 95 %
    interval (bar), the seed-fixed interval (thick) and each seed's difference (dots)."""
    plt = _plt()
    others = list(paired)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 0.45 * len(others) + 1.6),
                             sharey=True, squeeze=False)
    y = np.arange(len(others))[::-1]
    for ax, k in zip(axes[0], keys):
        for yi, o in zip(y, others):
            c = paired[o][cond][k]
            ax.plot(c["ci"], [yi, yi], color="tab:blue", lw=1.5)
            ax.plot(c["ci_videos"], [yi, yi], color="tab:blue", lw=4, alpha=0.5)
            ax.plot([s["diff"] for s in c["per_seed"]], [yi] * len(c["per_seed"]), "k.",
                    ms=3, alpha=0.5)
            ax.plot([c["mean_diff"]], [yi], "o", color="tab:red", ms=5)
        ax.axvline(0.0, color="gray", lw=1)
        ax.set_title(f"{k} (< 0: HRLF better)" if k == "mae" else f"{k} (> 0: HRLF better)",
                     fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    axes[0][0].set_yticks(y, [f"hrlf − {o}" for o in others], fontsize=8)
    fig.suptitle(title or f"paired differences, {cond}", fontsize=10)
    _save(plt, fig, path)


def plot_conditions_ci(models: Mapping[str, Mapping], path: str, key: str = "f1",
                       title: str = "") -> None:
    """Grouped bars per condition with asymmetric 95 % interval error bars."""
    plt = _plt()
    cols = list(protocol.INCOMPLETE) + ["avg6", "lav"]
    names = list(models)
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(11, 4))
    x = np.arange(len(cols))
    lo = 1.0
    for i, name in enumerate(names):
        v = [_ci_err(models[name][c][key]) for c in cols]
        lo = min(lo, min(a - b for a, b, _ in v))
        ax.bar(x + (i - (len(names) - 1) / 2) * width, [a for a, _, _ in v], width,
               yerr=np.array([[b for _, b, _ in v], [c for _, _, c in v]]), label=name,
               capsize=2)
    ax.set_xticks(x, [protocol.condition_label(c) if c != "avg6" else "avg6" for c in cols])
    ax.set_ylim(max(0.0, lo - 0.05), None)
    ax.set_ylabel(key)
    ax.set_title(title or f"{key} by condition (95 % intervals)")
    ax.legend(fontsize=7, ncol=min(8, len(names)))
    _save(plt, fig, path)


def plot_intra_ci(reports: Mapping[str, Mapping], path: str, key: str = "f1",
                  title: str = "") -> None:
    """``key`` against the intra ratio, one panel per drop mode, 95 % interval bands."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(reports), figsize=(5.5 * len(reports), 4), squeeze=False)
    for ax, (mode, rep) in zip(axes[0], reports.items()):
        for name, per in rep["models"].items():
            r = [float(c) for c in per]
            m = np.array([per[c][key]["mean"] for c in per])
            lo = np.array([per[c][key]["ci"][0] for c in per])
            hi = np.array([per[c][key]["ci"][1] for c in per])
            ax.plot(r, m, marker="o", ms=3, label=name)
            ax.fill_between(r, lo, hi, alpha=0.15)
        ax.set_xlabel(f"missing ratio r ({mode} drops)")
        ax.set_ylabel(key)
        ax.set_title(f"{mode}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    _save(plt, fig, path)
