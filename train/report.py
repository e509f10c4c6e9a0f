"""``hrlf-eval``: evaluate one or more RUN_DIRs and write JSON, Markdown, predictions, plots.

Output layout (``eval.json``), shared with ``results/mosi.json``::

    {"data": ..., "split": "test", "n": N, "eval_seed": S,
     "models": {"hrlf": {"l": {metrics}, ..., "lav": {...}, "avg6": {...}}, "teacher": {...}},
     "intra": {"hrlf": [{"ratio": 0.0, "f1": ..., ...}, ...], ...},
     "runs": {"hrlf": "/abs/RUN_DIR"},
     "clips": {"hrlf": {"conditions": {"lav": {"sign_acc", "mae", "clips"}, ...},
                        "clips": [{"clip", "label", "windows", "score": {cond: ...}}]}}}
    (``clips`` only for a clip list, ``--data clips.csv``.)
"""
from __future__ import annotations

import json
import logging
import os
import shutil

import numpy as np

from ..runtime import protocol
from ..errors import ArtifactError, InputError
from . import data as D
from . import evaluate as E
from . import interrupt
from .checkpoint import TEACHER_FILE, load_network, load_run
from .progress import Stages

log = logging.getLogger("hrlf.train")


def _run_name(run_dir: str, taken: set) -> str:
    name = os.path.basename(os.path.abspath(run_dir))
    try:
        with open(os.path.join(run_dir, "train_log.json")) as f:
            name = json.load(f).get("model", name)
    except (OSError, ValueError):
        pass
    base, k = name, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    return name


def _synthetic_overrides(run_dir: str) -> dict:
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            return json.load(f).get("synthetic") or {}
    except (OSError, ValueError):
        return {}


def _classes(spec, label: np.ndarray) -> np.ndarray:
    return np.array([sum(1 for t in spec.output.thresholds if y >= t) for y in label])


def evaluate_runs(run_dirs: list[str], data: str | None, out: str | None, split: str = "test",
                  seed: int = 1234, plots: bool = True) -> dict:
    """Evaluate the students of ``run_dirs`` (and the first run's teacher) on ``split``.

    Returns:
        The eval.json contents plus ``out`` (the output directory).

    Raises:
        HrlfError: a missing/invalid RUN_DIR, data that does not match a run's spec.
    """
    if out is not None and os.path.lexists(out) and not os.path.isdir(out):
        raise InputError(f"--out {out}: exists and is not a folder; pass a folder for the "
                         "results")
    nets = {}
    for rd in run_dirs:
        net, spec = load_run(rd)
        nets[_run_name(rd, set(nets))] = (rd, net, spec)
    first_rd, first_net, spec = next(iter(nets.values()))
    stages = Stages()  # its lines start once the data is checked: an error stays one line
    data = data or D.recorded_source(first_rd, spec)  # what the first run was trained on
    ds = D.load_data(data, _synthetic_overrides(first_rd), splits=(split,),
                     clips={"new_clips_split": split, "trained_on": spec.data.get("sha256"),
                            "progress": True})
    for name, (rd, net, s) in nets.items():
        D.check_dims(ds, {m: s.dim(m) for m in s.modalities}, os.path.join(rd, "spec.json"))
        if s.data.get("sha256") != ds.fingerprint.get("sha256") and ds.name != "clips":
            log.warning("%s: trained on data %s…, evaluating on %s…", rd,
                        s.data.get("sha256", "")[:12], ds.fingerprint.get("sha256", "")[:12])
    sp = ds.splits[split]
    log.info("data: %s, %s split, %d samples (%.1f s)", D.resolve_source(data), split, len(sp),
             stages.elapsed())
    batch = sp.batch(spec.norm)
    res = {"data": D.resolve_source(data), "split": split, "n": len(sp), "eval_seed": seed,
           "models": {}, "intra": {}, "runs": {}}
    preds0 = None
    for name, (rd, net, s) in nets.items():
        stages.start(f"{name}: 7 conditions and the intra-modality curve on {len(sp)} "
                     f"{split} samples")
        b = sp.batch(s.norm)
        res["models"][name], preds = E.condition_metrics(net, b, sp.label)
        if ds.name == "clips":  # a user's clips: what each clip scores (mean of its windows)
            res.setdefault("clips", {})[name] = E.clip_report(preds, sp.label, sp.group)
        res["intra"][name] = E.intra_curve(net, b, sp.label, seed)
        res["runs"][name] = os.path.abspath(rd)
        preds0 = preds if preds0 is None else preds0
    teacher_path = os.path.join(first_rd, TEACHER_FILE)
    if os.path.isfile(teacher_path):
        stages.start(f"teacher: 7 conditions and the intra-modality curve on {len(sp)} "
                     f"{split} samples")
        teacher, _ = load_network(teacher_path, role="teacher")
        res["models"]["teacher"], _ = E.condition_metrics(teacher, batch, sp.label)
        res["intra"]["teacher"] = E.intra_curve(teacher, batch, sp.label, seed)
    out = os.path.abspath(out or os.path.join(first_rd, "eval"))
    _write(out, res, sp, preds0, spec, first_net, batch, seed, plots, stages)
    stages.done(f"wrote {out}")
    return {**res, "out": out}


