"""Live tracks: a camera (or RTSP stream) and a microphone, each on its own capture thread.

Capture threads only grab: a camera thread keeps the first frame of every vision slot
(10 Hz) in a short queue, a microphone callback queues sample blocks. Featurizing happens in
``poll()``, on the runtime's thread. Timestamps are seconds on the source's monotonic clock.

A device that stops delivering is *lost*: the track reports one ``device_lost`` drop, its
modality goes absent (no events), and the thread reopens the device with exponential
backoff (``backoff_s``), counting ``reconnect_attempts`` and successful ``reconnects``.
"""
from __future__ import annotations

import collections
import logging
import threading
import time

import numpy as np

from ..sources import Drop, Event

log = logging.getLogger("hrlf.capture")
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 5.0)


class Clock:
    """Seconds since the source started, on the monotonic clock."""

    def __init__(self):
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.t0


class _LiveTrack:
    """Shared state: a capture thread, a queue, drops, counters and reconnect with backoff."""

    modality = ""

    def __init__(self, name: str, clock, wake: threading.Event, backoff_s=BACKOFF_S,
                 queue_len: int = 64):
        self.name, self.clock, self.wake = name, clock, wake
        self.backoff_s = tuple(backoff_s) or BACKOFF_S
        self._q = collections.deque()
        self._queue_len = queue_len
        self._drops: list[Drop] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.counts = collections.Counter(lost=0, reconnect_attempts=0, reconnects=0, backlog=0)
        self.connected = True
        self._thread = None

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"hrlf-{self.name}", daemon=True)
        self._thread.start()

    def _put(self, item) -> None:
        with self._lock:
            if len(self._q) >= self._queue_len:
                self._q.popleft()
                self.counts["backlog"] += 1
                self._drops.append(Drop("backlog", f"{self.name}: capture queue full"))
            self._q.append(item)
        self.wake.set()

    def _take(self) -> tuple[list, list[Drop]]:
        with self._lock:
            items, drops = list(self._q), self._drops
            self._q.clear()
            self._drops = []
        return items, drops

    def _lost(self, why: str) -> None:
        self.connected = False
        self.counts["lost"] += 1
        log.warning("%s: device lost (%s); reconnecting", self.name, why)
        with self._lock:
            self._drops.append(Drop("device_lost", f"{self.name}: {why}; reconnecting"))
        self.wake.set()

    def _reconnect(self, open_fn):
        """Reopen with backoff until it works or the track is closed; returns the handle."""
        for i in range(1 << 30):
            if self._stop.wait(self.backoff_s[min(i, len(self.backoff_s) - 1)]):
                return None
            self.counts["reconnect_attempts"] += 1
            try:
                handle = open_fn()
            except Exception as e:  # a driver can raise anything while a device comes back
                log.debug("%s: reopen failed (%s)", self.name, e)
                handle = None
            if handle is not None:
                self.counts["reconnects"] += 1
                self.connected = True
                log.warning("%s: reconnected", self.name)
                return handle
        return None

    def _run(self) -> None:
        raise NotImplementedError

    def stats(self) -> dict:
        return {**dict(self.counts), "connected": self.connected}

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        if getattr(self, "chain", None) is not None:
            try:  # finish the utterance in progress: its words reach the transcript
                self.chain.flush()
            except Exception as e:  # a device error while stopping: the words are lost
                log.debug("%s: final flush failed (%s)", self.name, e)
            self.chain.close()  # its recognizer's worker thread


class LiveVideoTrack(_LiveTrack):
    """Frames from a ``cv2.VideoCapture``-like object (a local camera).

    Args:
        name: for messages (``camera0``).
        cap: an opened capture.
        reopen: ``() -> capture or None``, used after the device is lost.
        featurizer: frame -> descriptor or None (no face).
        gate: :class:`~hrlf.runtime.featurizers.vision.RateGate` picking frames to keep.
        fail_limit: consecutive failed reads that mean the device is lost.
        stall_s: no frame for this long (a read blocking in the driver) is a ``stall``: the
            modality is declared lost at once and frames queued before it are discarded;
            the track recovers when frames flow again.
        health: where outages and faceless frames are recorded.
    """

    modality = "vision"
    latency_s = 0.1  # a kept frame is queued at once; featurizing takes ~5 ms (p99 ~80 ms)

    def __init__(self, name, cap, reopen, featurizer, gate, clock, wake, fail_limit: int = 5,
                 stall_s: float = 2.0, health=None, **kw):
        from .health import Health

        super().__init__(name, clock, wake, queue_len=kw.pop("queue_len", 8), **kw)
        self.cap, self.reopen, self.feat, self.gate = cap, reopen, featurizer, gate
        self.fail_limit, self.stall_s = fail_limit, float(stall_s)
        self.health = health if health is not None else Health()
        self.counts.update(captured=0, featurized=0, no_face=0, stalls=0, stale=0)
        self._last_frame = self.clock()
        self._stalled = False
        self._start()

    def _run(self) -> None:
        fails = 0
        while not self._stop.is_set():
            if self.cap is None:
                self.cap = self._reconnect(self.reopen)
                fails = 0
                self._last_frame = self.clock()
                continue
            ok, frame = self.cap.read()
            if not ok or frame is None:
                fails += 1
                if fails >= self.fail_limit:
                    self.cap.release()
                    self.cap = None
                    self.health.begin("vision", self.clock(), "device_lost")
                    self._lost(f"{fails} reads failed")
                else:
                    self._stop.wait(0.01)
                continue
            fails = 0
            t = self._last_frame = self.clock()
            self.counts["captured"] += 1
            if self.gate(t):
                self._put((t, frame))
        if self.cap is not None:
            self.cap.release()

    def _watch(self) -> None:
        """Declare a stall when the capture thread has delivered nothing for stall_s."""
        now, last = self.clock(), self._last_frame
        if not self._stalled and self.connected and now - last > self.stall_s:
            self._stalled = True
            self.counts["stalls"] += 1
            self.health.begin("vision", last, "stall")
            with self._lock:
                stale = len(self._q)
                self._q.clear()
            if stale:
                self.counts["stale"] += stale
                with self._lock:
                    self._drops.append(Drop("stale", f"{self.name}: queued before a stall",
                                            stale))
            self._lost(f"no frame for {self.stall_s:g} s")
        elif self._stalled and now - last <= self.stall_s:
            self._stalled = False
            self.connected = True
            self.health.end("vision", last)

    def poll(self) -> tuple[list[Event], list[Drop]]:
        self._watch()
        items, drops = self._take()
        if self.connected and not self._stalled:
            self.health.end("vision", items[0][0] if items else self.clock())
        events, no_face = [], 0
        for t, frame in items:
            x = self.feat(frame)
            if x is None:
                no_face += 1
                self.health.mark("vision", t, t + 1.0 / self.gate.rate_hz, "no_face")
            else:
                events.append(Event(t, "vision", x))
        self.counts["featurized"] += len(items)
        self.counts["no_face"] += no_face
        if no_face:
            drops.append(Drop("no_face", "vision: no face detected", no_face))
        return events, drops


