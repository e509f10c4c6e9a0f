"""How late a live source's text is: after the speech ends, and between updates while
people talk.

:class:`TextTiming` is kept by :class:`~hrlf.runtime.capture.asr.SpeechToText` on a live
source's clock (stream seconds now) and reported in the audio track's stats as
``text_latency``:

* ``after_end_s`` (p50/p95): from the end of an utterance's speech (the last VAD frame
  called speech before a pause of ``endpoint_s``) to the moment all its text frames are out;
* ``partial_gap_s`` (p50/p95/max): in utterances with 3 s or more of speech, the seconds of
  speech between consecutive text updates (:func:`speech_gaps`: pauses in the speech do
  not count, since nothing is owed while nobody talks).

It also keeps every update as ``(clock, until_s)``: all text frames before stream time
``until_s`` were out at ``clock``; ``bench/asr.py`` measures the latency against the true
ends of the speech it plays with these.
"""
from __future__ import annotations

import collections

import numpy as np

#: an utterance with this much speech or more has its update gaps measured
GAP_MIN_SPEECH_S = 3.0


def speech_gaps(updates, spans) -> list[float]:
    """Seconds of speech between consecutive text updates.

    Args:
        updates: clock times of the text updates (stream seconds, sorted).
        spans: ``[(start, end)]`` of one utterance's speech, sorted, in stream seconds.

    Returns:
        For each interval from the speech's start, or an update, to the next update, the
        length of speech inside it (intervals without speech are left out; speech after the
        last update is not counted: nothing has come for it yet).
    """
    if not spans:
        return []
    out = []
    a = spans[0][0]
    for b in updates:
        if b <= a:
            continue
        s = sum(max(0.0, min(b, e) - max(a, s0)) for s0, e in spans)
        if s > 1e-9:
            out.append(s)
        a = b
    return out


def speech_s(spans) -> float:
    return float(sum(e - s for s, e in spans))


class TextTiming:
    """Live text latency of one stream (see the module doc); ``clock`` None: not live."""

    def __init__(self, clock=None, keep: int = 1000):
        self.clock = clock
        self.after_end: collections.deque = collections.deque(maxlen=keep)
        self.gaps: collections.deque = collections.deque(maxlen=keep)
        self.updates: collections.deque = collections.deque(maxlen=10 * keep)

    def emitted(self, u, until_s: float, frames: bool = True) -> None:
        """Text frames of ``u`` before ``until_s`` are out now (``frames``: new ones, an
        update a user sees)."""
        if self.clock is not None:
            now = self.clock()
            if frames:
                u.emits.append(now)
            self.updates.append((now, float(until_s)))

    def endpoint(self, u, has_words: bool) -> None:
        """The text of speech that paused at ``u.endpoint_at`` is out."""
        if self.clock is not None and has_words:
            self.after_end.append(self.clock() - u.endpoint_at)

    def final(self, u, has_words: bool) -> None:
        """``u`` ended; its speech runs are ``u.runs``."""
        if self.clock is None or not has_words:
            return
        if u.endpoint_at != u.speech_s[1]:  # no endpoint decode covered the last speech
            self.after_end.append(self.clock() - u.speech_s[1])
        if speech_s(u.runs) >= GAP_MIN_SPEECH_S:
            self.gaps.extend(speech_gaps(sorted(u.emits), u.runs))

    def stats(self) -> dict:
        """``{"text_latency": {"after_end_s": {p50, p95, n}, "partial_gap_s": {p50, p95,
        max, n}}}`` (live only)."""
        if self.clock is None:
            return {}
        out = {}
        for key, vals, qs in (("after_end_s", self.after_end, ("p50", "p95")),
                              ("partial_gap_s", self.gaps, ("p50", "p95", "max"))):
            if len(vals):
                out[key] = {**quantiles(vals, qs), "n": len(vals)}
        return {"text_latency": out}


def quantiles(vals, qs=("p50", "p95")) -> dict:
    """``{"p50": ..., "p95": ..., "max": ...}`` of ``vals`` (rounded to ms)."""
    a = np.asarray(list(vals), float)
    return {q: round(float(np.max(a) if q == "max" else np.percentile(a, int(q[1:]))), 3)
            for q in qs}
