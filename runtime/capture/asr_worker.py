"""Where a stream's recognizer runs: inline (files) or on worker threads (live sources).

A live stream must not stall while Whisper decodes (about half a CPU-second a decode), so
with ``threaded=True`` :class:`DecodeWorker` runs the engine on worker threads (CTranslate2
and PocketSphinx release the GIL); results are collected by the stream's next ``push``, in
the order they were asked for. Inline (``threaded=False``), each call runs at once: a file
gives the same words however it is chunked.

Two kinds of engine:

* **streaming** (PocketSphinx): the decoder consumes audio as it is fed, so every call of a
  stream runs in order on one thread; a partial hypothesis is nearly free.
* **snapshot** (Whisper, ``engine.streaming = False``): each decode re-reads the audio so
  far, taken when it is asked for, so decodes are independent. With ``engine.workers`` of 2
  or more, two lanes run side by side: the *now* lane for what the speech's end waits for
  (endpoint decodes, when the speech pauses, and finals) and the *partial* lane for partial
  hypotheses while people talk. An endpoint decode then never waits behind a partial still
  running (a decode costs about the same whatever the length, so a partial that started
  just before the speech ended used to hold the end's text back by most of a decode); the
  partial it overtakes is dropped when the endpoint's text is out. A final that follows an
  endpoint decode which covered all of the utterance's speech reuses its words (no second
  decode: the text the model saw is the text the transcript shows).

A partial hypothesis is only asked for when its lane is idle, so partials never queue up.
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
NOW, PARTIAL = 0, 1  # lanes


class Utt:
    """One utterance of a stream: stream time of its first sample, its audio so far."""

    __slots__ = ("t0", "t_start", "t_end", "voiced", "handle", "partial_at", "audio_s",
                 "speech_s", "emits", "endpoint_at", "pcm", "endpoint_words", "reuse", "runs")

    def __init__(self, t0: float, t_start: float | None = None):
        self.t0, self.t_end, self.voiced = float(t0), None, 0
        #: the utterance proper starts here; audio before it (from t0) is context only
        self.t_start = self.t0 if t_start is None else float(t_start)
        self.speech_s = (None, None)  # first and last voiced VAD frame (start, end)
        self.runs: list = []            # [start, end] of its speech, split at pauses
        self.emits: list[float] = []    # clock times text frames of it came out (live)
        self.endpoint_at = None         # speech end of the last endpoint decode asked for
        self.handle = None        # the engine's utterance (streaming engines, worker side)
        self.partial_at = 0.0     # audio seconds at the last partial request
        self.audio_s = 0.0        # audio seconds fed
        self.pcm: list = []       # the audio so far (snapshot engines)
        self.endpoint_words = None  # words of the last endpoint decode (snapshot engines)
        self.reuse = False        # the final may reuse them (no speech after that endpoint)

    def audio(self) -> np.ndarray:
        """The audio fed so far, as one array (snapshot engines)."""
        if len(self.pcm) > 1:
            self.pcm = [np.concatenate(self.pcm)]
        return self.pcm[0] if self.pcm else np.zeros(0, np.float32)


class _Job:
    __slots__ = ("kind", "utt", "pcm", "audio_s", "endpoint", "decode", "result", "lane")

    def __init__(self, kind, utt, pcm=None, endpoint=False, decode=True, lane=NOW):
        self.kind, self.utt, self.pcm, self.lane = kind, utt, pcm, lane
        self.audio_s, self.endpoint, self.decode = utt.audio_s, endpoint, decode
        self.result = None


class DecodeWorker:
    """Runs ``engine`` calls for one stream; results come back as
    ``("partial", utt, words, audio_s, endpoint)``, ``("final", utt, words)`` or
    ``("error", utt, exc, "partial" | "final")``, in the order they were asked for (a
    partial overtaken by a later decode of its utterance is left out)."""

    def __init__(self, engine, threaded: bool):
        self.engine, self.threaded = engine, bool(threaded)
        self.streaming = getattr(engine, "streaming", True)
        two = self.threaded and not self.streaming and getattr(engine, "workers", 1) > 1
        self._lanes = [collections.deque() for _ in range(2 if two else 1)]
        self._busy = [False] * len(self._lanes)
        self._pending: collections.deque = collections.deque()  # decode jobs, asked order
        self._results: list = []
        self._cv = threading.Condition()
        self._stop = False
        self.decode_s: list[float] = []  # wall seconds of recent final decodes
        self.context: tuple[float, str] = (-1e9, "")  # end time and words of the last one
        self._threads = []
        if self.threaded:
            for lane in range(len(self._lanes)):
                t = threading.Thread(target=self._run, args=(lane,), daemon=True,
                                     name=f"hrlf-asr-{'now' if lane == NOW else 'partial'}")
                t.start()
                self._threads.append(t)

    # ---- submitting (the stream's thread) -------------------------------------------
    def feed(self, utt: Utt, pcm: np.ndarray) -> None:
        utt.audio_s += len(pcm) / self.engine.rate
        if self.streaming:  # the decoder takes it in order, on the worker
            self._submit(_Job("feed", utt, pcm))
        else:
            utt.pcm.append(np.asarray(pcm, np.float32))

    def partial(self, utt: Utt, endpoint: bool = False) -> bool:
        """Ask for a hypothesis of ``utt`` unless its lane is busy (an ``endpoint`` one,
        after the speech paused, always); True when asked."""
        lane = NOW if endpoint else len(self._lanes) - 1
        with self._cv:
            if self.threaded and not endpoint and \
                    (self._busy[lane] or any(j.kind != "feed" for j in self._lanes[lane])):
                return False
        utt.partial_at = utt.audio_s
        self._submit(_Job("partial", utt, endpoint=endpoint, lane=lane))
        return True

    def final(self, utt: Utt, decode: bool = True) -> None:
        """The utterance ended: decode it (or, ``decode=False``, drop its audio)."""
        self._submit(_Job("final", utt, decode=decode))

    def _submit(self, job: _Job) -> None:
        if job.kind != "feed" and not self.streaming and job.decode:
            job.pcm = job.utt.audio()  # the audio as it is now: later feeds do not change it
        if not self.threaded:
            job.result = self._do(job)
            if job.result is not None:
                self._results.append(job.result)
            return
        with self._cv:
            if job.kind != "feed":
                self._pending.append(job)
            self._lanes[job.lane].append(job)
            self._cv.notify_all()

    def take(self) -> list:
        """Results ready so far, in the order they were asked for."""
        with self._cv:
            out, self._results = self._results, []
        return out

    def drain(self, timeout_s: float = 60.0) -> list:
        """Wait until every submitted job ran (bounded), then :meth:`take`."""
        if self.threaded:
            end = time.monotonic() + timeout_s
            with self._cv:
                while (self._pending or any(self._lanes) or any(self._busy)) and \
                        time.monotonic() < end:
                    self._cv.wait(0.05)
        return self.take()

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout=10.0)

    # ---- running (worker threads, or inline) ------------------------------------------
    def _run(self, lane: int) -> None:
        q = self._lanes[lane]
        while True:
            with self._cv:
                while not q and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                job = q.popleft()
                self._busy[lane] = True
            res = None
            try:
                res = self._do(job)
            finally:
                with self._cv:
                    job.result = res
                    self._busy[lane] = False
                    self._release()
                    self._cv.notify_all()

    def _release(self) -> None:
        """Move finished results out in asked order (caller holds the lock); a partial still
        running when a later decode of its utterance has finished is left out."""
        while self._pending:
            job = self._pending[0]
            if job.result is None and not self._overtaken(job):
                return
            self._pending.popleft()
            if job.result is not None:
                self._results.append(job.result)

    def _overtaken(self, job: _Job) -> bool:
        """A partial hypothesis whose utterance has a later endpoint or final decode out."""
        return job.kind == "partial" and not job.endpoint and any(
            j.utt is job.utt and (j.kind != "partial" or j.endpoint) and j.result is not None
            for j in self._pending)

    def _do(self, job: _Job):
        utt = job.utt
        try:
            if self.streaming:
                words = self._streaming(job)
                if job.kind == "feed":
                    return None
            else:
                words = self._snapshot(job)
            if job.kind == "partial":
                res = ("partial", utt, words, job.audio_s, job.endpoint)
            else:
                res = ("final", utt, words)
                if words:
                    self.context = (utt.t0 + words[-1].end_s,
                                    " ".join(w.word for w in words)[-CONTEXT_CHARS:])
        except Exception as e:  # a native decoder error: the utterance's words are lost
            log.debug("speech recognition failed: %s", e)
            res = ("error", utt, e, job.kind)
        if job.kind == "final":
            utt.handle, utt.pcm = None, []
        return res

    def _prompt(self, utt: Utt) -> str:
        t_end, words = self.context
        return words if utt.t0 - t_end < CONTEXT_S else ""

    def _streaming(self, job: _Job):
        utt = job.utt
        if utt.handle is None:
            utt.handle = self.engine.start(self._prompt(utt))
        if job.kind == "feed":
            utt.handle.feed(job.pcm)
            return None
        if job.kind == "partial":
            return utt.handle.hypothesis()
        if not job.decode:
            utt.handle.cancel()
            return []
        return self._timed(utt.handle.finish)

    def _snapshot(self, job: _Job):
        utt, prompt = job.utt, self._prompt(job.utt)
        if job.kind == "partial":
            if job.endpoint:
                utt.endpoint_words = None  # a failed decode leaves none to reuse
            words = self.engine.decode(job.pcm, partial=not job.endpoint, prompt=prompt)
            if job.endpoint:
                utt.endpoint_words = words
            return words
        if not job.decode:
            return []
        if utt.reuse and utt.endpoint_words is not None:
            return utt.endpoint_words
        return self._timed(lambda: self.engine.decode(job.pcm, prompt=prompt))

    def _timed(self, fn):
        w0 = time.perf_counter()
        words = fn()
        self.decode_s = (self.decode_s + [time.perf_counter() - w0])[-50:]
        return words


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
