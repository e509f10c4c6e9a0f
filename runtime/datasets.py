"""Data in one numpy vocabulary: timestamped recordings, packed splits, and the MOSI loader.

* A :class:`Recording` is one "video": per modality, ascending timestamps and raw frames,
  plus a piecewise-constant sentiment trajectory that gives any window its label.
* A :class:`Split` is a set of windows packed with :func:`hrlf.kernels.pack.pack_segments`
  (raw, unnormalized values; every modality present) with labels and video ids.
  :meth:`Split.batch` normalizes it with a spec's statistics into a model batch.
* CMU-MOSI utterance features (one frame per clip) become one recording per split in which
  clip k occupies second [k, k+1): the 1-second window k is exactly clip k, which is how
  the streaming runtime replays the test split and reproduces offline evaluation.

Torch-free: the runtime's replay and demo sources use it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..kernels.pack import pack_segments
from ..errors import DataError
from .limits import check_npz
from .spec import (MODALITIES, MODALITY_MASK, ModalitySpec, ModelSpec,
                   frame_mask_name, sha256_file)

from .recording import Recording  # noqa: F401  (its home before; imported from here too)

Norm = Mapping[str, Mapping[str, Sequence[float]]]


@dataclass
class Split:
    """Packed windows (raw values) with labels.

    Attributes:
        feats: modality -> (N, T_m, d_m) float32 raw slot means (0 where empty).
        masks: modality -> (N, T_m) float32 frame masks.
        label: (N,) float32 in [-3, 3].
        group: (N,) str recording/video id (for grouped cross-validation).
        ids: (N,) str window id ``<video>@<start>`` or the MOSI clip id.
    """

    feats: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    label: np.ndarray
    group: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.label)

    def subset(self, idx: np.ndarray) -> "Split":
        return Split({m: v[idx] for m, v in self.feats.items()},
                     {m: v[idx] for m, v in self.masks.items()},
                     self.label[idx], self.group[idx], self.ids[idx])

    def batch(self, norm: Norm, idx: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Model input batch: normalized features, frame masks, all modalities present."""
        sel = slice(None) if idx is None else idx
        out = {}
        for m in MODALITIES:
            mask = self.masks[m][sel]
            mean = np.asarray(norm[m]["mean"], np.float32)
            std = np.asarray(norm[m]["std"], np.float32)
            out[m] = ((self.feats[m][sel] - mean) / std * mask[..., None]).astype(np.float32)
            out[frame_mask_name(m)] = mask.astype(np.float32)
        out[MODALITY_MASK] = np.ones((len(out[MODALITIES[0]]), len(MODALITIES)), np.float32)
        return out

    def norm(self) -> dict[str, dict[str, tuple[float, ...]]]:
        """z-score statistics over the valid slots (std below 1e-6 becomes 1; a modality with
        no valid slot at all gets mean 0, std 1)."""
        out = {}
        for m in MODALITIES:
            x = self.feats[m][self.masks[m] > 0].astype(np.float64)
            if len(x) == 0:  # a modality absent from all training data: identity stats
                dim = self.feats[m].shape[-1]
                out[m] = {"mean": (0.0,) * dim, "std": (1.0,) * dim}
                continue
            std = x.std(0)
            std[std < 1e-6] = 1.0
            out[m] = {"mean": tuple(x.mean(0).tolist()), "std": tuple(std.tolist())}
        return out


def concat_splits(splits: Sequence[Split]) -> Split:
    return Split({m: np.concatenate([s.feats[m] for s in splits]) for m in MODALITIES},
                 {m: np.concatenate([s.masks[m] for s in splits]) for m in MODALITIES},
                 np.concatenate([s.label for s in splits]),
                 np.concatenate([s.group for s in splits]),
                 np.concatenate([s.ids for s in splits]))