class MicTrack(_LiveTrack):
    """Sample blocks from a sounddevice-like input stream.

    Args:
        name: for messages (``mic``, ``mic:2``).
        open_stream: ``(callback) -> started stream`` (has ``active`` and ``close()``).
        chain: the stream's :class:`~hrlf.runtime.capture.audiochain.AudioChain` (audio
            features, voice gate, speech recognition); reset at each (re)opened segment.
        sample_rate: the stream's rate.
        block_s: the stream's block length (for :attr:`latency_s`).
        stall_s: an open stream that delivers no block for this long is lost (``stall``).
        startup_s: how long a (re)opened stream may take to deliver its first block
            (PulseAudio and USB devices can take seconds) before it counts as lost.
        health: where outages are recorded.
    """

    modality = "audio"

    def __init__(self, name, open_stream, chain, sample_rate, clock, wake,
                 block_s: float = 0.1, stall_s: float = 2.0, startup_s: float | None = None,
                 health=None, **kw):
        from .health import Health

        super().__init__(name, clock, wake, queue_len=kw.pop("queue_len", 256), **kw)
        self.open_stream, self.chain, self.sr = open_stream, chain, int(sample_rate)
        self.feat = chain.feat
        self.stall_s = float(stall_s)
        self.startup_s = float(startup_s) if startup_s is not None else max(5.0, 2 * stall_s)
        self.health = health if health is not None else Health()
        #: a frame reaches read() about this long after its timestamp (bench/capture.py
        #: measured p99 0.31 s with 50 ms blocks and eGeMAPS every 100 ms, no gate/speech)
        self.latency_s = block_s + chain.latency_s + 0.1
        self.counts.update(samples=0, overflows=0, frames=0, stalls=0)
        self._seg_samples = None  # samples since the current segment began
        self._opened_at = self._last_block = self.clock()
        for m in self.modalities:  # until the first block arrives
            self.health.begin(m, self._opened_at, "starting")
        self.stream = self.open_stream(self._callback)
        self._start()

    @property
    def modalities(self) -> tuple[str, ...]:
        return ("audio", "text") if self.chain.asr is not None else ("audio",)

    def _callback(self, indata, frames, time_info, status) -> None:
        now = self.clock()
        self._last_block = now
        if status:
            self.counts["overflows"] += 1
            with self._lock:
                self._drops.append(Drop("input_overflow", f"{self.name}: {status}"))
        x = np.asarray(indata, np.float32).reshape(len(indata), -1).mean(axis=1)
        if self._seg_samples is None:  # first block of a (re)opened stream
            self._seg_samples = 0
            self._put(("segment", now - len(x) / self.sr))
            for m in self.modalities:
                self.health.end(m, now - len(x) / self.sr)
        self._seg_samples += len(x)
        self.counts["samples"] += len(x)
        self._put(("data", x))

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            if self.stream is None:
                self._seg_samples = None
                self.stream = self._reconnect(lambda: self.open_stream(self._callback))
                self._opened_at = self._last_block = self.clock()
                continue
            now = self.clock()
            started = self._seg_samples is not None
            # before the first block a device may still be starting: give it startup_s
            stalled = (now - self._last_block > self.stall_s) if started else \
                (now - self._opened_at > self.startup_s)
            if not getattr(self.stream, "active", True) or stalled:
                _close_quietly(self.stream)
                self.stream = None
                reason = "stall" if stalled else "device_lost"
                self.counts["stalls"] += stalled
                for m in self.modalities:
                    self.health.begin(m, self._last_block if started else now, reason)
                self._lost("stream stopped" if not stalled else
                           f"no audio for {self.stall_s if started else self.startup_s:g} s")
        if self.stream is not None:
            _close_quietly(self.stream)

    def poll(self) -> tuple[list[Event], list[Drop]]:
        items, drops = self._take()
        events = []
        for kind, val in items:
            if kind == "segment":
                e, d = self.chain.flush()
                self.chain.reset(val)
            else:
                e, d = self.chain.push(val)
            events += e
            drops += d
        self.counts["frames"] += sum(1 for e in events if e.modality == "audio")
        return events, drops

    def stats(self) -> dict:
        return {**super().stats(), **self.chain.stats()}


def _close_quietly(stream) -> None:
    try:
        stream.close()
    except Exception as e:  # closing a vanished device may raise from the driver
        log.debug("closing stream failed (%s)", e)