def _write(out, res, sp, preds, spec, net, batch, seed, plots, stages) -> None:
    tmp = out.rstrip(os.sep) + ".partial"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
    except OSError as e:
        raise InputError(f"{out}: cannot write ({e.strerror}); pass a writable --out") from None
    try:
        _write_files(tmp, out, res, sp, preds, spec, net, batch, seed, plots, stages)
    finally:  # also on Ctrl-C/SIGTERM or a failed plot: no .partial folder is left behind
        shutil.rmtree(tmp, ignore_errors=True)


def _write_files(tmp, out, res, sp, preds, spec, net, batch, seed, plots, stages) -> None:
    with open(os.path.join(tmp, "eval.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(tmp, "eval.md"), "w") as f:
        f.write(markdown(res))
    np.savez(os.path.join(tmp, "predictions.npz"), ids=sp.ids.astype(str), label=sp.label,
             **{f"score_{c}": preds[c] for c in protocol.CONDITIONS})
    if plots:
        stages.start("plots: conditions.png, intra.png, and embedding.png (a t-SNE of the "
                     "student's representations; --no-plots skips them)")
        with stages.beating():
            _plots(tmp, res, sp, spec, net, batch, seed)
    try:
        with interrupt.deferred(reraise=False):  # the moves are the last step: never half
            os.makedirs(out, exist_ok=True)
            for name in os.listdir(tmp):
                os.replace(os.path.join(tmp, name), os.path.join(out, name))
            os.rmdir(tmp)
    except OSError as e:
        raise ArtifactError(f"{out}: cannot write results ({e.strerror}); pass a writable "
                            "--out") from None


def _plots(tmp, res, sp, spec, net, batch, seed) -> None:
    from . import plots as P

    P.plot_conditions(res["models"], os.path.join(tmp, "conditions.png"),
                      title=f"F1 by condition ({res['split']})")
    P.plot_intra(res["intra"], os.path.join(tmp, "intra.png"),
                 title=f"F1 vs intra-modality missing ratio ({res['split']})")
    cls = _classes(spec, sp.label)
    panels = {}
    for cond in ("lav", "l"):
        reps = E.representations(net, protocol.apply_condition(batch, cond))
        panels[f"student Ht, {protocol.condition_label(cond)}"] = (E.project_2d(reps, seed), cls)
    P.plot_embedding(panels, spec.output.labels, os.path.join(tmp, "embedding.png"),
                     title="t-SNE of student representations")


def markdown(res: dict) -> str:
    """eval.md: F1 per condition, and all metrics for {l,a,v} and avg6."""
    parts = [f"# Evaluation on {res['data']} ({res['split']}, n = {res['n']})", "",
             "F1 (weighted, zero labels excluded) per condition:", "",
             E.condition_table(res["models"], "f1"), "",
             "All metrics, average of the six incomplete conditions (avg6):", "",
             E.markdown_table(res["models"], "avg6"), "",
             "All metrics, complete inputs {l,a,v}:", "",
             E.markdown_table(res["models"], "lav"), ""]
    for name, rep in res.get("clips", {}).items():
        parts += [f"Clip level, {name} (the mean of each clip's window scores; "
                  f"{rep['conditions']['lav']['clips']} clips):", "", E.clip_table(rep), "",
                  f"Per clip, {name}: label, windows and clip-mean score per condition:", "",
                  E.clip_rows_table(rep), ""]
    return "\n".join(parts)
