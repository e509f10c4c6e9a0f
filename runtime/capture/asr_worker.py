"""Where a stream's recognizer runs: inline (files) or on its own thread (live sources).

A live stream must not stall while Whisper decodes (about half a second a decode), so
:class:`DecodeWorker` with ``threaded=True`` runs every engine call of one stream, in order,
on a worker thread (CTranslate2 and PocketSphinx release the GIL); results are collected by
the stream's next ``push``. A partial hypothesis is only asked for when the worker is idle,
so partials never queue up behind each other. Inline (``threaded=False``), each call runs at
once: a file gives the same words however it is chunked.
"""
from __future__ import annotations

import collections
import logging
import threading
import time

import numpy as np

log = logging.getLogger("hrlf.runtime.capture.asr")
#: an utterance starting within this long of the last one's words gets them as context
CONTEXT_S = 5.0
CONTEXT_CHARS = 200


class Utt:
    """One utterance of a stream: stream time of its first sample, its audio so far."""

    __slots__ = ("t0", "t_start", "t_end", "voiced", "handle", "partial_at", "audio_s",
                 "speech_s", "emits", "endpoint_at")

    def __init__(self, t0: float, t_start: float | None = None):
        self.t0, self.t_end, self.voiced = float(t0), None, 0
        #: the utterance proper starts here; audio before it (from t0) is context only
        self.t_start = self.t0 if t_start is None else float(t_start)
        self.speech_s = (None, None)  # first and last voiced VAD frame (start, end)
        self.emits: list[float] = []    # clock times text frames of it came out (live)
        self.endpoint_at = None         # speech end of the last endpoint decode asked for
        self.handle = None        # the engine's utterance (worker side)
        self.partial_at = 0.0     # audio seconds at the last partial request
        self.audio_s = 0.0        # audio seconds fed


class DecodeWorker:
    """Runs ``engine`` calls for one stream; results come back as
    ``("partial", utt, words, audio_s, endpoint)``, ``("final", utt, words)`` or
    ``("error", utt, exc, "partial" | "final")``."""

    def __init__(self, engine, threaded: bool):
        self.engine, self.threaded = engine, bool(threaded)
        self._jobs: collections.deque = collections.deque()
        self._results: list = []
        self._cv = threading.Condition()
        self._busy = False
        self._stop = False
        self.decode_s: list[float] = []  # wall seconds of recent final decodes
        self.context: tuple[float, str] = (-1e9, "")  # end time and words of the last one
        self._thread = None
        if self.threaded:
            self._thread = threading.Thread(target=self._run, daemon=True, name="hrlf-asr")
            self._thread.start()

    # ---- submitting (the stream's thread) -------------------------------------------
    def feed(self, utt: Utt, pcm: np.ndarray) -> None:
        utt.audio_s += len(pcm) / self.engine.rate
        self._submit(("feed", utt, pcm))

    def partial(self, utt: Utt, endpoint: bool = False) -> bool:
        """Ask for a hypothesis of ``utt`` unless the worker is busy (an ``endpoint`` one,
        after the speech paused, always); True when asked."""
        with self._cv:
            if self.threaded and not endpoint and \
                    (self._busy or any(j[0] != "feed" for j in self._jobs)):
                return False
        utt.partial_at = utt.audio_s
        self._submit(("partial", utt, (utt.audio_s, endpoint)))
        return True

    def final(self, utt: Utt, decode: bool = True) -> None:
        """The utterance ended: decode it (or, ``decode=False``, drop its audio)."""
        self._submit(("final", utt, decode))

    def _submit(self, job) -> None:
        if not self.threaded:
            self._do(job)
            return
        with self._cv:
            self._jobs.append(job)
            self._cv.notify_all()

    def take(self) -> list:
        """Results ready so far, in submission order."""
        with self._cv:
            out, self._results = self._results, []
        return out

    def drain(self, timeout_s: float = 60.0) -> list:
        """Wait until every submitted job ran (bounded), then :meth:`take`."""
        if self.threaded:
            end = time.monotonic() + timeout_s
            with self._cv:
                while (self._jobs or self._busy) and time.monotonic() < end:
                    self._cv.wait(0.05)
        return self.take()

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    # ---- running (worker thread, or inline) -------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._jobs and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                job = self._jobs.popleft()
                self._busy = True
            try:
                self._do(job)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    def _do(self, job) -> None:
        kind, utt, arg = job
        try:
            if utt.handle is None:
                t_end, words = self.context
                utt.handle = self.engine.start(words if utt.t0 - t_end < CONTEXT_S else "")
            if kind == "feed":
                utt.handle.feed(arg)
                return
            if kind == "partial":
                res = ("partial", utt, utt.handle.hypothesis(), *arg)
            elif not arg:
                utt.handle.cancel()
                res = ("final", utt, [])
            else:
                w0 = time.perf_counter()
                res = ("final", utt, utt.handle.finish())
                if res[2]:
                    self.context = (utt.t0 + res[2][-1].end_s,
                                    " ".join(w.word for w in res[2])[-CONTEXT_CHARS:])
                self.decode_s = (self.decode_s + [time.perf_counter() - w0])[-50:]
        except Exception as e:  # a native decoder error: the utterance's words are lost
            log.debug("speech recognition failed: %s", e)
            res = ("error", utt, e, kind)
        if kind == "final":
            utt.handle = None
        with self._cv:
            self._results.append(res)


class Resampler:
    """Float mono audio at ``rate`` -> 16 kHz, block by block (PyAV's swresample where
    installed: band-limited, stateful; else linear interpolation)."""

    def __init__(self, rate: int, out_rate: int = 16000):
        self.rate, self.out_rate = int(rate), int(out_rate)
        self._av = None
        if self.rate != self.out_rate:
            try:
                import av

                self._av = av
                self._res = av.AudioResampler(format="flt", layout="mono", rate=self.out_rate)
            except ImportError:
                self._av = None
        self._pts = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if self.rate == self.out_rate or not len(x):
            return x
        if self._av is None:
            n = int(len(x) * self.out_rate / self.rate)
            return np.interp(np.arange(n) * (self.rate / self.out_rate), np.arange(len(x)),
                             x).astype(np.float32)
        fr = self._av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None]), format="flt",
                                              layout="mono")
        fr.sample_rate, fr.pts = self.rate, self._pts
        self._pts += len(x)
        out = [f.to_ndarray().reshape(-1) for f in self._res.resample(fr)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)
