"""The two capture sources behind the factories: recorded media and live devices."""
from __future__ import annotations

import threading

from .health import Health
from ..sources import Drop, ReadResult, Status


class _Reasons:
    """What every capture source adds: why modalities are absent (see ``health.py``)."""

    health: Health
    notes: dict
    speech = None  # a SourceSpeech where the source recognizes speech

    @property
    def words_enabled(self) -> bool:
        """True with ``--words``: result lines carry the words heard in their window."""
        return self.speech is not None and self.speech.words

    def words(self, t_from: float, t_to: float) -> str:
        """The recognized words that started in ``[t_from, t_to)`` (``--words`` only)."""
        return self.speech.heard.words(t_from, t_to) if self.words_enabled else ""

    def transcript(self) -> dict:
        """What was recognized: ``{"utterances": [{"t0", "t1", "text"}, ...], "left_out"}``
        (empty without ``--words``)."""
        return self.speech.heard.transcript() if self.words_enabled else \
            {"utterances": [], "left_out": 0}

    def _speech_stats(self) -> dict:
        return self.speech.stats() if self.speech is not None else {}

    def reasons(self, t_from: float, t_to: float) -> dict[str, str]:
        """Modality -> reason it had no frames over ``[t_from, t_to)``, where one is known.

        The runtime attaches this to each result line (``absent``) and to windows that got
        no data at all.
        """
        return self.health.reasons(t_from, t_to)

    def status_reasons(self) -> list[str]:
        """Why data is missing right now, as ``modality:reason`` (over the last 2 s);
        ``hrlf-run`` adds them to its ``no_data`` lines."""
        now = self._now()
        return [f"{m}:{r}" for m, r in sorted(self.health.reasons(max(0.0, now - 2.0),
                                                                  now + 1e-3).items())]

    def _now(self) -> float:
        clock = getattr(self, "clock", None)
        return clock() if callable(clock) else float(getattr(self, "t", 0.0))

    def absent(self, modality_events: dict, t_end: float) -> dict:
        """Every modality absent from the whole stream so far, with its reason and detail."""
        out = {}
        whole = self.health.reasons(0.0, max(t_end, 1e-3))
        for m in ("text", "audio", "vision"):
            if modality_events.get(m, 0) == 0:
                reason = whole.get(m, "no_frames")
                out[m] = {"reason": reason, "detail": self.health.detail.get(m, self.notes.get(
                    m, {"no_face": "no face detected in any frame", "silence": "no voice "
                        "detected", "no_speech": "no words recognized"}.get(reason, "")))}
        return out


class FileSource(_Reasons):
    """A recording read as fast as the runtime asks (``live = False``), in media time.

    Each ``read`` advances the media clock by ``step_s`` and returns, in time order, every
    event of every track before it. ``EOS`` (with no events) follows the last events.

    Args:
        uri: what the user asked for.
        tracks: media tracks (see :mod:`hrlf.runtime.capture.media`).
        featurizers: modality -> featurizer name, for the modalities this file provides.
        notes: modality -> why it is absent (for ``stats()``).
        startup_drops: drops to report with the first read (e.g. an unusable featurizer).
        step_s: media seconds per read.
        duration_s: stop after this much media time (None: the whole file).
    """

    live = False
    latency_s = 0.0

    def __init__(self, uri: str, tracks, featurizers: dict, notes: dict | None = None,
                 startup_drops=(), step_s: float = 0.5, duration_s: float | None = None,
                 health: Health | None = None, speech=None):
        self.uri, self.tracks, self.featurizers = uri, list(tracks), dict(featurizers)
        self.speech = speech
        self.notes = dict(notes or {})
        self.health = health if health is not None else Health()
        self.by_modality: dict[str, int] = {}
        self._drops = list(startup_drops)
        self.step_s, self.duration_s = float(step_s), duration_s
        self.t = 0.0
        self.events = 0

    def read(self, timeout_s: float = 0.0) -> ReadResult:
        """Next ``step_s`` of media (``timeout_s`` is unused: files never wait)."""
        if all(tr.exhausted for tr in self.tracks) or (
                self.duration_s is not None and self.t >= self.duration_s):
            drops, self._drops = self._drops, []
            return ReadResult(Status.EOS, [], drops)
        self.t += self.step_s
        until = self.t if self.duration_s is None else min(self.t, self.duration_s)
        events, drops = [], self._drops
        self._drops = []
        for tr in self.tracks:
            e, d = tr.poll(until)
            events += e
            drops += d
        events.sort(key=lambda e: e.t)
        self.events += len(events)
        for e in events:
            self.by_modality[e.modality] = self.by_modality.get(e.modality, 0) + 1
        return ReadResult(Status.OK, events, drops)

    def stats(self) -> dict:
        """Frames per track and every absent modality with its reason."""
        tracks = {tr.modality: dict(tr.counts) for tr in self.tracks}
        for tr in self.tracks:
            if getattr(tr, "chain", None) is not None:
                tracks[tr.modality].update(tr.chain.stats())
        return {"kind": "file", "media_t_s": round(self.t, 3), "events": self.events,
                "events_by_modality": dict(self.by_modality), "tracks": tracks,
                "absent": self.absent(self.by_modality, self.t), **self._speech_stats()}

    def close(self) -> None:
        for tr in self.tracks:
            tr.close()