def pack_recordings(recordings: Sequence[Recording], features: Mapping[str, ModalitySpec],
                    window_s: float, hop_s: float) -> Split:
    """Cut every recording into windows and pack them raw (no normalization)."""
    parts = []
    for rec in recordings:
        starts = rec.window_starts(window_s, hop_s)
        if len(starts) == 0:
            continue
        feats, masks = {}, {}
        for m in MODALITIES:
            f = features[m]
            feats[m], masks[m] = pack_segments(
                rec.frames[m], rec.times[m], starts, window_s=window_s, rate_hz=f.frame_rate_hz,
                n_frames=f.frames, mean=np.zeros(f.dim, np.float32), std=np.ones(f.dim, np.float32))
        ids = np.array([f"{rec.id}@{t:g}" for t in starts])
        parts.append(Split(feats, masks, rec.label(starts, window_s),
                           np.full(len(starts), rec.id), ids))
    if not parts:
        raise DataError(f"no recording is longer than one window ({window_s} s)")
    return concat_splits(parts)


@dataclass
class Dataset:
    """Splits plus what a spec needs to describe them.

    Attributes:
        name: ``mosi`` or ``synthetic``.
        splits: split name -> :class:`Split` (``train``, ``valid``, ``test``).
        features: modality -> :class:`ModalitySpec`.
        window_s, hop_s: windowing of the recordings.
        fingerprint: ``data`` field of the spec (source, sha256, sizes).
    """

    name: str
    splits: dict[str, Split]
    features: dict[str, ModalitySpec]
    window_s: float
    hop_s: float
    fingerprint: dict = field(default_factory=dict)

    def spec(self, norm: Norm, **extra) -> ModelSpec:
        """A model spec for a model trained on this data with ``norm`` statistics."""
        return ModelSpec(features=dict(self.features), window_s=self.window_s, hop_s=self.hop_s,
                         norm={m: {k: tuple(v) for k, v in s.items()} for m, s in norm.items()},
                         data=dict(self.fingerprint), **extra)


def group_folds(groups: np.ndarray, k: int) -> np.ndarray:
    """Assign each sample a fold in [0, k) so that no group (video) spans two folds.

    Deterministic: groups sorted by size (then id) go to the fold with the fewest samples.
    """
    names, counts = np.unique(groups, return_counts=True)
    if len(names) < k:
        raise DataError(f"{len(names)} videos cannot make {k} folds; use fewer folds")
    order = sorted(range(len(names)), key=lambda i: (-counts[i], names[i]))
    load = np.zeros(k, np.int64)
    fold_of = {}
    for i in order:
        f = int(np.argmin(load))
        fold_of[names[i]] = f
        load[f] += counts[i]
    return np.array([fold_of[g] for g in groups], np.int64)


# ---- CMU-MOSI utterance features ----------------------------------------------------------
MOSI_FILE = "mosi_utterance.npz"
MOSI_DIMS = {"text": 100, "audio": 73, "vision": 100}
MOSI_SIZES = {"train": 1252, "valid": 195, "test": 752}
MOSI_FEATURIZERS = {"text": "mosi-bclstm-text-cnn", "audio": "mosi-bclstm-opensmile",
                    "vision": "mosi-bclstm-3dcnn"}
MOSI_FEATURES = {m: ModalitySpec(dim=MOSI_DIMS[m], frame_rate_hz=1.0, frames=1,
                                 featurizer=MOSI_FEATURIZERS[m]) for m in MODALITIES}


def resolve_mosi_path(path: str | os.PathLike | None = None) -> str:
    """The MOSI npz from ``path`` (file or folder) or else ``$HRLF_DATA``.

    Raises:
        DataError: neither is given, or the file does not exist.
    """
    path = path if path is not None else os.environ.get("HRLF_DATA")
    if not path:
        raise DataError(f"MOSI data: no path given; pass --data PATH/{MOSI_FILE} or set HRLF_DATA")
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, MOSI_FILE)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file; pass --data pointing to {MOSI_FILE} "
                        "(e.g. ../shared/data/mosi/) or set HRLF_DATA")
    return path


