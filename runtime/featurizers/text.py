"""``vader-hash-v1``: transcript text -> 64 features, repeated at 2 Hz over the utterance.

=======  ====  ===========================================================================
slice    dim   what
=======  ====  ===========================================================================
0:4      4     VADER ``neg``, ``neu``, ``pos``, ``compound`` (lexicon shipped in the
               vaderSentiment wheel; nothing is fetched)
4:64     60    signed feature hashing of lower-cased word 1-grams and 2-grams (crc32 picks
               the bucket, bit 31 the sign), L2-normalized
=======  ====  ===========================================================================

An utterance (a transcript cue ``[start_s, end_s)``) becomes one frame every 0.5 s from its
start while before its end, and at least one frame at its start (:func:`cue_times`).
"""
from __future__ import annotations

import functools
import math
import re
import zlib

import numpy as np

from hrlf.runtime.errors import BackendUnavailable
from hrlf.runtime.featurizers import VADER_HASH

_N_VADER = 4
_N_HASH = VADER_HASH.dim - _N_VADER
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@functools.lru_cache(maxsize=1)
def _analyzer():
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as e:
        raise BackendUnavailable(f"text featurizer {VADER_HASH.name}: vaderSentiment is not "
                                 f"installed ({e}); pip install vaderSentiment") from None
    return SentimentIntensityAnalyzer()


def hashed_ngrams(text: str, n_buckets: int = _N_HASH) -> np.ndarray:
    """Signed hashed counts of word 1- and 2-grams, L2-normalized: (n_buckets,) float32."""
    toks = _TOKEN.findall(text.lower())
    grams = toks + [f"{a} {b}" for a, b in zip(toks, toks[1:])]
    out = np.zeros(n_buckets, np.float64)
    for g in grams:
        h = zlib.crc32(g.encode("utf-8"))
        out[h % n_buckets] += -1.0 if h & 0x80000000 else 1.0
    norm = np.linalg.norm(out)
    return (out / norm if norm > 0 else out).astype(np.float32)


class VaderHashFeaturizer:
    """Text -> (64,) float32 (see module docstring).

    Raises:
        BackendUnavailable: vaderSentiment is missing (one line).
    """

    info = VADER_HASH
    name = VADER_HASH.name
    dim = VADER_HASH.dim
    rate_hz = VADER_HASH.rate_hz

    def __init__(self):
        self.analyzer = _analyzer()

    def __call__(self, text: str) -> np.ndarray:
        s = self.analyzer.polarity_scores(str(text))
        vader = np.array([s["neg"], s["neu"], s["pos"], s["compound"]], np.float32)
        return np.concatenate([vader, hashed_ngrams(str(text))])


def cue_times(start_s: float, end_s: float, rate_hz: float = VADER_HASH.rate_hz) -> np.ndarray:
    """Frame times of an utterance: ``start + k / rate`` while before ``end`` (at least one)."""
    n = max(1, math.ceil((float(end_s) - float(start_s)) * rate_hz - 1e-9))
    return float(start_s) + np.arange(n) / rate_hz
