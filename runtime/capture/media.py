"""Reading recorded media: audio decoding and the per-modality tracks of ``file:PATH``.

A *track* turns one modality of a recording into events in media time. ``poll(until_t)``
returns every event with ``t < until_t`` that it has not returned yet (and no later one),
so a source that polls all tracks to the same ``until_t`` delivers events in time order.

Audio of a video comes from a sidecar audio file with the same stem (``clip.wav`` next to
``clip.avi``) read with soundfile, else from the container's audio track through PyAV, else
the recording has no audio and the reason is kept (:func:`load_audio`).
"""
from __future__ import annotations

import atexit
import os
import re
import threading
import time
import weakref

import numpy as np

from ...errors import InputError
from .tracks import Track, check_channel
from ..sources import Drop, Event

AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au")
_CHANNEL = re.compile(r"#channel=(\d+)$")


def split_channel(path: str) -> tuple[str, int | None]:
    """``call.wav#channel=1`` -> ``("call.wav", 1)``; no fragment -> ``(path, None)``."""
    m = _CHANNEL.search(path)
    return (path[:m.start()], int(m.group(1))) if m else (path, None)


def load_audio(path: str, channel: int | None = None) -> tuple[np.ndarray | None, int, str]:
    """Audio of a media file: ``(samples float32 mono, sample_rate, how)``: the mix of its
    channels, or channel ``channel`` (0 = first).

    ``samples`` is None when there is none; ``how`` then says why (one line), else where the
    audio came from. Audio files are read with soundfile at their own rate (8 kHz calls
    stay 8 kHz; μ-law and A-law WAV included), else with PyAV at 16 kHz.

    Raises:
        InputError: an audio file neither library can read, or no such channel.
    """
    if os.path.splitext(path)[1].lower() in AUDIO_EXTS:
        try:
            return (*_soundfile(path, channel), f"soundfile:{os.path.basename(path)}")
        except InputError as e:
            if "channel" in str(e):
                raise
            samples, rate, how = _pyav(path, channel, "")
            if samples is None:
                raise
            return samples, rate, how
    stem = os.path.splitext(path)[0]
    for ext in AUDIO_EXTS:
        if os.path.isfile(stem + ext):
            return (*_soundfile(stem + ext, channel), f"sidecar:{os.path.basename(stem + ext)}")
    return _pyav(path, channel, f", or add a sidecar {os.path.basename(stem)}.wav")


def _pyav(path: str, channel: int | None, fix: str):
    from . import avmedia
    from ...errors import BackendUnavailable

    try:
        samples, how = avmedia.decode_audio(path, channel)
    except BackendUnavailable as e:
        return None, 0, f"{e}{fix}"
    return samples, avmedia.AUDIO_RATE if samples is not None else 0, how


def _soundfile(path: str, channel: int | None = None) -> tuple[np.ndarray, int]:
    try:
        import soundfile
    except ImportError as e:
        raise InputError(f"{path}: soundfile is not installed ({e}); pip install "
                         "soundfile") from None
    try:
        x, sr = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile raises its own error types
        raise InputError(f"{path}: cannot read audio ({type(e).__name__}: {e}); use a .wav "
                         "or .flac file") from None
    check_channel(path, channel, x.shape[1])
    x = x[:, channel] if channel is not None else x.mean(axis=1)
    return np.ascontiguousarray(x, np.float32), int(sr)


