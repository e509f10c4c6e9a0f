"""Text from live speech: the voice gate's utterances, recognized into timed text frames.

One code path for ``mic``, ``camera0``, ``rtsp://`` and ``file:``. The engine (``whisper`` or
``pocketsphinx``, :mod:`hrlf.runtime.capture.asr_engines`) sees 16 kHz audio:

* **Utterances** follow the voice-activity gate (:mod:`hrlf.runtime.capture.vad`, with its
  energy floor, so steady noise starts none): one starts at the first voiced VAD frame and
  takes ``preroll_s`` of the audio before it (kept in a ring buffer, so word onsets reach
  the recognizer without delaying anything), and ends ``hangover_s`` after the last frame
  WebRTC's VAD calls speech (loud enough or not: weak consonants in noise do not split an
  utterance), or after ``max_utt_s``. An utterance with less than ``min_voiced_s`` of voice is
  not decoded (a click, a cough).
* **Partial text** (live sources): every ``partial_every_s`` of an utterance's audio
  (Whisper: 1 s; PocketSphinx: 0.25 s) the audio so far is re-decoded, and text frames are
  emitted up to ``lag_s`` before the end of that audio, so text arrives while people talk.
  When the speech pauses for ``endpoint_s`` (0.2 s) the audio so far is decoded at once and
  all its text emitted; the utterance itself stays open for ``hangover_s`` (1.2 s), so a
  sentence that goes on after a pause is decoded with what came before (Whisper needs that
  context: on the real speech at 10 dB noise, WER 0.54 with 0.4 s utterance gaps, 0.07 with
  1.2 s). Utterances end at a pause after ``soft_max_s`` or at ``max_utt_s``. Live
  decodes run on the stream's own worker threads (:mod:`hrlf.runtime.capture.asr_worker`;
  Whisper's endpoint decode runs beside a partial one, never behind it);
  a file's run inline and need no partials (a file is read ahead by
  :attr:`SpeechToText.latency_s`).
* **Frames** (:class:`~hrlf.runtime.featurizers.text.WordFrames`, 2 Hz): the frames from
  the utterance's first word on (placed by the recognizer's word timestamps) featurize all
  its words known when they are emitted, as a transcript cue featurizes its sentence.
* **What was heard** (:class:`~hrlf.runtime.capture.heard.Heard`): each utterance's words and
  times, for ``--words`` and ``-v``.
"""
from __future__ import annotations

import collections
import logging
import math

import numpy as np

from .asr_timing import TextTiming
from .asr_worker import DecodeWorker, Resampler, Utt
from .heard import Heard
from ..featurizers.text import Word, WordFrames

log = logging.getLogger("hrlf.runtime.capture.asr")
ASR_RATE = 16000
#: typical wall seconds of one decode, for the latency a live source announces
DECODE_S = {"whisper": 0.6, "pocketsphinx": 0.05}


#: the first word starts about this long after the gate's first voiced frame
FIRST_WORD_S = 0.1


