"""A training run: RUN_DIR in, artifacts out, nothing half-written.

The run is built in ``RUN_DIR.partial/`` (resolved ``config.json``, a per-epoch
``state.pt`` for ``--resume``, ``teacher.pt`` once stage 1 is done) and renamed to
``RUN_DIR`` with ``os.replace`` only when it is complete: ``student.pt``, ``teacher.pt``
(not for the dropout baseline), ``spec.json`` and ``train_log.json``.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import time

import numpy as np
import torch

from hrlf import __version__
from hrlf.runtime.errors import ArtifactError, BackendUnavailable, InputError
from hrlf.train import data as D
from hrlf.train import ddp
from hrlf.train import loop as L
from hrlf.train.checkpoint import STUDENT_FILE, TEACHER_FILE, load_network, save_network

CONFIG_FILE = "config.json"
STATE_FILE = "state.pt"
LOG_FILE = "train_log.json"
STATE_FORMAT, STATE_VERSION = "hrlf-train-state", 1


def partial_dir(out: str) -> str:
    return os.path.abspath(out).rstrip(os.sep) + ".partial"


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda``; CUDA requested but absent is a one-line error."""
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable(f"--device cuda: CUDA is not available to torch "
                                 f"{torch.__version__}; use --device cpu or a CUDA build of torch")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def saved_config(out: str) -> dict:
    """The config.json of an interrupted run (for ``--resume``)."""
    work = partial_dir(out)
    path = os.path.join(work, CONFIG_FILE)
    if not os.path.isfile(os.path.join(work, STATE_FILE)) or not os.path.isfile(path):
        raise ArtifactError(f"{work}: no interrupted run to resume (no {STATE_FILE}); start "
                            "without --resume")
    with open(path) as f:
        return json.load(f)


def _prepare_out(out: str, resume: bool) -> str:
    out = os.path.abspath(out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ArtifactError(f"{out}: already exists and is not empty; pass a new --out or "
                            "remove it")
    work = partial_dir(out)
    if resume:
        return work
    try:
        if os.path.isdir(work):
            shutil.rmtree(work)  # a stale, unfinished run of the same RUN_DIR
        os.makedirs(work)
        probe = os.path.join(work, ".write-test")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as e:
        raise InputError(f"{out}: cannot write the run directory ({e.strerror}); pass a "
                         "writable --out") from None
    return work


def _load_state(work: str) -> dict:
    path = os.path.join(work, STATE_FILE)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many types for a foreign/corrupt file
        raise ArtifactError(f"{path}: not a readable training checkpoint ({type(e).__name__}); "
                            "start a new run without --resume") from None
    if not isinstance(blob, dict) or blob.get("format") != STATE_FORMAT:
        raise ArtifactError(f"{path}: not an hrlf training checkpoint; start a new run")
    if blob.get("format_version") != STATE_VERSION or blob.get("hrlf_version") != __version__:
        raise ArtifactError(f"{path}: checkpoint from hrlf {blob.get('hrlf_version')!r} format "
                            f"{blob.get('format_version')!r}, this is hrlf {__version__} format "
                            f"{STATE_VERSION}; start a new run without --resume")
    return blob


def _saver(work: str, cfg: L.TrainConfig):
    def save(stage: L.Stage) -> None:
        if not ddp.is_main():
            return
        blob = {"format": STATE_FORMAT, "format_version": STATE_VERSION,
                "hrlf_version": __version__, "config": cfg.to_dict(), "stage": stage.state_dict()}
        tmp = os.path.join(work, STATE_FILE + ".tmp")
        torch.save(blob, tmp)
        os.replace(tmp, os.path.join(work, STATE_FILE))
    return save


def train_run(cfg: L.TrainConfig, data: str | None, out: str, resume: bool = False,
              progress: bool = True) -> dict:
    """Train teacher and student (or the dropout baseline) into ``out``.

    Returns:
        The train log (also written to ``RUN_DIR/train_log.json``).

    Raises:
        HrlfError: bad data, config, RUN_DIR, device or checkpoint (one line each).
    """
    t0 = time.time()
    ds = D.load_data(data, cfg.synthetic)  # before touching the disk: bad data writes nothing
    L.model_config(cfg, D.dims_of(ds))  # dims in the config must match the data
    cfg.device = ddp.init(resolve_device(cfg.device))
    work = _prepare_out(out, resume) if ddp.is_main() else partial_dir(out)
    ddp.barrier()  # only rank 0 creates RUN_DIR.partial; the others wait for it
    state = _load_state(work) if resume else None
    seed_everything(cfg.seed)
    prep = L.prepare(ds)
    if ddp.is_main():
        with open(os.path.join(work, CONFIG_FILE), "w") as f:
            json.dump({**cfg.to_dict(), "data": D.resolve_source(data)}, f, indent=1)
    save = _saver(work, cfg)
    dims = D.dims_of(ds)
    teacher, logs = None, {}
    if cfg.needs_teacher:
        teacher, logs["teacher"] = _teacher(cfg, prep, dims, work, state, save, progress)
        state = state if state and state["stage"]["role"] == "student" else None
    stage = L.make_student_stage(cfg, dims, teacher, L.frames_of(prep))
    if state is not None:
        stage.load_state_dict(state["stage"])
    L.run_stage(stage, prep, cfg.epochs, progress, on_epoch=save)
    student = stage.best_net()
    logs["student"] = {"epochs": stage.epoch, "best_valid_loss": stage.best_loss,
                       "history": stage.history}
    log = _finish(cfg, ds, prep, student, work, out, logs, time.time() - t0)
    return log


def _teacher(cfg, prep, dims, work, state, save, progress):
    path = os.path.join(work, TEACHER_FILE)
    if state is not None and state["stage"]["role"] == "student":
        net, meta = load_network(path, role="teacher")
        return net.to(cfg.device), meta.get("log", {})
    stage = L.make_teacher_stage(cfg, dims)
    if state is not None:
        stage.load_state_dict(state["stage"])
    L.run_stage(stage, prep, cfg.teacher_epochs or cfg.epochs, progress, on_epoch=save)
    net = stage.best_net()
    log = {"epochs": stage.epoch, "best_valid_loss": stage.best_loss, "history": stage.history}
    if ddp.is_main():
        save_network(path, net, role="teacher", log=json.loads(json.dumps(log)))
    return net, log


def _finish(cfg, ds, prep, student, work, out, logs, seconds) -> dict:
    from hrlf.train.evaluate import condition_metrics

    valid, _ = condition_metrics(student, prep.valid, prep.valid_y, cfg.device)
    keep = ("f1", "acc2", "mae", "corr")
    metrics = {"split": "valid", "model": cfg.name,
               **{c: {k: round(valid[c][k], 4) for k in keep} for c in ("lav", "avg6")}}
    log = {"model": cfg.name, "config": cfg.to_dict(), "seconds": round(seconds, 2),
           "valid": metrics, **logs}
    if ddp.is_main():
        save_network(os.path.join(work, STUDENT_FILE), student.cpu(), role="student",
                     model=cfg.name)
        ds.spec(prep.norm, metrics=metrics).save(os.path.join(work, "spec.json"))
        with open(os.path.join(work, LOG_FILE), "w") as f:
            json.dump(log, f, indent=1)
        state = os.path.join(work, STATE_FILE)
        if os.path.exists(state):
            os.remove(state)
        out = os.path.abspath(out)
        if os.path.isdir(out):
            os.rmdir(out)  # empty (checked at the start); os.replace needs it gone or empty
        os.replace(work, out)
    ddp.barrier()
    return log
