"""Data for training and evaluation: resolve ``--data``, check it, and batch it as numpy.

``--data`` is ``synthetic`` (the seeded generator), a ``.csv`` clip list (another module,
:mod:`hrlf.train.clips`), or the CMU-MOSI npz / a folder holding it; without ``--data``,
``$HRLF_DATA`` is used, and without that the synthetic data. Batches are dicts of float32
numpy arrays keyed by the ONNX input names; missingness is applied in numpy with
:mod:`hrlf.runtime.protocol` (the one implementation), then converted to torch.
"""
from __future__ import annotations

import os
from typing import Iterator, Mapping

import numpy as np

from ..runtime import protocol
from ..runtime.datasets import Dataset, Split, load_mosi
from ..errors import DataError
from ..runtime.spec import MODALITIES

SYNTHETIC = "synthetic"
#: Smaller than the generator's default so that one CLI epoch stays fast on 2 CPU cores.
SYNTHETIC_DEFAULT = {"videos": {"train": 60, "valid": 15, "test": 30}}


def resolve_source(data: str | None) -> str:
    """The data source: ``data``, else ``$HRLF_DATA``, else ``synthetic``."""
    return data or os.environ.get("HRLF_DATA") or SYNTHETIC


def recordable_source(data: str | None) -> str:
    """:func:`resolve_source`, with a file's path made absolute (what config.json keeps, so
    that ``hrlf-eval RUN_DIR`` finds the data from any folder)."""
    source = resolve_source(data)
    return os.path.abspath(source) if source != SYNTHETIC and os.path.exists(source) else source


def load_data(data: str | None, synthetic: Mapping | None = None,
              splits: tuple = ("train", "valid", "test"), clips: Mapping | None = None) -> Dataset:
    """Load and check a dataset.

    Args:
        data: ``synthetic``, a ``.csv`` clip list, the MOSI npz or its folder (None: see
            :func:`resolve_source`).
        synthetic: overrides of :class:`hrlf.runtime.synthetic.SyntheticConfig` fields.
        splits: the splits that must be there (a clip list loads only these).
        clips: more arguments of :func:`hrlf.train.clips.load_clips` (evaluation).

    Raises:
        DataError: missing/unreadable file, wrong shapes, NaN/Inf features.
    """
    source = resolve_source(data)
    if source == SYNTHETIC:
        from ..runtime.synthetic import SyntheticConfig, make_synthetic

        fields = {**SYNTHETIC_DEFAULT, **dict(synthetic or {})}
        try:
            ds = make_synthetic(SyntheticConfig(**fields))
        except TypeError as e:
            raise DataError(f"config: bad 'synthetic' section ({e}); use SyntheticConfig "
                            "field names") from None
    elif source.lower().endswith(".csv"):
        from .clips import load_clips  # lazy: its own dependencies

        ds = load_clips(source, splits=splits, **dict(clips or {}))
    else:
        ds = load_mosi(source)
    check_finite(ds, source)
    for s in splits:
        if s not in ds.splits or len(ds.splits[s]) == 0:
            raise DataError(f"{source}: split '{s}' is missing or empty; provide train, valid "
                            "and test")
    return ds


def check_finite(ds: Dataset, source: str) -> None:
    """Raise DataError naming the first array with NaN/Inf (features or labels)."""
    for name, split in ds.splits.items():
        for m in MODALITIES:
            if not np.isfinite(split.feats[m]).all():
                raise DataError(f"{source}: '{name}_{m}' features contain NaN/Inf; clean or "
                                "re-extract them")
        if not np.isfinite(split.label).all():
            raise DataError(f"{source}: '{name}_label' contains NaN/Inf; fix the labels")


def recorded_source(run_dir: str, spec) -> str:
    """The data ``run_dir`` was trained on, as its config.json recorded it (``synthetic``
    or a path; a relative path is tried from here), checked to exist.

    Raises:
        DataError: the recorded file is not found (one line: what it was, and --data).
    """
    import json

    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            recorded = json.load(f).get("data")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if spec.data.get("source") == SYNTHETIC or recorded == SYNTHETIC:
        return SYNTHETIC
    if isinstance(recorded, str) and os.path.exists(recorded):
        return recorded
    what = spec.data.get("file") or spec.data.get("source")
    raise DataError(f"{run_dir}: trained on {what} (sha256 {str(spec.data.get('sha256'))[:12]}…"
                    f"{f', recorded as {recorded}' if recorded else ''}), which is not found "
                    "from here; pass --data PATH")


def check_dims(ds: Dataset, dims: Mapping[str, int], what: str) -> None:
    """Raise DataError when the data's feature dims differ from ``dims`` (named by ``what``)."""
    for m in MODALITIES:
        have = ds.features[m].dim
        if int(dims[m]) != have:
            raise DataError(f"{what}: {m} has {dims[m]} features but the data has {have}; "
                            "use the data the model was trained on or retrain")


def dims_of(ds: Dataset) -> dict[str, int]:
    return {m: ds.features[m].dim for m in MODALITIES}


def split_of(ds: Dataset, name: str) -> Split:
    return ds.splits[name]


def take(batch: Mapping[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    """Rows ``idx`` of a batch."""
    return {k: v[idx] for k, v in batch.items()}


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator, rank: int = 0,
                  world: int = 1) -> Iterator[np.ndarray]:
    """Shuffled index batches for one epoch; rank ``r`` of ``world`` gets every world-th row.

    Every rank draws the same permutation (same ``rng`` state), so the shards are disjoint.
    A last batch smaller than 2 rows is dropped (batch statistics such as the MI negatives
    need at least two samples).
    """
    perm = rng.permutation(n)[rank::world]
    per_rank = max(1, batch_size // world)
    for i in range(0, len(perm), per_rank):
        idx = perm[i:i + per_rank]
        if len(idx) >= 2 or len(perm) < 2:
            yield idx


def corrupt(batch: Mapping[str, np.ndarray], mode: str, rng: np.random.Generator) -> dict:
    """Training-time missingness: ``none`` (complete), ``msm`` or ``dropout``."""
    if mode == "msm":
        return protocol.sample_msm(batch, rng)[0]
    if mode == "dropout":
        return protocol.modality_dropout(batch, rng)
    return dict(batch)


def to_torch(batch: Mapping[str, np.ndarray], device="cpu") -> dict:
    """numpy batch -> float32 torch tensors on ``device``."""
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)).to(device)
            for k, v in batch.items()}
