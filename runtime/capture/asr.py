"""Text from live speech: offline recognition with PocketSphinx, words with timestamps.

``pocketsphinx`` (5.1.1) ships its US-English acoustic model, dictionary and language model
inside the wheel: nothing is downloaded at run time. The decoder runs one pass (no
``fwdflat``/``bestpath`` rescoring, at most 3000 active HMMs per frame), so partial and final
hypotheses agree and the cost stays near 0.1 CPU-second per second of speech
(``bench/capture.py`` reports the real-time factor and the word error rate on synthetic
speech).

Utterances follow the voice-activity gate (:mod:`hrlf.runtime.capture.vad`): an utterance
starts at the first voiced 30 ms block and ends at the first unvoiced one (the gate's hangover
bridges short pauses) or after ``max_utt_s``. Words go to
:class:`~hrlf.runtime.featurizers.text.WordFrames`, which turns them into text frames at
2 Hz: the frame at ``t`` featurizes the words of the current utterance that started before
``t``, as decoded from audio up to ``t + lag_s`` (so a text frame trails its time by
``lag_s`` plus decoding).
"""
from __future__ import annotations

import functools
import logging

import numpy as np

from hrlf.runtime.errors import import_optional, unavailable_reason_of
from hrlf.runtime.featurizers.text import Word, WordFrames

log = logging.getLogger("hrlf.capture")
ASR_NAME = "pocketsphinx-en-us"
ASR_RATE = 16000
FRAME_RATE = 100  # PocketSphinx frames per second (word times are in frames)
DECODER_OPTS = {"fwdflat": False, "bestpath": False, "maxhmmpf": 3000}


@functools.lru_cache(maxsize=1)
def _pocketsphinx():
    return import_optional("pocketsphinx", f"speech recognition ({ASR_NAME}): pocketsphinx",
                           "pip install pocketsphinx==5.1.1 (hrlf[capture])")


def make_decoder():
    """A PocketSphinx decoder with the wheel's English model (logging off)."""
    ps = _pocketsphinx()
    return ps.Decoder(samprate=ASR_RATE, loglevel="FATAL", **DECODER_OPTS)


def resample16k(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """Float mono samples at 16 kHz as int16 (linear interpolation when the rate differs)."""
    x = np.asarray(x, np.float32)
    if sample_rate != ASR_RATE and len(x):
        n = int(len(x) * ASR_RATE / sample_rate)
        x = np.interp(np.arange(n) * (sample_rate / ASR_RATE), np.arange(len(x)), x)
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)


def seg_words(decoder, t0_s: float) -> list[Word]:
    """The decoder's current words (fillers and sentence marks left out), in stream time."""
    out = []
    for s in decoder.seg() or ():  # None before the first hypothesis
        w = s.word
        if w.startswith("<") or w.startswith("[") or w.startswith("++"):
            continue
        out.append(Word(w.split("(")[0], t0_s + s.start_frame / FRAME_RATE,
                        t0_s + (s.end_frame + 1) / FRAME_RATE))
    return out


class SpeechToText:
    """Streaming recognizer that turns voiced audio into timed text frames.

    Args:
        text_featurizer: the text featurizer (``vader-hash-v1``).
        gate: the stream's :class:`~hrlf.runtime.capture.vad.VoiceGate` (already fed the
            same audio); it decides where utterances are.
        sample_rate: the stream's rate.
        lag_s: audio decoded past a text frame's time before it is emitted.
        max_utt_s: longest utterance (then a new one starts).

    Raises:
        BackendUnavailable: pocketsphinx is missing (one line).
    """

    block_s = 0.03
    check_s = 0.25  # partial hypotheses are read this often inside an utterance

    def __init__(self, text_featurizer, gate, sample_rate: int, lag_s: float = 0.5,
                 max_utt_s: float = 15.0):
        self.decoder = make_decoder()
        self.frames = WordFrames(text_featurizer)
        self.gate, self.sr = gate, int(sample_rate)
        self.lag_s, self.max_utt_s = float(lag_s), float(max_utt_s)
        self.words_total = 0
        self.utterances = 0
        self.reset(gate.t0_s)

    def reset(self, t0_s: float) -> None:
        """A new, discontinuous stream starting at ``t0_s``."""
        if getattr(self, "_utt_t0", None) is not None:
            self.decoder.end_utt()
        self.t0_s = float(t0_s)
        self._buf = np.zeros(0, np.int16)
        self._t = self.t0_s      # stream time of _buf[0]
        self._utt_t0 = None      # start of the current utterance
        self._words: list[Word] = []
        self.frames.reset()

    @property
    def latency_s(self) -> float:
        """Worst case from a text frame's time to its emission (decoding time aside)."""
        return self.lag_s + self.check_s + self.block_s

    def push(self, samples) -> tuple[list, list]:
        """Feed audio (float mono at the stream rate) after the gate has seen it.

        Returns:
            ``(frames, silent_spans)``: ``frames`` is ``[(t, x), ...]`` of text frames that
            became final; ``silent_spans`` are ``(t_from, t_to)`` with no words (outside
            utterances, or slots of an utterance before its first word).
        """
        x = resample16k(samples, self.sr)
        self._buf = np.concatenate([self._buf, x]) if len(self._buf) else x
        return self._advance(final=False)

    def flush(self) -> tuple[list, list]:
        """End of stream: finish the utterance and emit every frame still owed."""
        return self._advance(final=True)

    def _advance(self, final: bool):
        step = int(self.block_s * ASR_RATE)
        out, silent = [], []
        while len(self._buf) >= step or (final and len(self._buf)):
            t = self._t
            if not final and t + self.block_s > self.gate.decided_s:
                break
            block, self._buf = self._buf[:step], self._buf[step:]
            self._t += len(block) / ASR_RATE
            voiced = self.gate.voiced(t)
            if self._utt_t0 is not None and (not voiced or t - self._utt_t0 >= self.max_utt_s):
                self._end_utt(out, silent, t)
            if voiced:
                if self._utt_t0 is None:
                    self._utt_t0 = t
                    self.frames.begin(t)
                    self.decoder.start_utt()
                self.decoder.process_raw(block.tobytes(), False, False)
            else:
                silent.append((t, self._t))
            if self._utt_t0 is not None and (self._t - self._utt_t0) % self.check_s < self.block_s:
                self._words = seg_words(self.decoder, self._utt_t0)
                f, s = self.frames.until(self._words, self._t - self.lag_s)
                out += f
                silent += s
        if final and self._utt_t0 is not None:
            self._end_utt(out, silent, self._t)
        return out, silent

    def _end_utt(self, out: list, silent: list, t_end: float) -> None:
        self.decoder.end_utt()
        words = seg_words(self.decoder, self._utt_t0)
        self.words_total += len(words)
        self.utterances += 1
        f, s = self.frames.until(words, t_end, end=True)
        out += f
        silent += s
        self._utt_t0 = None
        self._words = []


def unavailable_reason() -> str | None:
    """Why speech recognition cannot run here (one line), or None."""
    return unavailable_reason_of(_pocketsphinx)
