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
  optimizer steps per stage (epochs follow from it), AdamW weight decay, and early stopping
  that never stops before the minimum: on a handful of valid clips the validation loss is
  noisy, and an early dip kept by an impatient stop is an untrained teacher. The weights
  kept are still those with the best validation loss, so an overfit teacher (low train,
  high valid loss) is never the one kept.
"""
from __future__ import annotations

import math
import os

SMALL_WINDOWS = 1000
MIN_STEPS = 300
WEIGHT_DECAY = 1e-2
SMALL_LAYERS = 2
LARGE = {"batch_size": 128, "epochs": 50, "early_stop": 10, "weight_decay": 0.0, "min_steps": 0,
         "select": "conditions"}


def small_batch(n_train: int) -> int:
    """A power of two near n/6, within [8, 64]."""
    return int(min(64, max(8, 2 ** math.floor(math.log2(max(1, n_train) / 6)))))


def choose(cfg, n_train: int) -> dict:
    """Fill the unset (None) fields of ``cfg`` in place; return ``{field: {value, why}}``.

    Args:
        cfg: a :class:`~hrlf.train.loop.TrainConfig`.
        n_train: number of training windows.
    """
    small = n_train < SMALL_WINDOWS
    out: dict[str, dict] = {}

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
    put("select", "lav", "small data: on a few valid clips the 7-condition mean is dominated by "
        "the conditions without the informative modality and keeps an untrained student")
    if "layers" in cfg.model:
        out["model.layers"] = {"value": cfg.model["layers"], "why": "set by the user"}
    else:
        cfg.model = {**cfg.model, "layers": SMALL_LAYERS}
        out["model.layers"] = {"value": SMALL_LAYERS, "why": "small data: fewer parameters "
                               "to fit, and each step is faster"}
    return out


def threads(n_train: int) -> dict | None:
    """Torch threads for this run: one on small data unless ``OMP_NUM_THREADS`` is set.

    With batches of 8 windows each operation is tiny, and a second thread costs more in
    synchronization than it saves (on a busy 2-core machine a step took 10x longer).
    """
    if n_train >= SMALL_WINDOWS:
        return None
    if os.environ.get("OMP_NUM_THREADS"):
        return {"value": int(os.environ["OMP_NUM_THREADS"]), "why": "OMP_NUM_THREADS"}
    return {"value": 1, "why": "small batches: one thread is faster than two"}


def describe(choices: dict) -> str:
    """One line: ``batch_size=8 (why); epochs=38 (why); ...``."""
    return "; ".join(f"{k}={v['value']} ({v['why']})" for k, v in choices.items())


def filled(cfg):
    """``cfg`` with every still-unset field at the paper's value (a copy if any was unset)."""
    import dataclasses

    unset = {k: v for k, v in LARGE.items() if getattr(cfg, k) is None}
    return dataclasses.replace(cfg, **unset) if unset else cfg
