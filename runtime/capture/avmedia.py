"""One media reader for files and RTSP: PyAV (``av``, FFmpeg's libraries inside the wheel).

* Files: :class:`AvVideoTrack` decodes the video track in media time (frame ``pts``), and
  :func:`decode_audio` the first audio track, resampled to 16 kHz mono. No ``ffmpeg``
  binary is needed.
* RTSP: :func:`open_input` connects over TCP with an open timeout and a read timeout, so a
  server that stops sending is noticed within the read timeout (``--stall-s``), not after
  FFmpeg's default of minutes; the live reader is in :mod:`hrlf.runtime.capture.rtsp`.

OpenCV stays for image work (face detection) and local cameras.
"""
from __future__ import annotations

import functools
import itertools
import logging

import numpy as np

from .tracks import Track, check_channel
from ...errors import BackendUnavailable, import_optional
from ..sources import Drop, Event

log = logging.getLogger("hrlf.capture")
AUDIO_RATE = 16000


@functools.lru_cache(maxsize=1)
def import_av():
    """Import PyAV, or raise BackendUnavailable with one line."""
    return import_optional("av", "PyAV", "pip install av (hrlf[capture])")


def set_native_logging(verbose: bool) -> None:
    """FFmpeg's own log lines reach stderr only with ``-v`` (errors then); else none."""
    try:
        av = import_av()
    except BackendUnavailable:
        return
    av.logging.set_level(av.logging.ERROR if verbose else None)


def open_input(url: str, open_timeout_s: float = 10.0, read_timeout_s: float = 2.0):
    """Open a file or stream with timeouts (RTSP over TCP).

    Raises:
        av.error.FFmpegError (and OSError): cannot open; callers turn it into one line.
    """
    av = import_av()
    opts = {"rtsp_transport": "tcp"} if url.startswith("rtsp") else {}
    return av.open(url, options=opts, timeout=(open_timeout_s, read_timeout_s))


def first_line(e: BaseException) -> str:
    """An exception as one short line (FFmpeg messages can be long)."""
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"[:200]


def decode_audio(path: str, channel: int | None = None) -> tuple[np.ndarray | None, str]:
    """The first audio track of ``path`` as float32 at 16 kHz: the mix of its channels, or
    channel ``channel`` (0 = first); or ``(None, why)``.

    Raises:
        InputError: no such channel.
    """

    av = import_av()
    try:
        with av.open(path) as c:
            if not c.streams.audio:
                return None, "the file has no audio track"
            st = c.streams.audio[0]
            n_ch = st.codec_context.channels
            check_channel(path, channel, n_ch)
            layout = "mono" if channel is None else st.codec_context.layout.name
            res = av.AudioResampler(format="fltp", layout=layout, rate=AUDIO_RATE)
            chunks = []
            for frame in itertools.chain(c.decode(st), [None]):
                for f in res.resample(frame):
                    a = f.to_ndarray()
                    chunks.append(a[0 if channel is None else channel])
    except (av.error.FFmpegError, OSError, ValueError) as e:
        return None, f"PyAV cannot decode its audio ({first_line(e)})"
    if not chunks:
        return None, "its audio track holds no samples"
    return np.concatenate(chunks).astype(np.float32), "pyav"


class AvVideoTrack(Track):
    """Frames of a file's video track at their media time, featurized at the gate's rate.

    Only frames the rate gate keeps are converted to images (decoding every frame is
    unavoidable for inter-coded video). ``index``/``fps`` say how far it got.
    """

    modality = "vision"

    def __init__(self, container, featurizer, gate):
        super().__init__()
        self.container, self.feat, self.gate = container, featurizer, gate
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads: the second core decodes too
        self.fps = float(stream.average_rate or stream.guessed_rate or 30.0)
        self.t0 = None
        self.index = 0
        self._last_t = -np.inf
        self.counts.update(decoded=0, no_face=0, decode_errors=0)
        self._frames = container.decode(stream)

    def poll(self, until_t: float) -> tuple[list[Event], list[Drop]]:
        av = import_av()
        events, no_face, drops = [], 0, []
        while not self.done and self._last_t < until_t:
            try:
                frame = next(self._frames)
            except StopIteration:
                self.done = True
                break
            except av.error.FFmpegError as e:  # a corrupt packet: counted, reading goes on
                self.counts["decode_errors"] += 1
                drops.append(Drop("decode_error", f"vision: {first_line(e)}"))
                if self.counts["decode_errors"] > 100:
                    self.done = True
                continue
            t = frame.time if frame.time is not None else self.index / self.fps
            if self.t0 is None:
                self.t0 = t
            t -= self.t0
            self._last_t = t
            self.index += 1
            self.counts["decoded"] += 1
            if self.gate(t):
                x = self.feat(frame.to_ndarray(format="bgr24"))
                if x is None:
                    no_face += 1
                    if self.health is not None:
                        self.health.mark("vision", t, t + 1.0 / self.gate.rate_hz, "no_face")
                else:
                    events.append(Event(t, "vision", x))
        self.counts["no_face"] += no_face
        if no_face:
            drops.append(Drop("no_face", "vision: no face detected", no_face))
        return self._split(events, until_t), drops

    def close(self) -> None:
        self.container.close()
