"""``results/heads.json`` and ``results/heads.md`` from :func:`hrlf.train.heads.summarize`
(tables generated here; the hand-written ``heads.notes.md`` is appended)."""
from __future__ import annotations

import json
import os

from .report_md import WORD, diff_cell, model_table

KEYS = ("f1", "corr", "auc", "mae")
TITLES = {"mosi_A": "MOSI, protocol A (train on train, select on valid, report test: 752 "
                    "clips, 31 videos)",
          "mosi_B": "MOSI, protocol B (5-fold CV over the test split's 31 videos, pooled "
                    "held-out predictions)",
          "synthetic_A": "Harder synthetic benchmark (train / valid / test recordings)"}
CONDS = {"avg6": "avg6 (mean over the six incomplete conditions)", "lav": "complete {l,a,v}",
         "l": "text only {l}"}


def paired_rows(st: dict) -> list[str]:
    lines = ["| fewer − paper | condition | " + " | ".join(KEYS) + " | seeds ahead (F1) |",
             "|---" * (len(KEYS) + 3) + "|"]
    for name, per in st["paired"].items():
        for c, title in CONDS.items():
            f1 = per[c]["f1"]
            lines.append(f"| {name} | {title} | "
                         + " | ".join(diff_cell(per[c][k]) for k in KEYS)
                         + f" | {f1['seeds_favouring']}/{len(f1['per_seed'])} |")
    return lines


def runs_rows(st: dict) -> list[str]:
    lines = ["| heads | student epochs (mean / max) | stopped early | teacher epochs (mean / max) |",
             "|---|---|---|---|"]
    for h, r in st["runs"].items():
        t = st["teacher_runs"].get(h) or {}
        lines.append(f"| {h} | {r['epochs_mean']:.1f} / {r['epochs_max']} | {r['converged']} | "
                     f"{t.get('epochs_mean', float('nan')):.1f} / {t.get('epochs_max', '')} |")
    return lines


def intra_rows(rep: dict) -> list[str]:
    ratios = list(next(iter(rep["models"].values())))
    lines = ["| F1: fewer − paper | " + " | ".join(ratios) + " |",
             "|---" * (len(ratios) + 1) + "|"]
    for name, per in rep["paired"].items():
        lines.append(f"| {name} | " + " | ".join(
            f"{per[r]['f1']['mean_diff']:+.3f} {WORD[per[r]['f1']['verdict']]}"
            for r in ratios) + " |")
    return lines


def verdict_counts(res: dict) -> dict:
    """comparison -> verdict -> count over every protocol, condition (avg6, lav, l), metric."""
    out: dict = {}
    for st in res["stats"].values():
        for name, per in st["paired"].items():
            d = out.setdefault(name, {"better": 0, "worse": 0, "indistinguishable": 0})
            for c in CONDS:
                for k in KEYS:
                    d[per[c][k]["verdict"]] += 1
    return out


def markdown(res: dict) -> str:
    la = res["loadavg_1min_this_invocation"]
    lines = [f"## Attention heads: 10 (the paper) vs {', '.join(str(h) for h in res['heads'] if h != res['paper'])} at width d = {res['d']} "
             f"(`{res['command']}`)", ""]
    if not res["complete"]:
        lines += ["**PARTIAL**: not every job has finished; the tables hold the seeds that "
                  "every head count finished.", ""]
    lines += [f"CPU time of all jobs {res['cpu_s_all_jobs'] / 60:.1f} min; the invocation that trained: "
              f"{res['wall_s_this_invocation']:.0f} s wall, 1-min load average at its "
              f"finished jobs mean {la['mean']}, max {la['max']}.", "",
              f"Statistics: {res['bootstrap']}. Verdicts of *fewer heads − 10 heads*: "
              "**better** / **worse** when the 95 % interval excludes 0 (MAE: lower is "
              "better), else indist. HRLF at the reproduction's frozen weights and design: "
              f"`{res['hrlf_config_mosi']}` (MOSI), defaults (synthetic).", "",
              "Verdict counts over the protocols, the conditions avg6 / {l,a,v} / {l} and "
              "F1 / corr / AUC / MAE:", ""]
    for name, d in verdict_counts(res).items():
        lines.append(f"- {name}: " + ", ".join(f"{v} {k}" for k, v in d.items()))
    lines.append("")
    for key, st in res["stats"].items():
        lines += [f"### {TITLES[key]}, {len(st['seeds'])} seeds", "",
                  "Paired differences, mean over seeds [two-level 95 % interval]:", "",
                  *paired_rows(st), "", "F1 per condition, mean over seeds [95 % interval]:",
                  "", model_table(st, "f1"), "", "Runs:", "", *runs_rows(st), ""]
        for mode, rep in st.get("intra", {}).items():
            lines += [f"F1 against the ratio of {mode} frame drops (all modalities present):",
                      "", *intra_rows(rep), ""]
    rc = res["repeat_check"]
    if rc:
        lines += ["### Repeat check", "",
                  "The 10-head runs are the reproduction's HRLF jobs again (same seeds, "
                  "teacher and data order), now with the logit floor of "
                  "`hrlf.train.model.masked_softmax`: their means over the reproduction's "
                  "seeds against `mosi.json` / `synthetic.json` (5 decimals):", ""]
        for k, v in rc.items():
            lines.append(f"- {k}: " + (f"max |difference| of the means {v['max_abs_diff_of_means']}"
                                       f" over 7 conditions x {len(KEYS)} metrics, seeds "
                                       f"{v['seeds']}" if v["comparable"] else "not comparable"))
        lines.append("")
    return "\n".join(lines) + "\n"


def write(res: dict, out: str) -> list[str]:
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "heads.json")
    with open(path + ".tmp", "w") as f:
        json.dump(res, f, indent=1)
    os.replace(path + ".tmp", path)
    text = markdown(res)
    notes = os.path.join(out, "heads.notes.md")
    if os.path.isfile(notes):
        with open(notes) as f:
            text += "\n" + f.read()
    md = os.path.join(out, "heads.md")
    with open(md + ".tmp", "w") as f:
        f.write(text)
    os.replace(md + ".tmp", md)
    return [path, md]
