"""The featurizers' names, dimensions and frame rates (the table in
:mod:`hrlf.runtime.featurizers`): plain data, importable by every featurizer module."""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import InputError, suggest


@dataclass(frozen=True)
class FeaturizerInfo:
    """What a featurizer produces.

    Attributes:
        name: versioned name written into the model spec.
        modality: ``text``, ``audio`` or ``vision``.
        dim: feature dimension of every frame.
        rate_hz: frames per second (text: frames per second over a transcript cue).
        needs: the library it needs (for messages).
    """

    name: str
    modality: str
    dim: int
    rate_hz: float
    needs: str


EGEMAPS = FeaturizerInfo("egemaps-lld-v02", "audio", 25, 100.0, "opensmile")
LOGMEL = FeaturizerInfo("logmel40-v1", "audio", 40, 100.0, "numpy")
HAARFACE = FeaturizerInfo("haarface-v1", "vision", 198, 10.0, "opencv-python-headless<5")
HAARFACE_V2 = FeaturizerInfo("haarface-v2", "vision", 198, 10.0, "opencv-python-headless<5")
VADER_HASH = FeaturizerInfo("vader-hash-v1", "text", 64, 2.0, "vaderSentiment")
FEATURIZERS = {f.name: f for f in (EGEMAPS, LOGMEL, HAARFACE, HAARFACE_V2, VADER_HASH)}


def info(name: str) -> FeaturizerInfo:
    """The :class:`FeaturizerInfo` of ``name``.

    Raises:
        InputError: unknown name (with the closest known one).
    """
    try:
        return FEATURIZERS[name]
    except KeyError:
        raise InputError(f"featurizer '{name}': unknown{suggest(name, FEATURIZERS)}; use one of "
                         f"{sorted(FEATURIZERS)}") from None
