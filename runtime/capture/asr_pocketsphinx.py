"""The ``pocketsphinx`` recognizer: small, streaming, the fallback where Whisper is absent.

``pocketsphinx`` (5.1.1) ships its US-English acoustic model, dictionary and language model
inside the wheel: nothing is downloaded at run time. The decoder runs one pass (no
``fwdflat``/``bestpath`` rescoring, at most 3000 active HMMs per frame), so partial and final
hypotheses agree and the cost stays near 0.1-0.3 CPU-second per second of speech. Audio is
decoded as it is fed; a partial hypothesis is nearly free.
"""
from __future__ import annotations

import functools

import numpy as np

from ...errors import import_optional, unavailable_reason_of
from ..featurizers.text import Word

NAME = "pocketsphinx"
MODEL = "en-us (pocketsphinx 5.1.1 wheel)"
RATE = 16000
FRAME_RATE = 100  # PocketSphinx frames per second (word times are in frames)
DECODER_OPTS = {"fwdflat": False, "bestpath": False, "maxhmmpf": 3000}


@functools.lru_cache(maxsize=1)
def _pocketsphinx():
    return import_optional("pocketsphinx", "speech recognition (pocketsphinx): pocketsphinx",
                           "pip install pocketsphinx==5.1.1 (hrlf[capture])")


def make_decoder():
    """A PocketSphinx decoder with the wheel's English model (logging off)."""
    return _pocketsphinx().Decoder(samprate=RATE, loglevel="FATAL", **DECODER_OPTS)


def seg_words(decoder, t0_s: float = 0.0) -> list[Word]:
    """The decoder's current words (fillers and sentence marks left out), from ``t0_s``."""
    out = []
    for s in decoder.seg() or ():  # None before the first hypothesis
        w = s.word
        if w.startswith("<") or w.startswith("[") or w.startswith("++"):
            continue
        out.append(Word(w.split("(")[0], t0_s + s.start_frame / FRAME_RATE,
                        t0_s + (s.end_frame + 1) / FRAME_RATE))
    return out


def to_pcm16(x: np.ndarray) -> bytes:
    return (np.clip(np.asarray(x, np.float32), -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()


class PocketSphinxEngine:
    """One decoder for one stream: its utterances are decoded one after another."""

    name = NAME
    model = MODEL
    streaming = True  # decodes audio as it is fed
    partial_every_s = 0.25
    context_s = 0.0  # audio before an utterance decoded with it (its words left out)
    partial_after_s = 0.25
    rate = RATE

    def __init__(self, model: str | None = None, threads: int = 1):
        self.decoder = make_decoder()

    def describe(self) -> dict:
        return {"engine": NAME, "model": MODEL, "options": dict(DECODER_OPTS)}

    def start(self, context: str = "") -> "PocketSphinxUtterance":
        return PocketSphinxUtterance(self.decoder)


class PocketSphinxUtterance:
    """Decodes as audio is fed (the engine's decoder, until :meth:`finish`)."""

    def __init__(self, decoder):
        self.decoder = decoder
        self.decoder.start_utt()
        self._ended = False

    def feed(self, pcm: np.ndarray) -> None:
        self.decoder.process_raw(to_pcm16(pcm), False, False)

    def hypothesis(self) -> list[Word]:
        return seg_words(self.decoder)

    def finish(self) -> list[Word]:
        if not self._ended:
            self.decoder.end_utt()
            self._ended = True
        return seg_words(self.decoder)

    def cancel(self) -> None:
        self.finish()


def unavailable_reason() -> str | None:
    """Why PocketSphinx cannot run here (one line), or None."""
    return unavailable_reason_of(_pocketsphinx)
