"""Training defaults chosen from the data: the small-data regime.

A few dozen clips give a few dozen training windows. With the paper's batch of 128 that is
one optimizer step per epoch, and 50 epochs are 50 steps: the networks learn nothing. So
the fields of :class:`~hrlf.train.loop.TrainConfig` left unset (``None``) are chosen here
from the number of training windows, and every choice is returned with its reason (printed
at start, stored in RUN_DIR/config.json and train_log.json). A value the user sets (command
line or ``--config``) is never changed.

* large data (>= ``SMALL_WINDOWS`` windows): the paper's settings, as before (batch 128,
  50 epochs, patience 10, no weight decay, no minimum);
* small data: a batch of about a sixth of the windows (8..64), at least ``MIN_STEPS``
  optimizer steps per stage (epochs follow from it), AdamW weight decay, lr 3e-4, 2 encoder
  layers, and early stopping that never stops before the minimum: on a handful of valid
  clips the validation loss is noisy, and an early dip kept by an impatient stop is an
  untrained teacher. The weights kept are those with the best validation loss, so an
  overfit teacher (low train, high valid loss) is never the one kept. The student starts
  from the teacher's weights, is corrupted by whole-modality drops only and is selected on
  complete inputs; and a modality that a clip-wise cross-validated ridge probe on the
  train split finds useless is switched off (``modalities_off``), because with 15 clips
  the networks otherwise fit each clip's face, voice or background instead of its words.

Why each of these (measured on 26-clip real-media sets, :mod:`hrlf.runtime.capture.realmedia`):
with the paper's settings, and with only the batch and steps fixed, the student learned
nothing on 2 of 3 sets while a ridge probe on the transcript's features was perfect.
"""
from __future__ import annotations

import math
import os

SMALL_WINDOWS = 1000
MIN_STEPS = 200
WEIGHT_DECAY = 1e-2
SMALL_LAYERS = 2
LARGE = {"batch_size": 128, "epochs": 50, "early_stop": 10, "weight_decay": 0.0, "min_steps": 0,
         "select": "conditions", "lr": 1e-3, "student_init": "fresh", "modalities_off": [],
         "norm": "z"}
#: A modality is switched off on small data when a ridge probe on its window means,
#: cross-validated by clip on the train split, leaves more than this fraction of the label
#: variance unexplained (it does not carry the label from clip to clip).
OFF_RATIO = 0.6
SMALL_LR = 3e-4


def small_batch(n_train: int) -> int:
    """A power of two near n/6, within [8, 64]."""
    return int(min(64, max(8, 2 ** math.floor(math.log2(max(1, n_train) / 6)))))