class LiveSource(_Reasons):
    """Camera and/or microphone tracks on capture threads (``live = True``).

    ``read`` waits up to ``timeout_s`` for data, featurizes what arrived and returns it:
    ``OK`` with events, ``ERROR`` when a device was just lost (reported as ``device_lost``
    drops; the other tracks and the runtime go on), else ``TIMEOUT``.

    ``latency_s`` is how long after its timestamp a frame may still arrive (the slowest
    track: audio waits for its analysis windows); a live session's grace should cover it.
    """

    live = True

    def __init__(self, uri: str, tracks, featurizers: dict, wake: threading.Event,
                 notes: dict | None = None, health: Health | None = None, speech=None):
        self.uri, self.tracks, self.featurizers = uri, list(tracks), dict(featurizers)
        self.speech = speech
        self.wake, self.notes = wake, dict(notes or {})
        self.health = health if health is not None else Health()
        for m, why in self.notes.items():
            self.health.set_standing(m, "unavailable", why)
        self.by_modality: dict[str, int] = {}
        self.clock = getattr(self.tracks[0], "clock", None) if self.tracks else None
        self.latency_s = max((getattr(t, "latency_s", 0.0) for t in self.tracks), default=0.0)
        self.events = 0
        self._closed = False

    def read(self, timeout_s: float) -> ReadResult:
        """Events that arrived (waiting at most ``timeout_s`` for some)."""
        if self._closed:
            return ReadResult(Status.EOS)
        self.wake.wait(max(0.0, timeout_s))
        self.wake.clear()
        events, drops = [], []
        for tr in self.tracks:
            e, d = tr.poll()
            events += e
            drops += d
        events.sort(key=lambda e: e.t)
        self.events += len(events)
        for e in events:
            self.by_modality[e.modality] = self.by_modality.get(e.modality, 0) + 1
        if events:
            return ReadResult(Status.OK, events, drops)
        lost = any(d.reason == "device_lost" for d in drops)
        return ReadResult(Status.ERROR if lost else Status.TIMEOUT, [], drops)

    def stats(self) -> dict:
        """Per-track counters (captured frames, reconnects, ...) and absent modalities."""
        tracks = {tr.modality: tr.stats() for tr in self.tracks}
        now = self.clock() if self.clock is not None else 0.0
        return {"kind": "live", "events": self.events, "latency_s": round(self.latency_s, 3),
                "events_by_modality": dict(self.by_modality), "tracks": tracks,
                "reconnects": sum(t["reconnects"] for t in tracks.values()),
                "reconnect_attempts": sum(t["reconnect_attempts"] for t in tracks.values()),
                "absent": self.absent(self.by_modality, now), **self._speech_stats()}

    def close(self) -> None:
        self._closed = True
        for tr in self.tracks:
            tr.close()


def note_drop(modality: str, reason: str, why: str) -> Drop:
    """The one drop that tells the summary why a modality is absent from the start."""
    return Drop(reason, f"{modality}: {why}")
