"""Markdown and PNGs of ``results/mosi.json`` / ``results/synthetic.json``.

Every number in the tables comes from the JSON that :mod:`hrlf.train.summary` builds; the
hand-written ``<name>.notes.md`` (claims, decisions, what was tried) is appended.
"""
from __future__ import annotations

import os

from ..runtime import protocol

KEYS = ("f1", "corr", "auc", "mae")
WORD = {"better": "**better**", "worse": "**worse**", "indistinguishable": "indist."}


def _cond(c: str) -> str:
    return protocol.condition_label(c) if c in protocol.CONDITIONS else c


def diff_cell(c: dict) -> str:
    """``+0.004 [-0.010, +0.017] indist.``"""
    return f"{c['mean_diff']:+.3f} [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}] {WORD[c['verdict']]}"


def ci_cell(s: dict) -> str:
    return f"{s['mean']:.3f} [{s['ci'][0]:.3f}, {s['ci'][1]:.3f}]"


def paired_table(rep: dict, cond: str, keys=KEYS) -> str:
    """Rows: HRLF - other; columns: metrics; cells: mean paired difference [95 % CI] verdict."""
    head = "| HRLF − | " + " | ".join(keys) + " | seeds with HRLF ahead (F1) |"
    lines = [head, "|---" * (len(keys) + 2) + "|"]
    for o, conds in rep["paired"].items():
        f1 = conds[cond]["f1"]
        lines.append(f"| {o} | " + " | ".join(diff_cell(conds[cond][k]) for k in keys)
                     + f" | {f1['seeds_favouring']}/{len(f1['per_seed'])} |")
    return "\n".join(lines)


def model_table(rep: dict, key: str, conds=None) -> str:
    """Rows: models; columns: conditions; cells: mean over seeds [95 % CI]."""
    conds = conds or list(protocol.INCOMPLETE) + ["avg6", "lav"]
    lines = ["| model | " + " | ".join(_cond(c) for c in conds) + " |",
             "|---" * (len(conds) + 1) + "|"]
    for m, per in rep["models"].items():
        lines.append(f"| {m} | " + " | ".join(ci_cell(per[c][key]) for c in conds) + " |")
    return "\n".join(lines)


def per_seed_table(stats: dict, seeds: dict, other: str = "dropout", cond: str = "avg6",
                   key: str = "f1") -> str:
    """One row per seed: HRLF - ``other`` with its video-bootstrap interval, per protocol."""
    protos = [p for p in stats if other in stats[p]["paired"]]
    lines = ["| seed | " + " | ".join(f"protocol {p}" for p in protos) + " |",
             "|---" * (len(protos) + 1) + "|"]
    for s in sorted({s for p in protos for s in seeds[p]}):
        cells = []
        for p in protos:
            if s not in seeds[p]:
                cells.append("")
                continue
            c = stats[p]["paired"][other][cond][key]["per_seed"][seeds[p].index(s)]
            cells.append(f"{c['diff']:+.3f} [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}]")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def runs_table(info: dict) -> str:
    """Epochs, convergence and the collapse monitor per model."""
    lines = ["| model | epochs (mean / max) | stopped early | std Z_l, Z_a, Z_v, Ht {l,a,v} | "
             "std Z_a, Ht {a} | lowest run: Ht {a} |", "|---" * 6 + "|"]
    for m, d in info.items():
        z = d["z_std"]
        if not z:
            continue
        full = ", ".join(f"{z.get('lav/' + k, float('nan')):.2f}"
                         for k in ("text", "audio", "vision", "Ht"))
        lines.append(f"| {m} | {d['epochs_mean']:.1f} / {d['epochs_max']} | {d['converged']} | "
                     f"{full} | {z['a/audio']:.2f}, {z['a/Ht']:.2f} | "
                     f"{d['z_std_min_run']['a/Ht']:.2f} |")
    return "\n".join(lines)


def sweep_table(sweep: dict) -> str:
    lines = ["| family | trial | setting | valid loss (mean over sweep seeds) | chosen |",
             "|---|---|---|---|---|"]
    for fam, d in sweep.items():
        names = d.get("names") or [None] * len(d["grid"])
        for i, (g, v, n) in enumerate(zip(d["grid"], d["valid_loss_mean"], names)):
            g = {k: v2 for k, v2 in g.items() if k != "baseline"}
            setting = n if n else f"`{g}`"
            lines.append(f"| {fam} | {i} | {setting} | {v:.4f} | "
                         f"{'yes' if i == d['chosen'] else ''} |")
    if "design" in sweep:
        d = sweep["design"]
        lines += ["", "HRLF as trained in A and B (weights of the sweep, design of step 1b): "
                  f"`{d['config']}`. Repeat check (the adopted design at the chosen weights, "
                  "design step minus weight sweep, per sweep seed): "
                  f"{d.get('repeat_check')}."]
    return "\n".join(lines)