def choose(cfg, n_train: int, skill: dict | None = None, clips: bool = False) -> dict:
    """Fill the unset (None) fields of ``cfg`` in place; return ``{field: {value, why}}``.

    Args:
        cfg: a :class:`~hrlf.train.loop.TrainConfig`.
        n_train: number of training windows.
        skill: modality -> unexplained label variance of a clip-wise cross-validated probe
            on train (:func:`hrlf.train.probe.cv_skill`); None: no modality is switched off.
        clips: the data is a clip list (``--data clips.csv``): its models get the edge
            configuration's attention heads unless the config names them.
    """
    small = n_train < SMALL_WINDOWS
    out: dict[str, dict] = {}
    if clips:
        edge_heads(cfg, out)

    def put(name, value, why):
        if getattr(cfg, name) is None:
            setattr(cfg, name, value)
            out[name] = {"value": value, "why": why}
        else:
            out[name] = {"value": getattr(cfg, name), "why": "set by the user"}

    if not small:
        why = f"{n_train} training windows (>= {SMALL_WINDOWS}): the paper's settings"
        for k, v in LARGE.items():
            put(k, v, why)
        return out
    put("norm", "shrunk", "small data: each feature's std is shrunk halfway to its modality's "
        "pooled std, so rare features (hashed words seen in one clip) are not blown up to "
        "the weight of the sentiment scores")
    put("batch_size", small_batch(n_train),
        f"{n_train} training windows: a batch of ~1/6 of them, in [8, 64]")
    steps_per_epoch = max(1, math.ceil(n_train / cfg.batch_size))
    explicit_epochs = cfg.epochs is not None
    put("min_steps", 0 if explicit_epochs else MIN_STEPS,
        "epochs set by the user" if explicit_epochs else
        f"small data: at least {MIN_STEPS} optimizer steps per stage")
    put("epochs", max(1, math.ceil(cfg.min_steps / steps_per_epoch)),
        f"{steps_per_epoch} steps per epoch to reach {cfg.min_steps} steps")
    put("weight_decay", WEIGHT_DECAY, "small data: AdamW weight decay against overfitting")
    put("early_stop", max(10, cfg.epochs // 3),
        "small data: a third of the epochs, and never before the minimum steps")
    put("lr", SMALL_LR, "small data: a gentler step; at 1e-3 one student epoch undid what "
        "the teacher had learned")
    put("student_init", "teacher", "small data: a fresh student memorizes each clip's face "
        "and voice in the conditions without text and never learns the words")
    if cfg.msm == "auto":
        cfg.msm = "inter"
        out["msm"] = {"value": "inter", "why": "small data: whole-modality drops only; frame "
                      "drops on top left the student learning nothing"}
    _student_and_modalities(cfg, skill, put, out)
    return out


def _student_and_modalities(cfg, skill, put, out) -> None:
    put("select", "lav", "small data: on a few valid clips the 7-condition mean is dominated by "
        "the conditions without the informative modality and keeps an untrained student")
    off = sorted(m for m, r in (skill or {}).items() if r > OFF_RATIO)
    if skill and len(off) == len(skill):
        off = []  # nothing carries the label: keep everything (the warning will say so)
    put("modalities_off", off, "small data: a linear probe cross-validated by clip on train "
        f"explains < {1 - OFF_RATIO:.0%} of the label variance with "
        + (", ".join(f"{m} ({max(0.0, 1 - skill[m]):.0%})" for m in off) if off else "no modality")
        + "; the networks would memorize each clip's face/voice/background with them")
    if "layers" in cfg.model:
        out["model.layers"] = {"value": cfg.model["layers"], "why": "set by the user"}
    else:
        cfg.model = {**cfg.model, "layers": SMALL_LAYERS}
        out["model.layers"] = {"value": SMALL_LAYERS, "why": "small data: fewer parameters "
                               "to fit, and each step is faster"}


def threads(n_train: int) -> dict | None:
    """Torch threads for this run: one on small data unless a count was given.

    With batches of 8 windows each operation is tiny, and a second thread costs more in
    synchronization than it saves (on a busy 2-core machine a step took 10x longer). A
    count given as ``--threads``, ``HRLF_THREADS`` or ``OMP_NUM_THREADS`` wins; the
    automatic count of ``hrlf.train.threads`` is capped at one, also when re-tuned.
    """
    from . import threads as T

    T.cap_auto(None)
    if n_train >= SMALL_WINDOWS:
        return None
    choice = T.applied()
    if choice is not None and choice.source != "auto":
        return {"value": choice.threads, "why": choice.source}
    if choice is None and os.environ.get("OMP_NUM_THREADS"):
        return {"value": int(os.environ["OMP_NUM_THREADS"]), "why": "OMP_NUM_THREADS"}
    T.cap_auto(1)
    return {"value": 1, "why": "small batches: one thread is faster than two"}


def edge_heads(cfg, out: dict) -> None:
    """The edge configuration's heads (:data:`hrlf.train.model.EDGE_HEADS`) unless set."""
    from .model import EDGE_HEADS

    if "heads" in cfg.model:
        out["model.heads"] = {"value": cfg.model["heads"], "why": "set by the user"}
        return
    cfg.model = {**cfg.model, "heads": EDGE_HEADS}
    out["model.heads"] = {"value": EDGE_HEADS, "why": EDGE_WHY}


#: why clip models get the edge configuration's heads (figures: results/heads.md)
EDGE_WHY = ("clip list: the edge configuration; one attention head of width 40 instead of "
            "the paper's 10, same parameters and FLOPs, faster on CPUs, accuracy "
            "indistinguishable in results/heads.md; set model.heads in --config for another")


def describe(choices: dict) -> str:
    """One line: ``batch_size=8 (why); epochs=38 (why); ...``."""
    return "; ".join(f"{k}={v['value']} ({v['why']})" for k, v in choices.items())


def filled(cfg):
    """``cfg`` with every still-unset field at the paper's value (a copy if any was unset)."""
    import dataclasses

    unset = {k: v for k, v in LARGE.items() if getattr(cfg, k) is None}
    return dataclasses.replace(cfg, **unset) if unset else cfg


def normalization(norm: dict, how: str) -> dict:
    """``norm`` (per-feature mean/std) as ``how`` says: ``z`` unchanged, ``shrunk`` with each
    std replaced by sqrt((std^2 + pooled^2) / 2), pooled = the modality's RMS std."""
    if how != "shrunk":
        return norm
    import numpy as np

    out = {}
    for m, st in norm.items():
        std = np.asarray(st["std"], np.float64)
        pooled = float(np.sqrt(np.mean(std ** 2)))
        out[m] = {"mean": tuple(st["mean"]),
                  "std": tuple(np.sqrt(0.5 * std ** 2 + 0.5 * pooled ** 2).tolist())}
    return out
