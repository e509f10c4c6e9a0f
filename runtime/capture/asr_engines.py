"""Which speech recognizer turns a stream's voice into words: ``--asr`` and ``--asr-model``.

============  ==============================================================================
``--asr``     engine
============  ==============================================================================
``auto``      the engine the model's ``spec.json`` was trained with (``features.text.asr``)
              where it can run here; else ``whisper`` when faster-whisper is installed and
              a model is found locally; else ``pocketsphinx`` (the reason is logged once);
              else none (text stays absent, said once)
``whisper``   faster-whisper (``hrlf[asr]``): int8 on CPU, float16 on CUDA
``pocketsphinx``  PocketSphinx's English model from its wheel (``hrlf[capture]``)
``off``       no recognition (text only from transcripts)
============  ==============================================================================

Engines share one interface (``name``, ``model``, ``describe()``, ``start()`` returning an
utterance with ``feed(pcm)``, ``hypothesis()`` and ``finish()``, 16 kHz float audio, word
times relative to the utterance), and are imported only when chosen.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from dataclasses import dataclass

from ...errors import InputError

log = logging.getLogger("hrlf.runtime.capture.asr")
ENGINES = {"whisper": "hrlf.runtime.capture.asr_whisper",
           "pocketsphinx": "hrlf.runtime.capture.asr_pocketsphinx"}
CHOICES = ("auto", "whisper", "pocketsphinx", "off")
#: a live Whisper engine: CPU threads of one decode, and decodes that may run at once
#: (bench/asr.py --only live, loaded 2-core VM: two threads a decode took the median
#: latency after the speech ends from 1.86 s to 1.60 s for +14 % CPU)
LIVE_THREADS, LIVE_WORKERS = min(2, os.cpu_count() or 1), 2
_SAID: set = set()
_LOADED: dict = {}


def say_once(level: int, msg: str) -> None:
    """Log ``msg`` once per process."""
    if msg not in _SAID:
        _SAID.add(msg)
        log.log(level, msg)


@dataclass(frozen=True)
class AsrChoice:
    """The resolved choice: ``engine`` None means no recognition (``why`` says why)."""

    engine: str | None
    model: str | None = None
    why: str = ""


def _module(name: str):
    return importlib.import_module(ENGINES[name])


def normalize(asr) -> str:
    """``--asr`` value (or the older True/False/None/'on') as one of :data:`CHOICES`."""
    if asr is None or asr is True or asr == "on":
        return "auto"
    if asr is False:
        return "off"
    if asr not in CHOICES:
        raise InputError(f"--asr {asr}: unknown; use one of {', '.join(CHOICES)}")
    return asr


def spec_engine(spec) -> dict | None:
    """``features.text.asr`` of a model's spec (what its training text was recognized
    with), or None (typed transcripts, or an older spec)."""
    feats = getattr(spec, "features", None) or {}
    asr = getattr(feats.get("text"), "asr", None)
    return dict(asr) if asr else None


def choose(asr="auto", model: str | None = None, spec=None) -> AsrChoice:
    """Resolve ``--asr``/``--asr-model`` for this machine (does not load a model).

    Raises:
        InputError: an engine asked for by name (or a ``--asr-model``) that cannot run
            here, in one line with the fix.
    """
    asr = normalize(asr)
    if asr == "off":
        return AsrChoice(None, why="speech recognition is off")
    if asr != "auto" or model:
        name = "whisper" if asr == "auto" else asr
        if name == "pocketsphinx" and model:
            raise InputError(f"--asr-model {model}: only for --asr whisper; leave it out for "
                             "pocketsphinx")
        why = _module(name).unavailable_reason() if not model else _whisper_why(model)
        if why:
            raise InputError(why)
        return AsrChoice(name, model)
    trained = (spec_engine(spec) or {}).get("engine")
    order = [trained] if trained in ENGINES else []
    order += [e for e in ("whisper", "pocketsphinx") if e not in order]
    reasons = []
    for name in order:
        why = _module(name).unavailable_reason()
        if why is None:
            if reasons:  # a warning where it matters: parity lost, or Whisper without model
                serious = (trained and name != trained) or \
                    importlib.util.find_spec("faster_whisper") is not None
                say_once(logging.WARNING if serious else logging.INFO,
                         f"speech recognition: {name} ({'; '.join(reasons)})")
            return AsrChoice(name)
        reasons.append(why)
    why = "; ".join(reasons)
    say_once(logging.WARNING, f"no speech recognizer ({why}); text stays absent")
    return AsrChoice(None, why=why)


def _whisper_why(model: str) -> str | None:
    mod = _module("whisper")
    try:
        mod._faster_whisper()
        mod.resolve_model(model)
    except Exception as e:  # BackendUnavailable or InputError, one line each
        return str(e)
    return None


def open_engine(choice: AsrChoice, live: bool = False):
    """A ready engine for one stream (Whisper models are loaded once per process and
    shared; PocketSphinx gets a decoder per stream). ``live``: Whisper runs
    :data:`LIVE_WORKERS` decodes at once (an endpoint decode never waits behind a partial
    one) of :data:`LIVE_THREADS` CPU threads each; files decode one at a time on one thread
    (their decodes overlap the video's work).

    Raises:
        InputError / BackendUnavailable: the engine cannot start (one line).
    """
    if choice.engine is None:
        raise InputError(f"speech recognition: {choice.why}")
    mod = _module(choice.engine)
    if choice.engine == "pocketsphinx":
        return mod.PocketSphinxEngine()
    threads, workers = (LIVE_THREADS, LIVE_WORKERS) if live else (1, 1)
    key = (choice.engine, choice.model, threads, workers)
    if key not in _LOADED:
        _LOADED[key] = mod.WhisperEngine(choice.model, threads=threads, workers=workers)
    return _LOADED[key]


def describe(choice: AsrChoice) -> dict:
    """``{"engine", "model"}`` for summaries and ``spec.json`` (loads nothing new)."""
    if choice.engine is None:
        return {"engine": "off", "why": choice.why}
    eng = open_engine(choice) if choice.engine == "whisper" else None
    if eng is not None:
        return {"engine": eng.name, "model": eng.model}
    return {"engine": choice.engine, "model": _module(choice.engine).MODEL}