class SpeechToText:
    """Streaming recognizer that turns voiced audio into timed text frames.

    Args:
        text_featurizer: the text featurizer (``vader-hash-v1``).
        gate: the stream's :class:`~hrlf.runtime.capture.vad.VoiceGate` (already fed the
            same audio); its VAD frames decide where utterances are.
        sample_rate: the stream's rate.
        engine: a recognizer (:func:`hrlf.runtime.capture.asr_engines.open_engine`); None:
            the ``auto`` choice.
        live: decode on a worker thread and emit partial text (live sources).
        heard: where utterances are kept (``keep_text`` decides whether words are).
        clock: a live source's clock (stream seconds now): text latency is measured with it.

    Raises:
        BackendUnavailable / InputError: no recognizer can run (one line).
    """

    lag_s = 0.5
    preroll_s = 0.3
    hangover_s = 1.2
    endpoint_s = 0.2
    min_voiced_s = 0.09
    soft_max_s = 10.0
    max_utt_s = 20.0

    def __init__(self, text_featurizer, gate, sample_rate: int, engine=None,
                 live: bool = False, heard: Heard | None = None, clock=None):
        if engine is None:
            from . import asr_engines

            engine = asr_engines.open_engine(asr_engines.choose("auto"))
        self.engine, self.live = engine, bool(live)
        self.frames = WordFrames(text_featurizer)
        self.gate, self.sr = gate, int(sample_rate)
        self.block_s = gate.setting.frame_ms / 1000.0
        self.heard = heard if heard is not None else Heard()
        self.words_total = self.utterances = self.failures = 0
        self.worker = DecodeWorker(engine, threaded=self.live)
        self.timing = TextTiming(clock)
        self.reset(gate.t0_s)

    def reset(self, t0_s: float) -> None:
        """A new, discontinuous stream starting at ``t0_s``."""
        if getattr(self, "_utt", None) is not None:
            self.worker.final(self._utt)
        self.worker.drain()  # an old segment's words are past their windows now
        self.t0_s = float(t0_s)
        self._resample = Resampler(self.sr, ASR_RATE)
        self._buf = np.zeros(0, np.float32)
        self._t = self.t0_s       # stream time of _buf[0]
        keep = max(self.preroll_s, getattr(self.engine, "context_s", 0.0))
        self._ring = collections.deque(maxlen=max(1, round(keep / self.block_s)))
        self._utt: Utt | None = None
        self._framing: Utt | None = None  # the utterance WordFrames is on
        self._last_voiced = -np.inf
        self.frames.reset()

    @property
    def latency_s(self) -> float:
        """Worst case from a text frame's time to its emission (typical decoding time)."""
        decode = DECODE_S.get(self.engine.name, 0.5)
        if not self.live:
            return self.max_utt_s + self.hangover_s + self.block_s
        return max(self.engine.partial_every_s + self.lag_s, self.endpoint_s) + decode + \
            self.block_s

    def push(self, samples) -> tuple[list, list]:
        """Feed audio (float mono at the stream rate) after the gate has seen it.

        Returns:
            ``(frames, silent_spans)``: ``frames`` is ``[(t, x), ...]`` of text frames that
            became final; ``silent_spans`` are ``(t_from, t_to)`` with no words (outside
            utterances, or slots of an utterance before its first word).
        """
        x = self._resample(samples)
        self._buf = np.concatenate([self._buf, x]) if len(self._buf) else x
        return self._advance(final=False)

    def flush(self) -> tuple[list, list]:
        """End of stream: finish the utterance and emit every frame still owed."""
        return self._advance(final=True)

    def close(self) -> None:
        self.worker.close()

    def _advance(self, final: bool):
        step = int(round(self.block_s * ASR_RATE))
        silent: list = []
        while len(self._buf) >= step or (final and len(self._buf)):
            t = self._t
            if not final and t + self.block_s > self.gate.decided_s + 1e-9:
                break
            block, self._buf = self._buf[:step], self._buf[step:]
            self._t += len(block) / ASR_RATE
            self._block(t, block, silent)
        if final and self._utt is not None:
            self._end(self._t)
        results = self.worker.drain() if final else self.worker.take()
        frames = self._results(results, silent)
        return frames, silent

    def _block(self, t: float, block: np.ndarray, silent: list) -> None:
        voiced = self.gate.any_voiced(t - 1e-6, t + self.block_s - 1e-6)
        u = self._utt
        if u is not None and not voiced:  # hysteresis: WebRTC's word alone keeps it going
            voiced = self.gate.any_voiced(t - 1e-6, t + self.block_s - 1e-6, loud=False)
        if voiced:
            self._last_voiced = t + self.block_s
            if u is not None:
                u.speech_s = (u.speech_s[0], self._last_voiced)
                self._run(u, t)
        quiet = t - self._last_voiced  # seconds since the speech paused
        if u is not None and (quiet >= self.hangover_s - 1e-9 or t - u.t_start >= self.max_utt_s
                              or (t - u.t_start >= self.soft_max_s and quiet >= self.endpoint_s)):
            self._end(t)
            u = None
        if u is None and voiced:
            ring = list(self._ring)
            t0 = t - sum(len(b) for b in ring) / ASR_RATE
            u = self._utt = Utt(t0, max(t0, t - self.preroll_s))
            u.speech_s = (t, t + self.block_s)
            self._run(u, t)
            if ring:
                self.worker.feed(u, np.concatenate(ring))
            u.partial_at = u.audio_s
        self._ring.append(block)
        if u is None:
            silent.append((t, t + len(block) / ASR_RATE))
            return
        u.voiced += voiced
        self.worker.feed(u, block)
        if not self.live:
            return
        if quiet + self.block_s >= self.endpoint_s - 1e-9:
            if u.endpoint_at != self._last_voiced:  # the speech paused: all its text now
                u.endpoint_at = self._last_voiced
                self.worker.partial(u, endpoint=True)
        elif quiet <= 0 and self._partial_due(u):
            # only while voice goes on: a partial started as the speech ends would hold up
            # the endpoint decode behind it
            self.worker.partial(u)

    def _partial_due(self, u: Utt) -> bool:
        """Time for a partial decode of ``u``: ``partial_every_s`` of audio since the last
        one; the first as soon as its text can fill a frame (the first slot after the
        speech's start is ``lag_s`` behind the audio's end, and ``partial_after_s`` of it
        was heard), not a fixed time after the start, which may leave a slot short and
        the first text a whole cadence late."""
        if u.audio_s - (u.t_start - u.t0) < self.engine.partial_after_s:
            return False
        if u.partial_at > u.t_start - u.t0 + 1e-9:  # a partial of the speech was asked
            return u.audio_s - u.partial_at >= self.engine.partial_every_s
        rate = self.frames.rate_hz
        slot = (math.floor((u.speech_s[0] + FIRST_WORD_S) * rate) + 1) / rate
        return u.t0 + u.audio_s - self.lag_s >= slot

    def _run(self, u: Utt, t: float) -> None:
        """A voiced block at ``t``: the utterance's speech runs (pauses of ``endpoint_s`` or
        more split them)."""
        if u.runs and t - u.runs[-1][1] < self.endpoint_s - 1e-9:
            u.runs[-1][1] = t + self.block_s
        else:
            u.runs.append([t, t + self.block_s])

    def _end(self, t_end: float) -> None:
        u, self._utt = self._utt, None
        u.t_end = t_end
        # an endpoint decode covered all of its speech: the final may reuse its words
        u.reuse = u.endpoint_at is not None and u.endpoint_at == u.speech_s[1]
        decode = u.voiced * self.block_s >= self.min_voiced_s
        if not decode:
            u.voiced = -1  # too little voice (a click, a cough): not decoded
        self.worker.final(u, decode)

    def _results(self, results, silent: list) -> list:
        frames: list = []
        for kind, u, *rest in results:
            if self._framing is not u:
                self._framing = u
                self.frames.begin(u.t_start)
            if kind == "partial":
                words, audio_s, endpoint = rest
                ws = self._abs(u, words)
                until = u.t0 + audio_s - (0.0 if endpoint else self.lag_s)
                f, s = self.frames.until(ws, until)
                self.timing.emitted(u, until, bool(f))
                if endpoint:
                    self.timing.endpoint(u, bool(ws))
            elif kind == "error" and rest[1] == "partial":
                self._failed(rest[0])
                continue
            else:
                words = rest[0] if kind == "final" else []
                if kind == "error":
                    self._failed(rest[0])
                ws = self._abs(u, words)
                f, s = self.frames.until(ws, u.t_end, end=True)
                self.timing.emitted(u, u.t_end, bool(f))
                self._framing = None
                if u.voiced >= 0:
                    self.utterances += 1
                    self.words_total += len(ws)
                    self.heard.add(ws)
                    self.timing.final(u, bool(ws))
            frames += f
            silent += s
        return frames

    def _failed(self, e: Exception) -> None:
        self.failures += 1
        log.warning("speech recognition failed (%s: %s); continuing", type(e).__name__, e)

    @staticmethod
    def _abs(u: Utt, words) -> list[Word]:
        """Words in stream time; those said in the context audio (before the utterance
        proper) are left out: the previous utterance has them."""
        lo = u.t_start - u.t0
        return [Word(w.word, u.t0 + w.start_s, u.t0 + w.end_s) for w in words
                if (w.start_s + w.end_s) / 2 >= lo]

    def pop_failures(self) -> int:
        n, self.failures = self.failures, 0
        return n


def unavailable_reason() -> str | None:
    """Why no speech recognition can run here (one line), or None."""
    from . import asr_engines

    return asr_engines.choose("auto").why or None
