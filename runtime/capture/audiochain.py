"""One audio stream's processing: features, the voice-activity gate and speech recognition.

Files, microphones and RTSP audio all go through :class:`AudioChain`, so a model sees the
same frames from a recording in training as from a live device: audio feature frames
outside speech are left out (``silence``), and without a transcript the speech is
recognized into text frames (``no_speech`` where nothing was said).
"""
from __future__ import annotations

import logging

import numpy as np

from .health import Health
from ..sources import Drop, Event

log = logging.getLogger("hrlf.capture")


class AudioChain:
    """Samples in, ``audio`` (and ``text``) events out.

    Args:
        featurizer: streaming audio featurizer.
        sample_rate: the stream's rate.
        vad: :class:`~hrlf.runtime.capture.vad.VadSetting` applied to the audio frames, or
            None (every frame kept).
        asr: recognize speech into text frames (needs ``text_featurizer``): a recognizer
            from :func:`hrlf.runtime.capture.asr_engines.open_engine`, True (the ``auto``
            choice) or False/None (none).
        text_featurizer: the text featurizer for recognized words.
        health: where silence / no-speech spans are recorded.
        t0_s: time of the first sample.
        live: a live device (recognition on a worker thread, partial text).
        heard: where recognized utterances go (:class:`~hrlf.runtime.capture.heard.Heard`).
        clock: a live source's clock (text latency is measured on it).

    Raises:
        BackendUnavailable: webrtcvad or the recognizer is missing (one line).
    """

    def __init__(self, featurizer, sample_rate: int, vad=None, asr=False,
                 text_featurizer=None, health: Health | None = None, t0_s: float = 0.0,
                 live: bool = False, heard=None, clock=None):
        from . import vad as vad_mod

        self.feat, self.sr = featurizer, int(sample_rate)
        self.health = health if health is not None else Health()
        self.apply_gate = vad is not None
        self.gate = vad_mod.VoiceGate(vad or vad_mod.DEFAULT_VAD, self.sr, t0_s) \
            if (vad is not None or asr) else None
        self.asr = None
        if asr:
            from .asr import SpeechToText

            self.asr = SpeechToText(text_featurizer, self.gate, self.sr,
                                    engine=None if asr is True else asr, live=live, heard=heard,
                                    clock=clock)
        self.counts = {"frames": 0, "silent_frames": 0, "text_frames": 0}
        self._asr_errors = 0
        self.feat.reset(t0_s)

    @property
    def latency_s(self) -> float:
        """How long after its timestamp a frame may come out (worst case)."""
        lat = self.feat.latency_s
        if self.gate is not None:
            lat += self.gate.setting.preroll_ms / 1000.0 + self.gate.setting.frame_ms / 1000.0
        if self.asr is not None:
            lat = max(lat, self.asr.latency_s + 0.1)
        return lat

    @property
    def next_t(self) -> float:
        return self.feat.next_t

    def reset(self, t0_s: float) -> None:
        """A new, discontinuous segment (device reconnect)."""
        self.feat.reset(t0_s)
        if self.gate is not None:
            self.gate.reset(t0_s)
        if self.asr is not None:
            self.asr.reset(t0_s)

    def push(self, samples) -> tuple[list[Event], list[Drop]]:
        """Feed float mono samples; returns the events and drops that became final."""
        x = np.asarray(samples, np.float32).reshape(-1)
        if self.gate is not None:
            self.gate.push(x)
        return self._out(*self.feat.push(x), self._speech("push", x))

    def flush(self) -> tuple[list[Event], list[Drop]]:
        """End of segment: everything still owed."""
        t, f = self.feat.flush()
        if self.gate is not None:
            self.gate.flush()
        out = self._out(t, f, self._speech("flush"))
        if self.gate is not None:
            self.gate._flushed = False
        return out

    def _speech(self, method: str, *a):
        """Run the recognizer; a failure costs its text frames (counted), never the stream."""
        if self.asr is None:
            return None
        try:
            out = getattr(self.asr, method)(*a)
        except Exception as e:  # a native decoder error: keep audio going, count it
            log.warning("speech recognition failed (%s: %s); continuing", type(e).__name__, e)
            self._asr_errors += 1
            out = None
        self._asr_errors += self.asr.pop_failures()
        return out

    def _out(self, times, feats, text):
        drops = []
        if self._asr_errors:
            self.counts["asr_errors"] = self.counts.get("asr_errors", 0) + self._asr_errors
            drops.append(Drop("asr_error", "text: speech recognition failed on an utterance",
                              self._asr_errors))
            self._asr_errors = 0
        if self.apply_gate:
            times, feats, n_silent, spans = self.gate.gate(times, feats)
            if n_silent:
                self.counts["silent_frames"] += n_silent
                drops.append(Drop("silence", "audio: no voice", n_silent))
            for a, b in spans:
                self.health.mark("audio", a, b, "silence")
        events, bad = [], 0
        for t, f in zip(times, feats):
            if np.isfinite(f).all():
                events.append(Event(float(t), "audio", f))
            else:
                bad += 1
        if bad:
            drops.append(Drop("nonfinite_features", "audio", bad))
        self.counts["frames"] += len(events)
        if text is not None:
            frames, empty = text
            events += [Event(float(t), "text", x) for t, x in frames]
            self.counts["text_frames"] += len(frames)
            for a, b in empty:
                self.health.mark("text", a, b, "no_speech")
            events.sort(key=lambda e: e.t)
        return events, drops

    def stats(self) -> dict:
        out = dict(self.counts)
        if self.asr is not None:
            out.update(words=self.asr.words_total, utterances=self.asr.utterances,
                       asr=self.asr.engine.describe(), **self.asr.timing.stats())
        return out

    def close(self) -> None:
        """Stop the recognizer's worker thread (live sources)."""
        if self.asr is not None:
            self.asr.close()
