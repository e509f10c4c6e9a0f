"""``rtsp://``: video *and* audio of an IP camera through PyAV, with stall detection.

One capture thread demuxes the stream (TCP, open timeout, read timeout = ``stall_s``):
video frames the 10 Hz gate keeps are queued as images, audio is resampled to 16 kHz mono
and queued as sample blocks; ``poll()`` featurizes on the runtime's thread (faces; audio
features, voice gate and speech recognition through an
:class:`~hrlf.runtime.capture.audiochain.AudioChain`).

Timestamps: media time (``pts``) mapped onto the source's monotonic clock at the first
frame of each connection, so audio and video stay aligned as the camera stamped them. A
stream that delivers nothing for ``stall_s`` (server frozen, network gone: FFmpeg's read
times out) is declared lost (``stall``), whatever was queued from it is discarded
(counted as ``stale``), and reconnecting starts with backoff. A stream that ends is lost
as ``device_lost``.
"""
from __future__ import annotations

import logging
import threading

from .. import featurizers as fz
from . import avmedia, base, live
from .live import _LiveTrack
from ...errors import BackendUnavailable, InputError
from ..sources import Drop, Event

log = logging.getLogger("hrlf.capture")
#: a frame stamped further than this from the clock re-anchors the media-time mapping
MAX_SKEW_S = 2.0


class AvLiveTrack(_LiveTrack):
    """Video (and audio, where the stream has it) of one RTSP URL.

    Args:
        url: the stream.
        featurizer: frame -> face descriptor or None.
        gate: rate gate for video frames.
        chain: the :class:`AudioChain` (16 kHz) for the audio track, or None (no audio).
        clock, wake: the source's clock and wake event.
        health: where outages are recorded.
        stall_s: read timeout: nothing for this long means the stream is lost.
        open_timeout_s: how long a (re)connect may take.
        container: an already opened container (the factory's first connection).
    """

    modality = "vision"

    def __init__(self, url, featurizer, gate, chain, clock, wake, health,
                 stall_s: float = 2.0, open_timeout_s: float = 10.0, container=None, **kw):
        super().__init__(url, clock, wake, queue_len=kw.pop("queue_len", 256), **kw)
        self.url, self.feat, self.gate, self.health = url, featurizer, gate, health
        self.stall_s, self.open_timeout_s = float(stall_s), float(open_timeout_s)
        self.chain = chain
        self.has_audio = False
        self.latency_s = 0.1 + (self.chain.latency_s if self.chain else 0.0)
        self.counts.update(captured=0, featurized=0, no_face=0, audio_blocks=0, stale=0,
                           stalls=0, decode_errors=0)
        self._container = container
        self.last_data_s = None  # clock time of the last packet (None: none yet)
        self.lost_after_s: list[float] = []  # per loss: seconds from the last packet
        self._gen = 0  # connection number: items of a lost connection are stale
        self._start()

    @property
    def modalities(self) -> tuple[str, ...]:
        if self.chain is None:
            return ("vision",)
        return ("vision", "audio", "text") if self.chain.asr is not None else ("vision", "audio")

    def _open(self):
        return avmedia.open_input(self.url, self.open_timeout_s, self.stall_s)

    def _run(self) -> None:
        av = avmedia.import_av()
        while not self._stop.is_set():
            c = self._container
            if c is None:
                c = self._container = self._reconnect(self._open)
                if c is None:
                    continue
            self._gen += 1
            why = self._read(c, av)
            _close(c)
            self._container = None
            if self._stop.is_set():
                break
            self._gone(*why)

    def _read(self, c, av) -> tuple[str, str]:
        """Demux until the stream ends or fails; returns ``(reason, why)``."""
        anchor, res = None, None
        if c.streams.video:
            c.streams.video[0].thread_type = "AUTO"
        if c.streams.audio and self.chain is not None:
            self.has_audio = True
            res = av.AudioResampler(format="flt", layout="mono", rate=avmedia.AUDIO_RATE)
        try:
            for packet in c.demux(*(list(c.streams.video[:1]) + list(c.streams.audio[:1]))):
                if self._stop.is_set():
                    return "closed", ""
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:  # a damaged packet: counted, reading goes on
                    self.counts["decode_errors"] += 1
                    continue
                self.last_data_s = self.clock()
                for frame in frames:
                    now = self.clock()
                    ft = frame.time
                    if ft is None:
                        continue
                    if anchor is None or abs(anchor + ft - now) > MAX_SKEW_S:
                        anchor = now - ft
                        self._segment(now)
                    self._frame(packet.stream.type, anchor + ft, frame, res)
            return "device_lost", "the stream ended"
        except av.error.ExitError:  # the read timeout fired: nothing arrived for stall_s
            return "stall", f"no data for {self.stall_s:g} s"
        except (av.error.FFmpegError, OSError) as e:
            return "device_lost", avmedia.first_line(e)

    def _segment(self, t: float) -> None:
        self._put(("segment", self._gen, t))
        for m in self.modalities:
            self.health.end(m, t)

    def _frame(self, kind: str, t: float, frame, res) -> None:
        if kind == "video":
            self.counts["captured"] += 1
            if self.gate(t):
                self._put(("video", self._gen, t, frame.to_ndarray(format="bgr24")))
        elif res is not None:
            for f in res.resample(frame):
                self.counts["audio_blocks"] += 1
                self._put(("audio", self._gen, t, f.to_ndarray().reshape(-1).copy()))

    def _gone(self, reason: str, why: str) -> None:
        t = self.clock()
        if reason == "stall":
            self.counts["stalls"] += 1
        if self.last_data_s is not None:
            self.lost_after_s.append(round(t - self.last_data_s, 3))
        for m in self.modalities:
            self.health.begin(m, t, reason)
        self.connected = False
        self.counts["lost"] += 1
        log.warning("%s: %s (%s); reconnecting", self.url, reason.replace("_", " "), why)
        with self._lock:
            self._drops.append(Drop("device_lost", f"{self.url}: {reason}: {why}"))
            stale = sum(1 for it in self._q if it[0] != "segment")
            self._q.clear()  # frames of a lost stream never produce a result
        if stale:
            self.counts["stale"] += stale
            with self._lock:
                self._drops.append(Drop("stale", f"{self.url}: queued before the loss", stale))
        self.gate.reset()
        self.wake.set()

    def poll(self) -> tuple[list[Event], list[Drop]]:
        items, drops = self._take()
        events, no_face = [], 0
        for it in items:
            if it[0] == "segment":
                if self.chain is not None:
                    e, d = self.chain.flush()
                    events += e
                    drops += d
                    self.chain.reset(it[2])
            elif it[0] == "video":
                x = self.feat(it[3])
                self.counts["featurized"] += 1
                if x is None:
                    no_face += 1
                    self.health.mark("vision", it[2], it[2] + 0.1, "no_face")
                else:
                    events.append(Event(it[2], "vision", x))
            else:
                e, d = self.chain.push(it[3])
                events += e
                drops += d
        self.counts["no_face"] += no_face
        if no_face:
            drops.append(Drop("no_face", "vision: no face detected", no_face))
        events.sort(key=lambda e: e.t)
        return events, drops

    def stats(self) -> dict:
        out = super().stats()
        out["lost_after_last_data_s"] = list(self.lost_after_s)
        if self.chain is not None:
            out["audio"] = {"present": self.has_audio, **self.chain.stats()}
        return out


