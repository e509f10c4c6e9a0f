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
from typing import NamedTuple

import numpy as np

from ...errors import import_optional
from .catalog import VADER_HASH

_N_VADER = 4
_N_HASH = VADER_HASH.dim - _N_VADER
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@functools.lru_cache(maxsize=1)
def _analyzer():
    vader = import_optional("vaderSentiment.vaderSentiment",
                            f"text featurizer {VADER_HASH.name}: vaderSentiment",
                            "pip install vaderSentiment")
    return vader.SentimentIntensityAnalyzer()


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


class Word(NamedTuple):
    """One recognized word spoken over ``[start_s, end_s)``."""

    word: str
    start_s: float
    end_s: float


class WordFrames:
    """Words with times -> text frames on the featurizer's grid (``k / rate_hz``).

    The frame at slot ``t`` (inside an utterance, at or after its first word's start)
    featurizes every word of that utterance known when the frame is emitted: for a file,
    the whole utterance, as a transcript cue is (:func:`cue_times`), so a model trained on
    typed transcripts sees whole sentences at run time too, not their first words; live,
    the words heard so far. A slot before the utterance's first word yields no frame and is
    reported as a span without words. Slots only move forward, across utterances too.
    """

    def __init__(self, featurizer):
        self.feat, self.rate_hz = featurizer, float(featurizer.rate_hz)
        self.reset()

    def reset(self) -> None:
        self._k = None       # next slot index
        self._utt_t0 = None

    def begin(self, t0_s: float) -> None:
        """An utterance starts at ``t0_s``."""
        self._utt_t0 = float(t0_s)
        k0 = math.ceil(t0_s * self.rate_hz - 1e-9)
        self._k = k0 if self._k is None else max(self._k, k0)

    def until(self, words, t_to: float, end: bool = False) -> tuple[list, list]:
        """Frames for the slots before ``t_to`` given the utterance's words so far.

        Args:
            words: :class:`Word` list of the current utterance.
            t_to: emit slots with time < ``t_to``.
            end: the utterance ended at ``t_to``.

        Returns:
            ``(frames [(t, x)], spans_without_words [(t_from, t_to)])``.
        """
        frames, empty = [], []
        if self._utt_t0 is None:
            return frames, empty
        text, x = " ".join(w.word for w in words), None
        first = min((w.start_s for w in words), default=math.inf)
        while self._k / self.rate_hz < t_to - 1e-9:
            t = self._k / self.rate_hz
            if first < t:
                x = self.feat(text) if x is None else x
                frames.append((t, x))
            else:
                empty.append((t, t + 1.0 / self.rate_hz))
            self._k += 1
        if end:
            self._utt_t0 = None
        return frames, empty


class TextFeed:
    """Text from an embedder's own speech recognizer, featurized like the built-in one.

    ``push`` is where frames go, e.g. :meth:`hrlf.runtime.session.Session.push`::

        feed = TextFeed(session.push)
        feed.utterance("I love it", 3.2, 4.6)           # a whole utterance with its times
        feed.word("great", 5.0, 5.4); feed.end(6.0)      # or words as they are recognized

    Utterances become frames like transcript cues (:func:`cue_times`); words become frames
    like speech recognition output (:class:`WordFrames`).

    Args:
        push: ``(modality, t, x) -> bool``.
        featurizer: the text featurizer (default ``vader-hash-v1``).
    """

    def __init__(self, push, featurizer=None):
        self.push_fn = push
        self.feat = featurizer or VaderHashFeaturizer()
        self.frames = WordFrames(self.feat)
        self._words: list[Word] = []
        self.sent = 0

    def _send(self, frames) -> int:
        for t, x in frames:
            self.push_fn("text", float(t), x)
        self.sent += len(frames)
        return len(frames)

    def utterance(self, text: str, start_s: float, end_s: float) -> int:
        """Push a whole utterance; returns the frames pushed."""
        x = self.feat(text)
        return self._send([(t, x) for t in cue_times(start_s, end_s, self.rate_hz)])

    @property
    def rate_hz(self) -> float:
        return self.frames.rate_hz

    def word(self, word: str, start_s: float, end_s: float) -> int:
        """Add a recognized word of the current utterance; pushes the slots before its end."""
        if not self._words and self.frames._utt_t0 is None:
            self.frames.begin(start_s)
        self._words.append(Word(str(word), float(start_s), float(end_s)))
        return self._send(self.frames.until(self._words, end_s)[0])

    def end(self, t_s: float) -> int:
        """The current utterance ended at ``t_s``: push its remaining slots."""
        n = self._send(self.frames.until(self._words, t_s, end=True)[0])
        self._words = []
        return n