def _read_mosi(path: str) -> dict[str, dict[str, np.ndarray]]:
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:  # np.load raises many types for a foreign file
        raise DataError(f"{path}: not a readable npz file ({type(e).__name__}); "
                        f"pass the CMU-MOSI {MOSI_FILE}") from None
    if not hasattr(z, "files"):  # a bare .npy array, not an archive of named arrays
        raise DataError(f"{path}: holds one array, not the named arrays of an npz; pass the "
                        f"CMU-MOSI {MOSI_FILE}")
    out = {}
    with z:
        check_npz(z, path, DataError)  # before any array is inflated
        for s in MOSI_SIZES:
            d = {key: _mosi_array(z, path, f"{s}_{key}")
                 for key in list(MODALITIES) + ["label", "video", "clip"]}
            y = d["label"]
            if y.ndim != 1 or not np.isfinite(y).all() or (len(y) and np.abs(y).max() > 3):
                raise DataError(f"{path}: '{s}_label' must be one row of finite values in "
                                f"[-3, 3] (shape {y.shape}); pass the documented {MOSI_FILE}")
            n = len(y)
            for m in MODALITIES:
                if d[m].shape != (n, MOSI_DIMS[m]):
                    raise DataError(f"{path}: '{s}_{m}' has shape {d[m].shape}, expected "
                                    f"({n}, {MOSI_DIMS[m]}); pass the documented {MOSI_FILE}")
                if not np.isfinite(d[m]).all():
                    raise DataError(f"{path}: '{s}_{m}' contains NaN/Inf; rebuild the file "
                                    "with build_mosi_npz.py")
            if d["video"].shape != (n,) or d["clip"].shape != (n,):
                raise DataError(f"{path}: '{s}_video'/'{s}_clip' must have {n} entries")
            out[s] = d
    return out


def _mosi_array(z, path: str, name: str) -> np.ndarray:
    """Array ``name`` of an open npz; features and labels must be real numbers."""
    if name not in z.files:
        raise DataError(f"{path}: array '{name}' is missing; pass the CMU-MOSI "
                        f"{MOSI_FILE} described in its README")
    try:
        a = z[name]
    except ValueError as e:  # allow_pickle=False refuses object arrays; bad headers too
        why = "it holds Python objects" if "allow_pickle" in str(e) else str(e).splitlines()[0]
        raise DataError(f"{path}: array '{name}' cannot be read ({why}); save it as a plain "
                        "numeric or string array") from None
    except Exception as e:  # a truncated/corrupt member: zlib.error, EOFError, BadZipFile...
        kind = type(e).__name__ if type(e).__module__ == "builtins" else \
            f"{type(e).__module__}.{type(e).__name__}"
        raise DataError(f"{path}: array '{name}' is corrupt ({kind}); copy the "
                        f"CMU-MOSI {MOSI_FILE} again") from None
    numeric = not name.endswith(("_video", "_clip"))
    if numeric and a.dtype.kind not in "iuf":
        raise DataError(f"{path}: '{name}' has dtype {a.dtype}, not real numbers; store the "
                        "features and labels as float32")
    return a


def mosi_recording(path: str | os.PathLike | None, split: str) -> Recording:
    """One MOSI split as a stream: clip k is one frame per modality at t = k + 0.5 s."""
    d = _read_mosi(resolve_mosi_path(path))[split]
    n = len(d["label"])
    t = np.arange(n) + 0.5
    return Recording(id=f"mosi-{split}", duration_s=float(n),
                     times={m: t.copy() for m in MODALITIES},
                     frames={m: d[m].astype(np.float32) for m in MODALITIES},
                     knots=np.arange(n, dtype=np.float64), values=d["label"].astype(np.float64))


def load_mosi(path: str | os.PathLike | None = None) -> Dataset:
    """Load CMU-MOSI utterance features (train/valid/test) as packed 1-frame windows.

    Raises:
        DataError: the file is missing or its arrays lack the documented shapes.
    """
    path = resolve_mosi_path(path)
    raw = _read_mosi(path)
    splits = {}
    for s, d in raw.items():
        n = len(d["label"])
        feats = {m: d[m].astype(np.float32)[:, None, :] for m in MODALITIES}
        masks = {m: np.ones((n, 1), np.float32) for m in MODALITIES}
        splits[s] = Split(feats, masks, d["label"].astype(np.float32),
                          d["video"].astype(str), d["clip"].astype(str))
    fingerprint = {"source": "cmu-mosi-utterance", "sha256": sha256_file(path),
                   "file": os.path.basename(path),
                   "sizes": {s: len(v) for s, v in splits.items()}}
    return Dataset("mosi", splits, dict(MOSI_FEATURES), window_s=1.0, hop_s=1.0,
                   fingerprint=fingerprint)