def _close(c) -> None:
    try:
        c.close()
    except Exception as e:  # closing a dead connection may raise from FFmpeg
        log.debug("closing the stream failed (%s)", e)


def open_rtsp_av(uri: str, names: dict, vad, speech, stall_s: float, backoff_s, health):
    """Connect and build the live source (see :func:`hrlf.runtime.capture.sources.open_rtsp`).

    Raises:
        InputError: cannot connect, or a featurizer/library is missing.
    """
    from ..featurizers.vision import RateGate

    try:
        feat = fz.make_vision(names["vision"])
        c = avmedia.open_input(uri, 10.0, stall_s)
    except BackendUnavailable as e:
        raise InputError(f"{uri}: {e}") from None
    except Exception as e:  # av.error.FFmpegError / OSError: one line
        raise InputError(f"{uri}: cannot open the stream ({avmedia.first_line(e)}); check the "
                         "URL, credentials and network") from None
    has_audio = bool(c.streams.audio)
    chain = None
    if has_audio:  # built here so a missing library is one line now, not a thread's death
        from .speech import speech_chain

        rate = avmedia.AUDIO_RATE
        try:
            chain = speech_chain(fz.make_audio(names["audio"], rate, min_chunk_frames=10), rate,
                                 vad, speech, names, health, live=True)
        except BackendUnavailable as e:
            c.close()
            raise InputError(f"{uri}: {e}") from None
    clock, wake = live.Clock(), threading.Event()
    if chain is not None and chain.asr is not None:
        chain.asr.timing.clock = clock  # text latency on the source's clock
    track = AvLiveTrack(uri, feat, RateGate(feat.rate_hz), chain, clock, wake,
                        health, stall_s=stall_s, container=c, backoff_s=backoff_s)
    notes = {}
    if not has_audio:
        notes["audio"] = "the stream has no audio track"
    if not (has_audio and chain.asr is not None):
        notes["text"] = "no speech recognition (no audio track)" if not has_audio else \
            speech.choice().why
    feats = {m: names[m] for m in track.modalities}
    src = base.LiveSource(uri, [track], feats, wake, notes, health=health, speech=speech)
    if "text" in notes:
        health.set_standing("text", "no_transcript" if has_audio else "unavailable",
                            notes["text"])
    return src

