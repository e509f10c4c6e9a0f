"""The two-stage HRLF training loop (plain PyTorch, one file, nanoGPT style).

Stage 1 trains the teacher on complete inputs with L_task + L_FRF. Stage 2 freezes it and
trains a fresh student on MSM-corrupted inputs with L_task + L_FRF + L_HMI + L_HAL + L_KD,
alternating a discriminator step (BCE) and a student step each batch. The dropout baseline
is a single stage: a student of the same size, L_task only, random modality dropout.

Every stage: Adam, gradient clipping, ReduceLROnPlateau and early stopping on the
validation loss, and the weights with the best validation loss are kept. The validation
loss is L_task on the valid split: complete inputs for the teacher, the mean over the 7
test conditions for a student (it is what the student is for).
"""
from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..runtime import protocol
from ..runtime.datasets import Dataset, Split
from ..errors import InputError
from . import data as D
from . import ddp
from .losses import Discriminators, Objective, disc_loss, hal_loss
from .model import HRLFNet, ModelConfig

ABLATIONS = ("frf", "hmi", "hal")
#: Students without the HRLF terms: ``dropout`` (L_task, modality dropout), ``msm_only``
#: (L_task under the HRLF student's own MSM corruption, no teacher) and ``kd_only``
#: (L_task + L_KD under MSM, with the teacher): they isolate augmentation and distillation.
BASELINES = ("dropout", "msm_only", "kd_only")


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as RUN_DIR/config.json and in checkpoints."""

    # None: chosen from the data by hrlf.train.regime (train_run) or the paper's value
    epochs: int | None = None
    teacher_epochs: int | None = None  # None: same as epochs
    batch_size: int | None = None
    lr: float | None = None  # None: 1e-3 (the paper's MOSI value), 3e-4 on small data
    grad_clip: float = 0.8
    #: "separate": the network's gradient is clipped apart from the HMI statistic networks'
    #: (they share its optimizer); "joint": one norm over both (the earlier behaviour)
    clip: str = "separate"
    lr_patience: int = 5
    lr_factor: float = 0.5
    early_stop: int | None = None
    weight_decay: float | None = None  # > 0: AdamW
    min_steps: int | None = None       # optimizer steps before early stopping may stop
    #: an epoch improves on the best validation loss only by more than this fraction of it
    #: (0: any decrease above 1e-6 counts); early stopping counts the epochs that do not
    min_delta: float = 0.0
    seed: int = 0
    eval_seed: int = 1234
    hal_form: str = "nonsaturating"  # or "minimax" (the paper's log(1 - De), = GRL)
    msm: str = "auto"  # student corruption: "full" MSM, "inter" (conditions only), "auto"
    select: str | None = None  # student's validation loss: "conditions" (mean of 7) or "lav"
    student_init: str | None = None  # "fresh" (the paper) or "teacher" (start from its weights)
    modalities_off: list | None = None  # modalities whose input projection is zero and frozen
    norm: str | None = None  # "z" (per-feature z-score) or "shrunk" (std shrunk to the pooled)
    w_hmi: float = 1.0  # loss weights (the paper's are all 1)
    w_hal: float = 1.0
    w_kd: float = 1.0
    scale_reduce: str = "sum"  # HMI/HAL over representations: "sum" (§6.2) or "mean"
    ablate: str | None = None
    baseline: str | None = None
    device: str = "cpu"
    asr: str = "auto"  # clip lists: recognizer for clips without a transcript (asr_engines)
    asr_model: str | None = None
    model: dict = field(default_factory=dict)      # ModelConfig overrides (layers, d, ...)
    synthetic: dict = field(default_factory=dict)  # SyntheticConfig overrides

    def __post_init__(self):
        if self.ablate is not None and self.ablate not in ABLATIONS:
            raise InputError(f"ablate '{self.ablate}': not one of {list(ABLATIONS)}")
        if self.baseline is not None and self.baseline not in BASELINES:
            raise InputError(f"baseline '{self.baseline}': not one of {list(BASELINES)}")
        if self.ablate and self.baseline:
            raise InputError("--ablate and --baseline: choose one; an ablation is the full "
                             "student minus one term, the baseline has no teacher")
        if self.hal_form not in ("nonsaturating", "minimax"):
            raise InputError(f"config: hal_form '{self.hal_form}' is not 'nonsaturating' or "
                             "'minimax'")
        for m in self.modalities_off or ():
            if m not in ("text", "audio", "vision"):
                raise InputError(f"config: modalities_off: '{m}' is not text, audio or vision")
        if self.norm not in (None, "z", "shrunk"):
            raise InputError(f"config: norm '{self.norm}' is not 'z' or 'shrunk'")
        if self.student_init not in (None, "fresh", "teacher"):
            raise InputError(f"config: student_init '{self.student_init}' is not 'fresh' or "
                             "'teacher'")
        if self.select not in (None, "conditions", "lav"):
            raise InputError(f"config: select '{self.select}' is not 'conditions' or 'lav'")
        if self.scale_reduce not in ("sum", "mean"):
            raise InputError(f"config: scale_reduce '{self.scale_reduce}' is not 'sum' or "
                             "'mean'")
        if self.clip not in ("separate", "joint"):
            raise InputError(f"config: clip '{self.clip}' is not 'separate' or 'joint'")
        if not 0.0 <= float(self.min_delta) < 1.0:
            raise InputError(f"config: min_delta {self.min_delta} must be in [0, 1)")
        if self.msm not in ("full", "inter", "auto"):
            raise InputError(f"config: msm '{self.msm}' is not 'full', 'inter' or 'auto'")
        for k in ("epochs", "batch_size", "early_stop"):
            if getattr(self, k) is not None and int(getattr(self, k)) < 1:
                raise InputError(f"config: {k} must be >= 1, got {getattr(self, k)}")

    @property
    def name(self) -> str:
        """Model name in results: hrlf, dropout, no_frf, no_hmi or no_hal."""
        return self.baseline or (f"no_{self.ablate}" if self.ablate else "hrlf")

    @property
    def needs_teacher(self) -> bool:
        """Every student but ``dropout`` and ``msm_only`` learns from the teacher."""
        return self.baseline not in ("dropout", "msm_only")

    def weights(self) -> dict[str, float]:
        return {"task": 1.0, "frf": 1.0, "hmi": self.w_hmi, "hal": self.w_hal, "kd": self.w_kd}

    def student_terms(self) -> tuple[str, ...]:
        if self.baseline in ("dropout", "msm_only"):
            return ("task",)
        if self.baseline == "kd_only":
            return ("task", "kd")
        return tuple(t for t in ("task", "frf", "hmi", "hal", "kd") if t != self.ablate)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        for k in d:
            if k not in names:
                from ..errors import suggest

                raise InputError(f"{source}: unknown field '{k}'{suggest(k, names)}; "
                                 f"fields are {sorted(names)}")
        return cls(**d)


def model_config(cfg: TrainConfig, dims: dict) -> ModelConfig:
    """The architecture for data with feature ``dims`` (``model.dims``, if set, must agree)."""
    given = dict(cfg.model)
    for m, d in dict(given.pop("dims", None) or {}).items():
        if int(d) != int(dims.get(m, -1)):
            raise InputError(f"config: model.dims.{m} is {d} but the data has "
                             f"{dims.get(m)} {m} features; fix the config or the data")
    try:
        return ModelConfig(dims=dict(dims), **given)
    except TypeError as e:
        raise InputError(f"config: bad 'model' section ({e}); use ModelConfig field names") from None


@dataclass
class Prepared:
    """Normalized full-split arrays, computed once per run."""

    norm: dict
    train: dict
    train_y: np.ndarray
    valid: dict
    valid_y: np.ndarray


def prepare(ds: Dataset, norm: dict | None = None) -> Prepared:
    """Normalized train/valid arrays of a dataset (statistics from train unless given)."""
    return prepare_splits(ds.splits["train"], ds.splits["valid"], norm)


def prepare_splits(tr: Split, va: Split, norm: dict | None = None) -> Prepared:
    norm = norm or tr.norm()
    return Prepared(norm, tr.batch(norm), tr.label.astype(np.float32), va.batch(norm),
                    va.label.astype(np.float32))


class Stage:
    """One network being trained, with its optimizers, schedule and early-stopping state."""

    def __init__(self, role: str, cfg: TrainConfig, mcfg: ModelConfig, terms: tuple[str, ...],
                 corruption: str, teacher: HRLFNet | None = None):
        from .regime import filled

        cfg = filled(cfg)  # unset fields the caller did not choose: the paper's values
        self.role, self.cfg, self.terms, self.corruption = role, cfg, terms, corruption
        self.device = torch.device(cfg.device)
        self.teacher = teacher
        self.net = HRLFNet(mcfg).to(self.device)
        for m in cfg.modalities_off:
            switch_off(self.net, m)
        self.obj = Objective(self.net, terms, cfg.scale_reduce).to(self.device)
        self.disc = Discriminators(mcfg.d).to(self.device) if "hal" in terms else None
        self.obj_run = ddp.wrap(self.obj, find_unused=True)
        self.disc_run = ddp.wrap(self.disc) if self.disc is not None else None
        opt = (lambda p: torch.optim.AdamW(p, lr=cfg.lr, weight_decay=cfg.weight_decay)) \
            if cfg.weight_decay else (lambda p: torch.optim.Adam(p, lr=cfg.lr))
        self.opt = opt(self.obj.parameters())
        self.dopt = opt(self.disc.parameters()) if self.disc else None
        self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.opt, factor=cfg.lr_factor, patience=cfg.lr_patience)
        self.epoch, self.bad, self.best_loss, self.steps = 0, 0, float("inf"), 0
        self.best_state = copy.deepcopy(self.net.state_dict())
        self.history: list[dict] = []

    # ---- resume -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        s = {"role": self.role, "epoch": self.epoch, "bad": self.bad, "best_loss": self.best_loss,
             "steps": self.steps,
             "best_state": self.best_state, "obj": self.obj.state_dict(),
             "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
             "history": self.history, "torch_rng": torch.get_rng_state()}
        if self.disc is not None:
            s.update(disc=self.disc.state_dict(), dopt=self.dopt.state_dict())
        return s

    def load_state_dict(self, s: dict) -> None:
        self.obj.load_state_dict(s["obj"])
        self.opt.load_state_dict(s["opt"])
        self.sched.load_state_dict(s["sched"])
        if self.disc is not None:
            self.disc.load_state_dict(s["disc"])
            self.dopt.load_state_dict(s["dopt"])
        self.epoch, self.bad, self.best_loss = s["epoch"], s["bad"], s["best_loss"]
        self.best_state, self.history = s["best_state"], list(s["history"])
        self.steps = int(s.get("steps", 0))
        torch.set_rng_state(s["torch_rng"])

    # ---- one step / epoch ---------------------------------------------------------------
    def step(self, clean: dict, label: torch.Tensor, corrupted: dict) -> dict[str, float]:
        t_out = None
        if self.teacher is not None:
            with torch.no_grad():
                t_out = self.teacher(clean)
        self.obj_run.train()
        out, losses = self.obj_run(corrupted, label, t_out)
        if self.disc is not None:  # De step first (BCE), then the student fools the new De
            self.dopt.zero_grad(set_to_none=True)
            dl = disc_loss(self.disc_run, t_out, out)
            dl.backward()
            self.dopt.step()
            losses["hal"] = hal_loss(self.disc, out, self.cfg.hal_form, self.cfg.scale_reduce)
        w = self.cfg.weights()
        total = torch.stack([w[k] * v for k, v in losses.items()]).sum()
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        # clip the network's gradient on its own: the HMI statistic networks share the
        # optimizer, and their gradients must not shrink the network's step
        if self.cfg.clip == "joint":
            torch.nn.utils.clip_grad_norm_(self.obj.parameters(), self.cfg.grad_clip)
        else:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.grad_clip)
            if self.obj.critics is not None:
                torch.nn.utils.clip_grad_norm_(self.obj.critics.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.steps += 1
        logs = {k: float(v.detach()) for k, v in losses.items()}
        if self.disc is not None:
            logs["disc"] = float(dl.detach())
        return logs

    def validate(self, prep: Prepared) -> float:
        """Validation L_task: complete inputs (teacher, or ``select="lav"``) or mean over the 7
        conditions."""
        lav = self.role == "teacher" or self.cfg.select == "lav"
        conds = ("lav",) if lav else protocol.CONDITIONS
        y = torch.from_numpy(prep.valid_y).to(self.device)
        self.net.eval()
        losses = []
        with torch.no_grad():
            for c in conds:
                raw = predict_raw(self.net, protocol.apply_condition(prep.valid, c), self.device)
                losses.append(float(torch.mean((raw - y) ** 2)))
            self.z_std = z_spread(self.net, prep.valid, self.device)
        return float(np.mean(losses))

    def end_epoch(self, val: float, logs: dict, seconds: float) -> bool:
        """Bookkeeping after an epoch; returns True when training should stop."""
        self.epoch += 1
        self.sched.step(val)
        margin = max(1e-6, self.cfg.min_delta * abs(self.best_loss)) \
            if np.isfinite(self.best_loss) else 0.0
        if val < self.best_loss - margin:
            self.best_loss, self.bad = val, 0
            self.best_state = copy.deepcopy(self.net.state_dict())
        else:
            self.bad += 1
        self.history.append({"epoch": self.epoch, "lr": self.opt.param_groups[0]["lr"],
                             "train": logs, "valid_loss": val, "time_s": round(seconds, 3),
                             "z_std": getattr(self, "z_std", None)})
        return self.bad >= self.cfg.early_stop and self.steps >= self.cfg.min_steps

    def best_net(self) -> HRLFNet:
        self.net.load_state_dict(self.best_state)
        return self.net.eval()


def switch_off(net: HRLFNet, modality: str) -> None:
    """Make ``net`` ignore a modality: the output weights of its sentiment and specific
    encoders (E^S_m, E^M_m) are zero and frozen, so its part of H is a constant whatever
    its features or frame masks (present or absent alike)."""
    for enc in (net.sent[modality], net.spec[modality]):
        w = enc[-1].weight
        with torch.no_grad():
            w.zero_()
        w.requires_grad_(False)


@torch.no_grad()
def z_spread(net: HRLFNet, batch: dict, device="cpu", chunk: int = 1024) -> dict[str, float]:
    """Collapse monitor: across-sample std of Z_m (mean over dims) and of Ht, complete inputs.

    A student whose representations stop depending on the input shows it here first.
    """
    n = len(next(iter(batch.values())))
    zs: dict[str, list] = {}
    for i in range(0, n, chunk):
        out = net(D.to_torch(D.take(batch, np.arange(i, min(n, i + chunk))), device))
        for k, v in {**out["Z"], "Ht": out["Ht"]}.items():
            zs.setdefault(k, []).append(v)
    return {k: round(float(torch.cat(v).std(0).mean()), 4) for k, v in zs.items()}


def predict_raw(net: HRLFNet, batch: dict, device, chunk: int = 1024) -> torch.Tensor:
    """Unclamped predictions for a numpy batch, in chunks."""
    n = len(next(iter(batch.values())))
    outs = [net(D.to_torch(D.take(batch, np.arange(i, min(n, i + chunk))), device))["raw"]
            for i in range(0, n, chunk)]
    return torch.cat(outs)


def run_stage(stage: Stage, prep: Prepared, epochs: int, progress: bool = False,
              on_epoch: Callable[[Stage], None] | None = None) -> Stage:
    """Train ``stage`` from its current epoch up to ``epochs`` (or until early stopping).

    ``progress``: a bar on a terminal, else a log line at the end of the stage
    (:mod:`hrlf.train.progress`)."""
    from .progress import progress as reporter

    rank, world = ddp.rank_world()
    n = len(prep.train_y)
    steps = -(-n // world // max(1, stage.cfg.batch_size // world))
    stop = stage.bad >= stage.cfg.early_stop and stage.steps >= stage.cfg.min_steps
    total = max(0, epochs - stage.epoch) * steps
    with reporter(progress and rank == 0 and not stop and total > 0, total, stage.role,
                  "step") as bar:
        while stage.epoch < epochs and not stop:
            stop = _epoch(stage, prep, n, rank, world, bar)
            if on_epoch is not None:
                on_epoch(stage)
    return stage


def _epoch(stage: Stage, prep: Prepared, n: int, rank: int, world: int, bar) -> bool:
    """One epoch of ``stage``; True when early stopping ends the stage."""
    t0 = time.time()
    rng = np.random.default_rng([stage.cfg.seed, _ROLE_ID[stage.role], stage.epoch])
    sums: dict[str, float] = {}
    k = 0
    for idx in D.epoch_batches(n, stage.cfg.batch_size, rng, rank, world):
        clean = D.take(prep.train, idx)
        noisy = D.corrupt(clean, stage.corruption, np.random.default_rng(rng.integers(2**63)))
        y = torch.from_numpy(prep.train_y[idx]).to(stage.device)
        logs = stage.step(D.to_torch(clean, stage.device), y, D.to_torch(noisy, stage.device))
        k += 1
        for key, v in logs.items():
            sums[key] = sums.get(key, 0.0) + v
        if bar is not None:
            bar.update(1)
            bar.set_postfix({key: f"{v / k:.3f}" for key, v in sums.items()}, refresh=False)
    val = stage.validate(prep)
    stop = stage.end_epoch(val, {key: v / max(k, 1) for key, v in sums.items()}, time.time() - t0)
    if bar is not None:
        bar.set_description(f"{stage.role} ep {stage.epoch} val {val:.3f}")
    return stop


_ROLE_ID = {"teacher": 1, "student": 2}


def make_teacher_stage(cfg: TrainConfig, dims: dict) -> Stage:
    torch.manual_seed(cfg.seed)
    return Stage("teacher", cfg, model_config(cfg, dims), ("task", "frf"), "none")


def msm_mode(cfg: TrainConfig, frames: dict | None) -> str:
    """The student's corruption: full MSM, or its inter-modality part alone (``inter``).

    ``auto`` uses ``inter`` when every modality has one frame per window: there, dropping
    frames at p ~ U[0, 1) erases whole modalities and leaves 39% of the samples with no
    input at all, which the paper's 50-frame sequences never do.
    """
    if cfg.msm == "inter" or (cfg.msm == "auto" and frames and max(frames.values()) == 1):
        return "dropout"
    return "msm"


def make_student_stage(cfg: TrainConfig, dims: dict, teacher: HRLFNet | None,
                       dims_frames: dict | None = None) -> Stage:
    """The student (or dropout baseline); ``teacher`` is frozen here (eval, no grad)."""
    torch.manual_seed(cfg.seed + 1)
    if teacher is not None:
        teacher = teacher.to(cfg.device).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    corruption = "dropout" if cfg.baseline == "dropout" else msm_mode(cfg, dims_frames)
    stage = Stage("student", cfg, model_config(cfg, dims), cfg.student_terms(), corruption,
                  teacher=teacher if cfg.needs_teacher else None)
    if stage.cfg.student_init == "teacher" and stage.teacher is not None:
        stage.net.load_state_dict(teacher.state_dict())  # same architecture, own copy
        stage.best_state = copy.deepcopy(stage.net.state_dict())
    return stage


def train_teacher(cfg: TrainConfig, prep: Prepared, progress: bool = False) -> HRLFNet:
    stage = make_teacher_stage(cfg, _dims(prep))
    run_stage(stage, prep, cfg.teacher_epochs or stage.cfg.epochs, progress)
    return stage.best_net()


def train_student(cfg: TrainConfig, prep: Prepared, teacher: HRLFNet | None,
                  progress: bool = False) -> HRLFNet:
    stage = make_student_stage(cfg, _dims(prep), teacher, frames_of(prep))
    run_stage(stage, prep, stage.cfg.epochs, progress)
    return stage.best_net()


def frames_of(prep: Prepared) -> dict:
    return {m: int(prep.train[m].shape[1]) for m in ("text", "audio", "vision")}


def _dims(prep: Prepared) -> dict:
    return {m: int(prep.train[m].shape[-1]) for m in ("text", "audio", "vision")}