def _head(res: dict, name: str) -> list[str]:
    la = res["loadavg_1min"]
    part = ["**PARTIAL**: the run was interrupted; only the seeds whose jobs all finished are "
            "summarized (`--resummarize --partial`), and the wall time is the span of the "
            "finished jobs.", ""] if res.get("partial") else []
    return [f"## {name} results (`{res['command']}`)", "", *part,
            "Wall time of the training (`wall_time_s`: sweep, design step and every job): "
            f"**{res['wall_time_s']:.0f} s "
            f"({res['wall_time_s'] / 60:.1f} min)** with {res['args'].get('workers', 2)} worker "
            "processes × 1 torch thread, "
            f"CPU time of all jobs {res['cpu_time_s'] / 60:.1f} min (this benchmark's jobs: "
            f"{res['cpu_time_this_part_s'] / 60:.1f} min)"
            + (f"; 1-min load average of the 2-core machine at each finished job: mean "
               f"{la['mean']}, max {la['max']} (the run's own workers account for about "
               f"{res['args'].get('workers', 2)}"
               + ("; other jobs ran at the same time, so the wall time includes them)."
                  if la["mean"] > res["args"].get("workers", 2) + 0.75 else ").")
               if la else "."),
            *([res["wall_time_note"]] if res.get("wall_time_note") else []), "",
            f"Statistics: {res['bootstrap']}. Verdicts: **better** / **worse** when the 95 % "
            "interval of HRLF − other excludes 0 (MAE: lower is better, so a negative "
            "difference is better), else indist. (indistinguishable). AUC = ROC AUC of the "
            "score for the sign of the label (zero labels excluded): threshold-free, unlike "
            "F1.", ""]


def markdown(res: dict, name: str) -> str:
    lines = _head(res, name)
    if "sweep" in res:
        lines += ["### Tuning (equal budgets, train/valid split only, frozen before A and B;"
                  " the design rows re-make earlier rounds' design choices at the chosen "
                  "weights)",
                  "", sweep_table(res["sweep"]), ""]
    for proto, rep in res["stats"].items():
        seeds = res["seeds_per_protocol"][proto]
        lines += [f"### Protocol {proto} ({len(seeds)} seeds)", "",
                  res["protocol"][proto] + ".", "",
                  "Paired differences HRLF − other, mean over seeds [two-level 95 % interval]:",
                  "", "avg6 (mean over the six incomplete conditions):", "",
                  paired_table(rep, "avg6"), "", "Complete inputs {l,a,v}:", "",
                  paired_table(rep, "lav"), "", "Text only {l}:", "", paired_table(rep, "l"),
                  ""]
        for k in ("f1", "corr", "auc"):
            lines += [f"{k} per condition, mean over seeds [95 % interval]:", "",
                      model_table(rep, k), ""]
        lines += ["Runs and collapse monitor (across-sample std of Z and Ht on the test "
                  "inputs, mean over runs):", "", runs_table(res["runs"][proto]), ""]
    if "dropout" in next(iter(res["stats"].values()))["paired"]:
        lines += ["### Per seed: HRLF − dropout, avg6 F1 [video-bootstrap 95 % interval]", "",
                  per_seed_table(res["stats"], res["seeds_per_protocol"]), ""]
    if "intra" in res:
        for mode, rep in res["intra"].items():
            lines += [f"### F1 against the intra ratio, {mode} drops (mean [95 % interval])",
                      "", model_table(rep, "f1", list(next(iter(rep["models"].values())))), "",
                      "HRLF − other, F1:", "",
                      _intra_diff(rep), ""]
    c = res["cost"]
    lines += ["### Student inference cost (per segment, batch 1)", "",
              "| spec | frames (l/a/v) | parameters | FLOPs |", "|---|---|---|---|"]
    for k, v in c.items():
        fr = "/".join(str(v["frames"][m]) for m in ("text", "audio", "vision"))
        lines.append(f"| {k} | {fr} | {v['parameters']:,} | {v['flops']:,} |")
    return "\n".join(lines) + "\n"


def _intra_diff(rep: dict) -> str:
    ratios = list(next(iter(rep["models"].values())))
    lines = ["| HRLF − | " + " | ".join(ratios) + " |", "|---" * (len(ratios) + 1) + "|"]
    for o, per in rep["paired"].items():
        lines.append(f"| {o} | " + " | ".join(
            f"{per[r]['f1']['mean_diff']:+.3f} [{per[r]['f1']['ci'][0]:+.3f}, "
            f"{per[r]['f1']['ci'][1]:+.3f}]" for r in ratios) + " |")
    return "\n".join(lines)


def write(res: dict, out: str, name: str) -> list[str]:
    """``<name>.md`` (+ notes) and the PNGs; returns the paths written."""
    from . import plots as P

    paths = []
    for proto, rep in res["stats"].items():
        p = os.path.join(out, f"{name}_paired_{proto}.png")
        P.plot_paired(rep["paired"], p, title=f"{name} protocol {proto}: HRLF − other, avg6 "
                      "(bar: 95 % over seeds+videos; thick: seeds fixed; dots: seeds)")
        q = os.path.join(out, f"{name}_conditions_{proto}.png")
        P.plot_conditions_ci(rep["models"], q, "f1",
                             title=f"{name} protocol {proto}: F1 by condition (95 % intervals)")
        r = os.path.join(out, f"{name}_auc_{proto}.png")
        P.plot_conditions_ci(rep["models"], r, "auc",
                             title=f"{name} protocol {proto}: AUC of the sign (95 % intervals)")
        paths += [p, q, r]
    if "intra" in res:
        p = os.path.join(out, f"{name}_intra.png")
        P.plot_intra_ci(res["intra"], p, title=f"{name} test: F1 vs missing ratio (95 % intervals)")
        paths.append(p)
    text = markdown(res, name)
    notes = os.path.join(out, f"{name}.notes.md")
    if os.path.isfile(notes):
        with open(notes) as f:
            text += "\n" + f.read()
    md = os.path.join(out, f"{name}.md")
    with open(md, "w") as f:
        f.write(text)
    return [md] + paths
