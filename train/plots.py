"""Matplotlib figures (Agg backend, PNG): conditions/ablations, intra-ratio curves, 2-D maps."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from hrlf.runtime import protocol


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
