"""The missingness protocol: one numpy implementation for training, evaluation and tests.

A *batch* is a dict keyed by the model's input names (see :func:`hrlf.runtime.spec.input_names`):
``text``/``audio``/``vision`` float32 ``(B, T_m, d_m)``, ``<modality>_mask`` float32 ``(B, T_m)``
and ``modality_mask`` float32 ``(B, 3)``. Nothing downstream has to guess absence from zeros:
every missing modality or frame has its mask bit off *and* its features zeroed (the paper's
convention is zeroing alone).

* Inter-modality: the 7 test conditions are named by the modalities that are *kept*:
  ``l``, ``a``, ``v``, ``la``, ``lv``, ``av``, ``lav`` (printed ``{l}``, ``{l,a}``, ...).
* Intra-modality: at ratio r, exactly ``round(r * n)`` of the n valid frames of each modality
  of each sample are dropped (round half up), chosen uniformly by a seeded generator.
* Training-time MSM ("modality stochastic missing"): per sample, a condition drawn uniformly
  from the 7, and p ~ U[0, 1); each valid frame of a kept modality is dropped with prob. p.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import InputError, suggest
from .spec import LETTERS, MODALITIES, MODALITY_MASK, frame_mask_name

Batch = dict  # str -> np.ndarray, keyed by input_names()

CONDITIONS = ("l", "a", "v", "la", "lv", "av", "lav")
INCOMPLETE = CONDITIONS[:6]
INTRA_RATIOS = tuple(round(0.1 * i, 1) for i in range(11))
_BY_LETTER = {v: k for k, v in LETTERS.items()}


def condition_modalities(cond: str) -> tuple[str, ...]:
    """Modalities kept by a condition, in spec order (``'la'`` -> ``('text', 'audio')``)."""
    return tuple(m for m in MODALITIES if LETTERS[m] in parse_condition(cond))


def condition_label(cond: str) -> str:
    """``'la'`` -> ``'{l,a}'``."""
    return "{" + ",".join(parse_condition(cond)) + "}"


def parse_condition(text: str) -> str:
    """Canonical key of a condition written as ``la``, ``{l,a}``, ``l,a`` or ``text+audio``.

    Raises:
        InputError: not one of the 7 conditions.
    """
    raw = str(text).strip().strip("{}").replace(" ", "")
    parts = [p for p in raw.replace("+", ",").split(",") if p]
    if len(parts) == 1 and parts[0] not in MODALITIES:
        parts = list(parts[0])
    letters = set()
    for p in parts:
        letter = LETTERS.get(p, p)
        if letter not in _BY_LETTER:
            letters = None
            break
        letters.add(letter)
    key = "".join(c for c in "lav" if letters and c in letters)
    if key not in CONDITIONS:
        raise InputError(f"condition '{text}': not one of {list(CONDITIONS)}"
                         f"{suggest(raw, CONDITIONS)}; name the kept modalities with l/a/v")
    return key


def modality_mask(cond: str) -> np.ndarray:
    """(3,) float32, 1 for each modality the condition keeps."""
    kept = condition_modalities(cond)
    return np.array([m in kept for m in MODALITIES], np.float32)


def batch_size(batch: Mapping[str, np.ndarray]) -> int:
    return int(batch[MODALITY_MASK].shape[0])


def copy_batch(batch: Mapping[str, np.ndarray]) -> Batch:
    return {k: np.array(v, copy=True) for k, v in batch.items()}


def _zero_masked(batch: Batch) -> Batch:
    """Zero features wherever the effective frame mask is 0 (in place)."""
    for i, m in enumerate(MODALITIES):
        fm = batch[frame_mask_name(m)] * batch[MODALITY_MASK][:, i:i + 1]
        batch[frame_mask_name(m)] = fm.astype(np.float32)
        batch[m] = batch[m] * fm[..., None].astype(batch[m].dtype)
    return batch


def apply_condition(batch: Mapping[str, np.ndarray], cond: str) -> Batch:
    """A copy of ``batch`` with every modality not kept by ``cond`` absent for all samples."""
    out = copy_batch(batch)
    out[MODALITY_MASK] = out[MODALITY_MASK] * modality_mask(cond)[None, :]
    return _zero_masked(out)


def drop_frames(batch: Mapping[str, np.ndarray], ratio: float, rng: np.random.Generator) -> Batch:
    """Intra-modality missingness: drop exactly round(ratio * n_valid) frames per modality.

    Args:
        batch: input batch (not modified).
        ratio: fraction in [0, 1] of each sample's valid frames to drop, per modality.
        rng: seeded generator; the same seed drops the same frames.
    """
    if not 0.0 <= ratio <= 1.0:
        raise InputError(f"intra ratio {ratio}: must be in [0, 1]")
    out = copy_batch(batch)
    for m in MODALITIES:
        fm = out[frame_mask_name(m)]
        valid = fm > 0
        n_drop = np.floor(ratio * valid.sum(axis=1) + 0.5).astype(np.int64)  # round half up
        # rank the valid frames of each row in random order; invalid frames rank last
        keys = np.where(valid, rng.random(fm.shape), np.inf)
        rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
        out[frame_mask_name(m)] = np.where(rank < n_drop[:, None], 0.0, fm).astype(np.float32)
    return _zero_masked(out)


def sample_msm(batch: Mapping[str, np.ndarray], rng: np.random.Generator,
               conditions: tuple[str, ...] = CONDITIONS) -> tuple[Batch, np.ndarray]:
    """Training-time stochastic missingness (inter and intra at once, per sample).

    Returns:
        The corrupted copy, and the (B,) index into ``conditions`` drawn for each sample.
    """
    out = copy_batch(batch)
    n = batch_size(out)
    drawn = rng.integers(0, len(conditions), size=n)
    masks = np.stack([modality_mask(c) for c in conditions])
    out[MODALITY_MASK] = out[MODALITY_MASK] * masks[drawn]
    p = rng.random(n)
    for m in MODALITIES:
        fm = out[frame_mask_name(m)]
        keep = rng.random(fm.shape) >= p[:, None]
        out[frame_mask_name(m)] = (fm * keep).astype(np.float32)
    return _zero_masked(out), drawn


def modality_dropout(batch: Mapping[str, np.ndarray], rng: np.random.Generator) -> Batch:
    """The dropout baseline's corruption: a uniformly drawn condition per sample, no frame drops."""
    out = copy_batch(batch)
    masks = np.stack([modality_mask(c) for c in CONDITIONS])
    out[MODALITY_MASK] = out[MODALITY_MASK] * masks[rng.integers(0, len(CONDITIONS), batch_size(out))]
    return _zero_masked(out)
