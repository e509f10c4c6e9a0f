"""HRLF losses (method spec §3 with the §6 resolutions).

The paper's weights are all 1; :class:`hrlf.train.loop.TrainConfig` can scale HMI, HAL
and KD (``w_hmi``, ``w_hal``, ``w_kd``) and average the HMI/HAL terms over scales instead
of summing them over the five representations (``scale_reduce``).

* ``task``: MSE of the raw prediction against the label.
* ``frf``: fine-grained representation factorization = intra/inter-modality translation
  through the shared decoder D_r + sentiment reconstruction (per network, own Z as target).
* ``hmi``: minus the Deep-InfoMax JSD mutual-information estimate between teacher and
  student representations, summed over the three scales; negatives roll the batch by one.
* ``hal``: non-saturating adversarial loss -log De_i(student) per scale (the discriminator
  step uses BCE with teacher = 1, student = 0).
* ``kd``: MSE between the student's and the frozen teacher's predictions (§6.3).

Scales: E1 = {H, Ht} (3d), E2 = {I1, I3} (2d), E3 = {I2} (d); one statistic network and
one discriminator per scale, shared by the representations of that scale (§6.2).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime.spec import MODALITIES
from .model import HRLFNet, mlp

SCALES = (("H", "Ht"), ("I1", "I3"), ("I2",))
TERMS = ("task", "frf", "hmi", "hal", "kd")
REDUCES = ("sum", "mean")


def reduce_scales(terms: list[torch.Tensor], reduce: str = "sum") -> torch.Tensor:
    """Per-representation terms (order of :data:`SCALES`) -> one loss.

    ``sum``: the sum over the five representations (§6.2); ``mean``: the mean over the
    three scales of the mean within each scale (one term's magnitude).
    """
    t = torch.stack(terms)
    if reduce == "sum":
        return t.sum()
    sizes = [len(names) for names in SCALES]
    return torch.stack([p.mean() for p in torch.split(t, sizes)]).mean()


def scale_dims(d: int) -> tuple[int, int, int]:
    """Widths of the three scales for embedding size ``d``."""
    return 3 * d, 2 * d, d


def task_loss(out: dict, label: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out["raw"], label)


def frf_loss(net: HRLFNet, out: dict) -> torch.Tensor:
    """L_trans (self + cross translation) + L_recon, per-element MSE (§6.12, §6.14)."""
    q, u, z = out["Q"], out["U"], out["Z"]
    self_t = torch.stack([F.mse_loss(net.translate(q[a], u[a]), z[a]) for a in MODALITIES]).mean()
    cross = torch.stack([F.mse_loss(net.translate(q[a], u[b]), z[b])
                         for a in MODALITIES for b in MODALITIES if a != b]).mean()
    recon = torch.stack([F.mse_loss(net.sent[a](net.translate(q[b], u[a])), q[a])
                         for a in MODALITIES for b in MODALITIES]).mean()
    return self_t + cross + recon


def kd_loss(student: dict, teacher: dict) -> torch.Tensor:
    return F.mse_loss(student["raw"], teacher["raw"].detach())


def jsd_mi(stat: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Deep-InfoMax JSD MI estimate between teacher reps ``x`` and student reps ``y`` (B, k).

    Joint pairs are (x_i, y_i); marginal pairs (x_{i-1}, y_i), the batch rolled by one.
    """
    joint = stat(torch.cat([x, y], -1))
    marg = stat(torch.cat([x.roll(1, 0), y], -1))
    return (-F.softplus(-joint)).mean() - F.softplus(marg).mean()


class Critics(nn.Module):
    """The HMI statistic networks T_theta,i: MLP([x; y]) with hidden 2*dim -> scalar."""

    def __init__(self, d: int, reduce: str = "sum"):
        super().__init__()
        self.stat = nn.ModuleList(mlp(2 * k, 2 * k, 1) for k in scale_dims(d))
        self.reduce = reduce

    def forward(self, teacher: dict, student: dict) -> torch.Tensor:
        """L_HMI = -(sum or mean, :func:`reduce_scales`) of MI(teacher, student)."""
        mi = [jsd_mi(t, teacher[name].detach(), student[name])
              for t, names in zip(self.stat, SCALES) for name in names]
        return -reduce_scales(mi, self.reduce)


class Discriminators(nn.Module):
    """The HAL discriminators De_i (logits): two FC layers per scale."""

    def __init__(self, d: int):
        super().__init__()
        self.nets = nn.ModuleList(mlp(k, k, 1) for k in scale_dims(d))

    def forward(self, reps: dict) -> list[torch.Tensor]:
        """Logits for every representation, scale by scale (order of :data:`SCALES`)."""
        return [net(reps[name]) for net, names in zip(self.nets, SCALES) for name in names]


def disc_loss(disc: nn.Module, teacher: dict, student: dict) -> torch.Tensor:
    """The discriminator step: BCE with teacher = 1 (real), detached student = 0 (fake)."""
    real = disc({k: v.detach() for k, v in teacher.items() if k in _REPS})
    fake = disc({k: v.detach() for k, v in student.items() if k in _REPS})
    terms = [F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
             + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
             for r, f in zip(real, fake)]
    return torch.stack(terms).sum()


def hal_loss(disc: nn.Module, student: dict, form: str = "nonsaturating",
             reduce: str = "sum") -> torch.Tensor:
    """The student's adversarial loss, summed over scales and their representations.

    Args:
        form: ``nonsaturating``: -log De_i(s) (§6.9); ``minimax``: the paper's own
            log(1 - De_i(s)) (what a gradient-reversal layer optimizes), whose gradient
            fades where the discriminator is confident.
        reduce: ``sum`` or ``mean`` over the representations (:func:`reduce_scales`).
    """
    logits = disc({k: v for k, v in student.items() if k in _REPS})
    if form == "minimax":
        terms = [-F.binary_cross_entropy_with_logits(g, torch.zeros_like(g)) for g in logits]
    else:
        terms = [F.binary_cross_entropy_with_logits(g, torch.ones_like(g)) for g in logits]
    return reduce_scales(terms, reduce)


_REPS = {n for names in SCALES for n in names}


class Objective(nn.Module):
    """One network and its loss terms, as one module so DDP sees every trained parameter.

    Args:
        net: the network being trained.
        terms: which of :data:`TERMS` to compute (``hal`` is handled by the loop, since its
            discriminator has its own optimizer).
        reduce: how HMI combines its per-representation terms (:func:`reduce_scales`).
    """

    def __init__(self, net: HRLFNet, terms: tuple[str, ...], reduce: str = "sum"):
        super().__init__()
        self.net = net
        self.terms = tuple(terms)
        self.critics = Critics(net.config.d, reduce) if "hmi" in self.terms else None

    def forward(self, batch: dict, label: torch.Tensor, teacher: dict | None = None):
        """Returns the network's outputs and a dict of loss terms (without ``hal``)."""
        out = self.net(batch)
        losses = {"task": task_loss(out, label)}
        if "frf" in self.terms:
            losses["frf"] = frf_loss(self.net, out)
        if "hmi" in self.terms:
            losses["hmi"] = self.critics(teacher, out)
        if "kd" in self.terms:
            losses["kd"] = kd_loss(out, teacher)
        return out, losses
