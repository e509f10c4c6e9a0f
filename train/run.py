"""A training run: RUN_DIR in, artifacts out, nothing half-written.

The run is built in ``RUN_DIR.partial/`` (resolved ``config.json``, a per-epoch
``state.pt`` for ``--resume``, ``teacher.pt`` once stage 1 is done) and renamed to
``RUN_DIR`` with ``os.replace`` only when it is complete: ``student.pt``, ``teacher.pt``
(not for the dropout baseline), ``spec.json``, ``metrics.json`` (the student's valid
metrics beside the linear-probe floor, :mod:`hrlf.train.probe`) and ``train_log.json``
(with the defaults chosen from the data, :mod:`hrlf.train.regime`, and where the time went).
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time

import numpy as np
import torch

from ..version import __version__
from ..errors import ArtifactError, BackendUnavailable, InputError
from . import data as D
from . import ddp, interrupt
from . import loop as L
from . import probe, regime
from .checkpoint import (STUDENT_FILE, TEACHER_FILE, load_network, save_atomic,
                         save_network)

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
STATE_FILE = "state.pt"
LOG_FILE = "train_log.json"
STATE_FORMAT, STATE_VERSION = "hrlf-train-state", 1
logger = logging.getLogger("hrlf.train")
#: what the windows of a dataset are grouped by for the clip-level line: MOSI's are
#: utterances of videos, a clip list's windows come from clips
GROUP_UNIT = {"mosi": "videos", "clips": "clips", "synthetic": "recordings"}


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
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, ValueError, RecursionError) as e:  # ValueError: bad JSON or bytes that
        # are not UTF-8; RecursionError: nesting too deep to parse
        raise ArtifactError(f"{path}: unreadable ({type(e).__name__}); the interrupted run "
                            "cannot be resumed, start without --resume") from None
    if not isinstance(cfg, dict):
        raise ArtifactError(f"{path}: not a JSON object; the interrupted run cannot be "
                            "resumed, start without --resume")
    return cfg


def interrupted_state(out: str) -> str:
    """What an interrupted ``hrlf-train --out out`` left, and how to go on (one line).

    RUN_DIR.partial is kept when it holds the checkpoint of a completed epoch (resumable
    with ``--resume``), and removed when no epoch had completed (nothing to resume).
    """
    work = partial_dir(out)
    if os.path.isfile(os.path.join(os.path.abspath(out), STUDENT_FILE)) \
            and not os.path.isdir(work):
        return f"the run had already finished; {os.path.abspath(out)} is complete"
    if os.path.isfile(os.path.join(work, STATE_FILE)):
        try:
            stage = _load_state(work)["stage"]
            where = f" ({stage['role']} epoch {stage['epoch']})"
        except Exception:  # noqa: BLE001 - only for the message; --resume will say more
            where = ""
        return (f"{work} keeps the checkpoint of the last completed epoch{where}; continue "
                f"with: hrlf-train --out {out} --resume")
    if os.path.isdir(work):
        shutil.rmtree(work, ignore_errors=True)
    return f"no epoch had completed, nothing was kept; start again: hrlf-train --out {out} ..."


def _prepare_out(out: str, resume: bool) -> str:
    out = os.path.abspath(out)
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ArtifactError(f"{out}: already exists and is not empty; pass a new --out or "
                            "remove it")
    work = partial_dir(out)
    if resume:
        for name in os.listdir(work):  # temp files of a save that a kill cut short
            if ".tmp" in name:
                os.remove(os.path.join(work, name))
        return work
    try:
        if os.path.isdir(work):
            shutil.rmtree(work)  # a stale, unfinished run of the same RUN_DIR
            logger.warning("removed %s, left by an interrupted run of the same RUN_DIR "
                           "(--resume would have continued it)", work)
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


def _saver(work: str, cfg: L.TrainConfig, then=None):
    def save(stage: L.Stage) -> None:
        if ddp.is_main():
            blob = {"format": STATE_FORMAT, "format_version": STATE_VERSION,
                    "hrlf_version": __version__, "config": cfg.to_dict(),
                    "stage": stage.state_dict()}
            tmp = os.path.join(work, STATE_FILE + ".tmp")
            with interrupt.deferred():  # a signal mid-write must not leave a half .tmp
                save_atomic(blob, tmp, os.path.join(work, STATE_FILE))
        if then is not None:
            then(stage)
    return save


def _say(msg: str, level: int = logging.INFO) -> None:
    logger.log(level, msg)


def load(data: str | None, cfg: L.TrainConfig, progress: bool):
    """The dataset; a clip list is featurized with a progress bar (and its cache)."""
    from . import featurize

    featurize.LAST.clear()
    source = D.resolve_source(data)
    if not source.lower().endswith(".csv"):
        return D.load_data(data, cfg.synthetic)
    from .clips import load_clips

    ds = load_clips(source, progress=progress, asr=cfg.asr, asr_model=cfg.asr_model)
    D.check_finite(ds, source)
    return ds


def train_run(cfg: L.TrainConfig, data: str | None, out: str, resume: bool = False,
              progress: bool = True, on_epoch=None, on_start=None, say=_say) -> dict:
    """Train teacher and student (or the dropout baseline) into ``out``.

    ``on_start()``, if given, runs once data, config and RUN_DIR are checked and training
    begins (e.g. to say how many threads it uses); ``on_epoch(stage)`` after each epoch's
    checkpoint (e.g. to re-tune the thread count).

    Args:
        say: where the one-line reports go, ``say(msg, level)`` (defaults chosen, probe
            floor, warning, time); default: the ``hrlf.train`` logger.

    Returns:
        The train log (also written to ``RUN_DIR/train_log.json``).

    Raises:
        HrlfError: bad data, config, RUN_DIR, device or checkpoint (one line each).
    """
    from . import threads

    try:
        return _train_run(cfg, data, out, resume, progress, on_epoch, on_start, say)
    finally:
        threads.cap_auto(None)  # a small-data cap on the thread count is this run's only


def _train_run(cfg, data, out, resume, progress, on_epoch, on_start, say) -> dict:
    t0 = time.time()
    clock = {}
    ds = load(data, cfg, progress)  # before touching the disk: bad data writes nothing
    clock["data_s"] = time.time() - t0
    tr = ds.splits["train"]
    skill = None
    if len(tr) < regime.SMALL_WINDOWS:
        small_norm = regime.normalization(tr.norm(), cfg.norm or "shrunk")
        skill = probe.cv_skill(tr.batch(small_norm), tr.label, tr.group)
    clips = D.resolve_source(data).lower().endswith(".csv")
    choices = regime.choose(cfg, len(tr), skill, clips=clips)
    th = regime.threads(len(ds.splits["train"]))
    if th is not None:
        torch.set_num_threads(th["value"])
        choices["threads"] = th
    L.model_config(cfg, D.dims_of(ds))  # dims in the config must match the data
    cfg.device = ddp.init(resolve_device(cfg.device))
    work = _prepare_out(out, resume) if ddp.is_main() else partial_dir(out)
    ddp.barrier()  # only rank 0 creates RUN_DIR.partial; the others wait for it
    state = _load_state(work) if resume else None
    say = say if ddp.is_main() else (lambda _msg, _level=0: None)
    # printed after every check that can fail, so that an error stays one line
    if on_start is not None and ddp.is_main():
        on_start()
    say(f"{len(tr)} training windows; " + regime.describe(choices))
    seed_everything(cfg.seed)
    prep = L.prepare(ds, regime.normalization(ds.splits["train"].norm(), cfg.norm))
    t1 = time.time()
    probes = probe.fit_probes(prep.train, prep.train_y, ds.splits["train"].group, prep.valid,
                              prep.valid_y, ds.splits["valid"].group)
    clock["probe_s"] = time.time() - t1
    if ddp.is_main():
        with open(os.path.join(work, CONFIG_FILE), "w") as f:
            json.dump({**cfg.to_dict(), "data": D.recordable_source(data)}, f, indent=1)
    save = _saver(work, cfg, on_epoch)
    dims = D.dims_of(ds)
    teacher, logs = None, {}
    if cfg.needs_teacher:
        t1 = time.time()
        teacher, logs["teacher"] = _teacher(cfg, prep, dims, work, state, save, progress)
        clock["teacher_s"] = time.time() - t1
        state = state if state and state["stage"]["role"] == "student" else None
    t1 = time.time()
    stage = L.make_student_stage(cfg, dims, teacher, L.frames_of(prep))
    if state is not None:
        stage.load_state_dict(state["stage"])
    L.run_stage(stage, prep, cfg.epochs, progress, on_epoch=save)
    student = stage.best_net()
    clock["student_s"] = time.time() - t1
    logs["student"] = {"epochs": stage.epoch, "steps": stage.steps,
                       "best_valid_loss": stage.best_loss, "history": stage.history}
    logs["regime"] = choices
    if skill:
        probes["cv_unexplained"] = skill  # clip-wise CV on train, per modality
    return _finish(cfg, ds, prep, student, work, out, logs, t0, clock, probes, say)


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
    log = {"epochs": stage.epoch, "steps": stage.steps, "best_valid_loss": stage.best_loss,
           "history": stage.history}
    if ddp.is_main():
        save_network(path, net, role="teacher", log=json.loads(json.dumps(log)))
    return net, log


def _finish(cfg, ds, prep, student, work, out, logs, t0, clock, probes, say) -> dict:
    from .evaluate import clip_metrics, condition_metrics

    valid, preds = condition_metrics(student, prep.valid, prep.valid_y, cfg.device)
    keep = ("f1", "acc2", "mae", "corr")
    metrics = {"split": "valid", "model": cfg.name,
               **{c: {k: round(valid[c][k], 4) for k in keep} for c in ("lav", "avg6")}}
    clip = clip_metrics(preds["lav"], prep.valid_y, ds.splits["valid"].group)
    warning = probe.floor_warning(valid["lav"], probes)
    unit = GROUP_UNIT.get(ds.name, "recordings")
    say(probe.summary_line(valid["lav"], probes)
        + f"; per {unit[:-1]} (mean of its windows): student sign acc {clip['sign_acc']:.2f}, "
        f"{probes['floor']} probe {probes[probes['floor']]['clip']['sign_acc']:.2f} "
        f"({clip['clips']} valid {unit}, {len(prep.valid_y)} valid windows)")
    if warning:
        say(warning, logging.WARNING)
    clock["total_s"] = time.time() - t0
    clock = {k: round(v, 2) for k, v in clock.items()}
    say("time " + _where_time_went(clock, logs))
    floor = probes["floor"]
    log = {"model": cfg.name, "config": cfg.to_dict(), "seconds": clock["total_s"],
           "valid": metrics, "time": clock, "warning": warning,
           "probe_floor": {"probe": floor, "mae": probes[floor]["mae"],
                           "acc2": probes[floor]["acc2"]}, **logs}
    # a signal here would leave RUN_DIR.partial without state.pt yet not renamed; the
    # run is all but done, so finish it (and exit normally) instead
    with interrupt.deferred(reraise=False):
        if ddp.is_main():
            save_network(os.path.join(work, STUDENT_FILE), student.cpu(), role="student",
                         model=cfg.name)
            ds.spec(prep.norm, metrics=metrics,  # the runtime leaves out what was off
                    modalities_off=tuple(cfg.modalities_off or ())).save(
                        os.path.join(work, "spec.json"))
            with open(os.path.join(work, LOG_FILE), "w") as f:
                json.dump(log, f, indent=1)
            with open(os.path.join(work, METRICS_FILE), "w") as f:
                json.dump({"split": "valid", "student": {**metrics, "clip": clip},
                           "probe": probes, "warning": warning}, f, indent=1)
            state = os.path.join(work, STATE_FILE)
            if os.path.exists(state):
                os.remove(state)
            out = os.path.abspath(out)
            if os.path.isdir(out):
                os.rmdir(out)  # empty (checked at the start); os.replace needs it gone or empty
            os.replace(work, out)
    ddp.barrier()
    return log


def _where_time_went(clock: dict, logs: dict) -> str:
    from . import featurize

    parts = []
    if featurize.LAST and "data_s" in clock:
        f = featurize.LAST
        parts.append(f"data {clock['data_s']:.1f} s ({f['featurized']} clips featurized with "
                     f"{f['workers']} processes, {f['cached']} from cache)")
    elif "data_s" in clock:
        parts.append(f"data {clock['data_s']:.1f} s")
    for role in ("teacher", "student"):
        if f"{role}_s" in clock:
            steps = logs.get(role, {}).get("steps")
            parts.append(f"{role} {clock[role + '_s']:.1f} s"
                         + (f" ({steps} steps)" if steps else ""))
    parts.append(f"probe {clock.get('probe_s', 0):.1f} s")
    return ", ".join(parts) + f"; total {clock['total_s']:.1f} s"