class AudioArrayTrack(Track):
    """Audio already in memory, processed chunk by chunk (like a live stream) through an
    :class:`~hrlf.runtime.capture.audiochain.AudioChain` (features, voice gate, speech).

    With ``threaded``, a worker thread runs the chain up to ``read_ahead_s`` ahead of the
    reader, so audio (opensmile, PocketSphinx: native code that releases the GIL) and video
    (decoding, face detection) use two cores; the output is the same either way.
    """

    modality = "audio"

    def __init__(self, samples: np.ndarray, sample_rate: int, chain, chunk_s: float = 0.25,
                 threaded: bool = False, read_ahead_s: float = 5.0):
        super().__init__()
        self.x, self.sr, self.chain = samples, int(sample_rate), chain
        self.chunk = max(1, int(chunk_s * self.sr))
        self.pos = 0
        self.counts["text_frames"] = 0
        self._out: list = []    # (events, drops) produced and not yet polled
        self._want_s = 0.0      # the reader needs audio processed up to here
        self._cv = threading.Condition()
        self._stop = False
        self._error = None
        self.read_ahead_s = float(read_ahead_s)
        self.threaded = bool(threaded)
        self.worker_cpu_s = 0.0  # CPU seconds the worker thread spent processing
        self._thread = None  # started by the first poll(), so an unread source costs nothing

    @property
    def _ahead(self) -> float:
        return self.chain.latency_s + 0.1  # audio needed past until_t for its frames

    def _step(self) -> tuple[list, list]:
        if self.pos < len(self.x):
            e, d = self.chain.push(self.x[self.pos:self.pos + self.chunk])
            self.pos += self.chunk
        else:
            e, d = self.chain.flush()
            self.done = True
        return e, d

    def _work(self) -> None:
        try:
            while True:
                with self._cv:
                    while not self._stop and not self.done and self.pos / self.sr >= \
                            self._want_s + max(self.read_ahead_s, self._ahead + 1.0):
                        self._cv.wait()
                    if self._stop or self.done:
                        return
                c0 = time.thread_time()
                e, d = self._step()
                self.worker_cpu_s += time.thread_time() - c0
                with self._cv:
                    self._out.append((e, d))
                    self._cv.notify_all()
        except Exception as e:  # surfaced by poll(): a bug, not a bad frame
            with self._cv:
                self._error, self.done = e, True
                self._cv.notify_all()

    def poll(self, until_t: float) -> tuple[list[Event], list[Drop]]:
        events, drops = [], []
        if self.threaded and self._thread is None and not self.done:
            self._thread = threading.Thread(target=self._work, daemon=True, name="hrlf-audio")
            _WORKERS.add(self)
            self._thread.start()
        if self._thread is None:
            while not self.done and self.pos / self.sr < until_t + self._ahead:
                e, d = self._step()
                events += e
                drops += d
        else:
            with self._cv:
                self._want_s = max(self._want_s, until_t)
                self._cv.notify_all()
                while not self.done and self.pos / self.sr < until_t + self._ahead:
                    self._cv.wait()
                if self._error is not None:
                    raise self._error
                for e, d in self._out:
                    events += e
                    drops += d
                self._out = []
        out = self._split(events, until_t)
        n_text = sum(1 for e in out if e.modality == "text")
        self.counts["text_frames"] += n_text
        self.counts["frames"] -= n_text  # "frames" counts audio frames only
        return out, drops

    @property
    def exhausted(self) -> bool:
        return self.done and not self._pending and not self._out

    def close(self) -> None:
        if self._thread is not None:
            with self._cv:
                self._stop = True
                self._cv.notify_all()
            self._thread.join(timeout=10.0)
        self.chain.close()


#: audio workers still running, stopped at exit: a daemon thread killed inside native code
#: (opensmile, PocketSphinx) at interpreter shutdown aborts the process
_WORKERS: "weakref.WeakSet[AudioArrayTrack]" = weakref.WeakSet()


@atexit.register
def _stop_workers() -> None:
    for tr in list(_WORKERS):
        tr.close()


class VideoFileTrack(Track):
    """Frames of a cv2.VideoCapture at their media time, sampled at the featurizer's rate."""

    modality = "vision"

    def __init__(self, cap, fps: float, featurizer, gate):
        super().__init__()
        self.cap, self.fps, self.feat, self.gate = cap, float(fps), featurizer, gate
        self.index = 0
        self.counts.update(decoded=0, no_face=0)

    def poll(self, until_t: float) -> tuple[list[Event], list[Drop]]:
        events, no_face = [], 0
        while not self.done and self.index / self.fps < until_t:
            t = self.index / self.fps
            want = self.gate(t)
            ok, frame = self.cap.read() if want else (self.cap.grab(), None)
            if not ok:
                self.done = True
                break
            self.index += 1
            self.counts["decoded"] += 1
            if want:
                x = self.feat(frame)
                if x is None:
                    no_face += 1
                else:
                    events.append(Event(t, "vision", x))
        self.counts["no_face"] += no_face
        drops = [Drop("no_face", "vision: no face detected", no_face)] if no_face else []
        return self._split(events, until_t), drops

    def close(self) -> None:
        self.cap.release()


class TextCueTrack(Track):
    """Transcript cues as text frames at the text featurizer's rate."""

    modality = "text"

    def __init__(self, cues, featurizer):
        from ..featurizers.text import cue_times

        super().__init__()
        events = []
        for c in cues:
            x = featurizer(c.text)
            events.extend(Event(float(t), "text", x) for t in cue_times(c.start_s, c.end_s,
                                                                        featurizer.rate_hz))
        self._pending = sorted(events, key=lambda e: e.t)
        self.done = True

    def poll(self, until_t: float) -> tuple[list[Event], list[Drop]]:
        return self._split([], until_t), []
