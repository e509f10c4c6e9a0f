"""Featurizers shared by training (``hrlf-train --data clips.csv``) and the runtime.

Each featurizer has a versioned name that goes into ``spec.json`` (``features.<m>.featurizer``)
and a fixed dimension and frame rate, stated here once:

==================  ========  =====  =========  ============================================
name                modality  dim    rate (Hz)  what
==================  ========  =====  =========  ============================================
egemaps-lld-v02     audio     25     100        opensmile eGeMAPSv02 low-level descriptors
logmel40-v1         audio     40     100        numpy log-mel (fallback without opensmile)
haarface-v1         vision    198    10         OpenCV Haar frontal face + face descriptors
haarface-v2         vision    198    10         same descriptor; detect at 200 px + tracking
vader-hash-v1       text      64     2          VADER scores + signed hashed 1/2-grams
==================  ========  =====  =========  ============================================

Nothing here imports torch, and cv2/opensmile/vaderSentiment are imported only when a
featurizer that needs them is built; a missing library raises
:class:`~hrlf.errors.BackendUnavailable` with one line.
"""
from __future__ import annotations

import importlib.util

from ...errors import BackendUnavailable, InputError, suggest
from .catalog import (EGEMAPS, FEATURIZERS, HAARFACE,  # noqa: F401
                                             HAARFACE_V2, LOGMEL, VADER_HASH, FeaturizerInfo,
                                             info)
from ..spec import ModalitySpec


def modality_spec(name: str, window_s: float, vad="default") -> ModalitySpec:
    """The spec entry of a modality fed by featurizer ``name`` with windows of ``window_s``.

    Args:
        vad: audio only: the voice-activity setting the features are made with (a
            :class:`~hrlf.runtime.capture.vad.VadSetting`; ``"default"``: the default gate,
            which ``file:`` sources apply when extracting training features; None: none).
    """
    f = info(name)
    if f.modality != "audio":
        vad = None
    elif isinstance(vad, str):
        from ..capture.vad import DEFAULT_VAD

        vad = DEFAULT_VAD
    return ModalitySpec(dim=f.dim, frame_rate_hz=f.rate_hz,
                        frames=max(1, round(window_s * f.rate_hz)), featurizer=f.name,
                        vad=None if vad is None else vad.to_dict())


def have_opensmile() -> bool:
    """True when opensmile can be imported (checked without importing it)."""
    return importlib.util.find_spec("opensmile") is not None


def default_names(spec=None) -> dict[str, str]:
    """Featurizer per modality: the spec's where it names one of ours, else the default.

    The default audio featurizer is eGeMAPS when opensmile is installed, else log-mel.
    """
    out = {"text": VADER_HASH.name, "audio": EGEMAPS.name if have_opensmile() else LOGMEL.name,
           "vision": HAARFACE_V2.name}
    feats = getattr(spec, "features", None) or {}
    for m, fs in feats.items():
        name = getattr(fs, "featurizer", None)
        if name in FEATURIZERS and FEATURIZERS[name].modality == m:
            out[m] = name
    return out


def make_audio(name: str, sample_rate: int, t0_s: float = 0.0, **kw):
    """A streaming audio featurizer (see :mod:`hrlf.runtime.featurizers.audio`)."""
    from . import audio

    return audio.make(name, sample_rate, t0_s, **kw)


def make_vision(name: str = HAARFACE_V2.name, **kw):
    """A per-frame vision featurizer (see :mod:`hrlf.runtime.featurizers.vision`):
    ``haarface-v2`` (the default: tracked, fast) or ``haarface-v1`` (older models).

    Raises:
        BackendUnavailable: OpenCV or its Haar cascade is missing (one line).
    """
    names = [HAARFACE_V2.name, HAARFACE.name]
    if name not in names:
        raise InputError(f"featurizer '{name}': not a vision featurizer"
                         f"{suggest(name, names)}; use {HAARFACE_V2.name}")
    from . import vision

    cls = vision.TrackedFaceFeaturizer if name == HAARFACE_V2.name else vision.HaarFaceFeaturizer
    return cls(**kw)


def make_text(name: str = VADER_HASH.name):
    """A text featurizer (see :mod:`hrlf.runtime.featurizers.text`)."""
    if name != VADER_HASH.name:
        raise InputError(f"featurizer '{name}': not a text featurizer"
                         f"{suggest(name, [VADER_HASH.name])}; use {VADER_HASH.name}")
    from . import text

    return text.VaderHashFeaturizer()


__all__ = ["FEATURIZERS", "FeaturizerInfo", "BackendUnavailable", "info", "modality_spec",
           "default_names", "make_audio", "make_vision", "make_text", "have_opensmile"]
