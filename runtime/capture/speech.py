"""What one source needs to recognize speech: the engine choice, what was heard, parity.

Every capture factory (``camera0``, ``mic``, ``rtsp://``, ``file:``) holds one
:class:`SourceSpeech`: it resolves ``--asr``/``--asr-model`` against the model's spec once,
opens the recognizer when a track needs it, keeps what was heard (:class:`Heard`, words only
with ``--words``), and warns once when the model's training text came from elsewhere (typed
transcripts, or another recognizer) than this stream's text will.
"""
from __future__ import annotations

import logging

from .. import featurizers as fz
from . import asr_engines
from .audiochain import AudioChain
from .health import Health
from .heard import Heard
from ...errors import BackendUnavailable, InputError

log = logging.getLogger("hrlf.runtime.capture.asr")


class SourceSpeech:
    """Recognition settings of one source.

    Args:
        asr: ``auto``/``whisper``/``pocketsphinx``/``off`` (or True/None = auto, False = off).
        model: ``--asr-model`` (Whisper only).
        spec: the model's :class:`~hrlf.runtime.spec.ModelSpec` (None: no model yet).
        words: keep the words (``--words``).
        uri: the source, for messages.
    """

    def __init__(self, asr="auto", model: str | None = None, spec=None, words: bool = False,
                 uri: str = ""):
        self.asr, self.model, self.spec, self.uri = asr, model, spec, uri
        self.heard = Heard(keep_text=words)
        self._choice = asr if isinstance(asr, asr_engines.AsrChoice) else None
        self.described: dict | None = None

    @property
    def words(self) -> bool:
        return self.heard.keep_text

    def choice(self) -> asr_engines.AsrChoice:
        """The resolved engine (an explicit one that cannot run raises InputError)."""
        if self._choice is None:
            try:
                self._choice = asr_engines.choose(self.asr, self.model, self.spec)
            except InputError as e:
                raise InputError(f"{self.uri}: {e}" if self.uri else str(e)) from None
        return self._choice

    def off(self, why: str) -> None:
        """No recognition for this source (e.g. a transcript gives the text)."""
        self._choice = asr_engines.AsrChoice(None, why=why)

    @property
    def on(self) -> bool:
        return self.choice().engine is not None

    def engine(self, live: bool = False):
        """A recognizer for one audio track (None when off or none can run).

        Raises:
            BackendUnavailable: the chosen engine failed to start (one line).
        """
        c = self.choice()
        if c.engine is None:
            return None
        try:
            eng = asr_engines.open_engine(c, live)
        except InputError as e:
            raise BackendUnavailable(str(e)) from None
        self.described = eng.describe()
        warn_parity(self.spec, eng)
        return eng

    def stats(self) -> dict:
        """``asr`` (engine and model, or why off) and, with ``--words``, ``transcript``."""
        c = self._choice
        out = {"asr": self.described or ({"engine": "off", "why": c.why} if c and c.why
                                         else {"engine": "off"})}
        if self.words:
            out["transcript"] = self.heard.transcript()
        return out


def warn_parity(spec, engine) -> None:
    """Once per process: the model's training text came from elsewhere than ``engine``."""
    if spec is None:
        return
    trained = asr_engines.spec_engine(spec)
    if trained is None:
        asr_engines.say_once(logging.WARNING, "the model was trained on typed transcripts; "
                             f"its text now comes from speech recognition ({engine.name}, "
                             f"{engine.model}), so expect lower accuracy; for parity, train on "
                             "clips without transcripts (hrlf-train --data clips.csv)")
    elif trained.get("engine") != engine.name or trained.get("model") != engine.model:
        asr_engines.say_once(logging.WARNING, "the model's training text was recognized by "
                             f"{trained.get('engine')} ({trained.get('model')}), this stream's "
                             f"by {engine.name} ({engine.model}); pass --asr "
                             f"{trained.get('engine')} for parity")


def speech_chain(feat, rate: int, vad, speech: SourceSpeech, names: dict, health: Health,
                 live: bool = False, clock=None) -> AudioChain:
    """An :class:`AudioChain` that recognizes speech when ``speech`` is on.

    Raises:
        BackendUnavailable: a featurizer, the gate or the recognizer cannot start.
    """
    engine = speech.engine(live) if speech.on else None
    return AudioChain(feat, rate, vad=vad, asr=engine if engine is not None else False,
                      text_featurizer=fz.make_text(names["text"]) if engine is not None else None,
                      health=health, live=live, heard=speech.heard, clock=clock)
