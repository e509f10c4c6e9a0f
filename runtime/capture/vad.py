"""Voice activity: which audio frames carry speech (WebRTC VAD, ``webrtcvad-wheels``).

Audio frames outside speech are left out (counted as ``silence`` drops), so a window of
silence has no audio and the model sees the modality absent, with the reason ``silence``.
Training (``hrlf-train --data clips.csv``) and the runtime apply the same gate: the setting is
written into ``spec.json`` as ``features.audio.vad`` (:class:`VadSetting`); a model whose
spec has none (older models) is fed every audio frame, as it was trained.

The gate runs WebRTC's VAD on 30 ms frames of 16-bit audio (8/16/32/48 kHz; other rates are
resampled linearly to 16 kHz for the decision only). WebRTC's VAD alone calls steady noise
voice now and then (white noise at -54 dBFS passed 37 of 436 frames), so a VAD frame is
voiced only when it is also loud enough: at least ``floor_dbfs`` (RMS, dB re full scale) and
at least ``snr_db`` above the stream's noise floor: the median level of the frames WebRTC
called non-speech lately (the last ``NOISE_WINDOW_S`` seconds' worth; fewer than 5: the
absolute floor alone). Steady noise then fails the SNR test on the frames WebRTC mistakes
for voice, while voice that never pauses (no non-speech frames) is still voice. Spec files
written before these two fields get their defaults. An audio feature frame stamped ``t`` is
voiced when a VAD frame starting in ``[t - hangover_s, t + preroll_s]`` is voiced: the
hangover keeps word endings and short pauses, the pre-roll keeps onsets. A frame is decided
only once the VAD has seen audio up to ``t + preroll_s``, so chunked and offline audio give
the same decisions.
"""
from __future__ import annotations

import bisect
import collections
import functools
from dataclasses import asdict, dataclass

import numpy as np

from ...errors import SpecError, import_optional, unavailable_reason_of

VAD_NAME = "webrtcvad-v1"
_VAD_RATES = (8000, 16000, 32000, 48000)
#: the noise floor is the median level of the non-speech VAD frames of this many seconds
NOISE_WINDOW_S = 10.0


@dataclass(frozen=True)
class VadSetting:
    """The gate's parameters, as stored in ``spec.json`` (``features.audio.vad``).

    Attributes:
        name: ``webrtcvad-v1``.
        aggressiveness: WebRTC mode 0 (keeps most) .. 3 (keeps least).
        frame_ms: VAD frame length: 10, 20 or 30.
        hangover_ms: audio kept after the last voiced VAD frame.
        preroll_ms: audio kept before the first voiced VAD frame.
        floor_dbfs: a quieter VAD frame is never voice (RMS in dB re full scale).
        snr_db: a VAD frame is voice only this far above the recent noise floor.
    """

    name: str = VAD_NAME
    aggressiveness: int = 2
    frame_ms: int = 30
    hangover_ms: int = 300
    preroll_ms: int = 100
    floor_dbfs: int = -50
    snr_db: int = 6

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d, source: str = "spec.json") -> "VadSetting":
        """Validate a ``features.audio.vad`` object.

        Raises:
            SpecError: unknown name or key, or a value out of range (one line).
        """
        keys = set(cls.__dataclass_fields__)
        bad = sorted(set(d) - keys)
        if bad or d.get("name") != VAD_NAME:
            raise SpecError(f"{source}: features.audio.vad must be {{name: {VAD_NAME}, "
                            f"{', '.join(sorted(keys - {'name'}))}}}, got {dict(d)}; re-train "
                            "the model with this hrlf version")
        try:
            s = cls(**{k: (str(v) if k == "name" else int(v)) for k, v in d.items()})
        except (TypeError, ValueError) as e:
            raise SpecError(f"{source}: features.audio.vad: {e}; use integers") from None
        if s.aggressiveness not in (0, 1, 2, 3) or s.frame_ms not in (10, 20, 30) or \
                s.hangover_ms < 0 or s.preroll_ms < 0 or not -120 <= s.floor_dbfs <= 0 or \
                not 0 <= s.snr_db <= 60:
            raise SpecError(f"{source}: features.audio.vad {dict(d)} out of range "
                            "(aggressiveness 0-3, frame_ms 10/20/30, hangover/preroll >= 0, "
                            "floor_dbfs -120..0, snr_db 0..60)")
        return s


DEFAULT_VAD = VadSetting()


def setting_of(spec) -> VadSetting | None:
    """The gate a model expects: its spec's ``features.audio.vad`` (None: no gate); without
    a spec (``spec=None``, e.g. feature extraction for training) the default gate."""
    if spec is None:
        return DEFAULT_VAD
    feats = getattr(spec, "features", None) or {}
    vad = getattr(feats.get("audio"), "vad", None)
    return None if vad is None else VadSetting.from_dict(vad)


@functools.lru_cache(maxsize=1)
def _webrtcvad():
    return import_optional("webrtcvad", f"voice activity ({VAD_NAME}): webrtcvad",
                           "pip install webrtcvad-wheels (hrlf[capture])")


def to_int16(x: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    """Float mono samples as int16 at a rate WebRTC's VAD accepts (resampled if needed)."""
    x = np.asarray(x, np.float32)
    if sample_rate not in _VAD_RATES:
        n = int(len(x) * 16000 / sample_rate)
        x = np.interp(np.arange(n) * (sample_rate / 16000.0), np.arange(len(x)), x)
        sample_rate = 16000
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16), sample_rate


class VoiceGate:
    """Streaming voice-activity gate for one audio stream.

    ``push(samples)`` feeds audio; ``gate(times, feats)`` holds audio feature frames until
    their decision is known and returns ``(kept_times, kept_feats, n_silent, silent_spans)``.

    Args:
        setting: the :class:`VadSetting`.
        sample_rate: the stream's rate.
        t0_s: time of the first sample.

    Raises:
        BackendUnavailable: webrtcvad-wheels is missing (one line).
    """

    def __init__(self, setting: VadSetting, sample_rate: int, t0_s: float = 0.0):
        self.setting, self.sample_rate = setting, int(sample_rate)
        self._vad = _webrtcvad().Vad(setting.aggressiveness)
        self.reset(t0_s)

    def reset(self, t0_s: float = 0.0) -> None:
        """Start a new, discontinuous stream at ``t0_s``."""
        self.t0_s = float(t0_s)
        self._rest = np.zeros(0, np.int16)
        self._rate = None
        self._n_frames = 0          # VAD frames decided
        self._voiced: list[float] = []  # start times of voiced VAD frames
        self._speech: list[float] = []  # ... and of those WebRTC alone calls speech
        self._levels = collections.deque(
            maxlen=max(1, int(NOISE_WINDOW_S * 1000 / self.setting.frame_ms)))
        self._held_t: list[float] = []
        self._held_x: list[np.ndarray] = []
        self._flushed = False

    @property
    def decided_s(self) -> float:
        """Stream time up to which VAD frames have been decided."""
        return self.t0_s + self._n_frames * self.setting.frame_ms / 1000.0

    def push(self, samples) -> None:
        """Run the VAD over the new audio (float mono)."""
        x, rate = to_int16(samples, self.sample_rate)
        self._rate = rate
        buf = np.concatenate([self._rest, x]) if len(self._rest) else x
        step = rate * self.setting.frame_ms // 1000
        n = len(buf) // step
        frame_s = self.setting.frame_ms / 1000.0
        s = self.setting
        for i in range(n):
            frame = buf[i * step:(i + 1) * step]
            db = _dbfs(frame)
            if not self._vad.is_speech(frame.tobytes(), rate):
                self._levels.append(db)
                continue
            self._speech.append(self.t0_s + (self._n_frames + i) * frame_s)
            noise = float(np.median(self._levels)) if len(self._levels) >= 5 else -np.inf
            if db >= s.floor_dbfs and db >= noise + s.snr_db:
                self._voiced.append(self.t0_s + (self._n_frames + i) * frame_s)
        self._n_frames += n
        self._rest = buf[n * step:]
        self._prune()

    def flush(self) -> None:
        """End of stream: decide every held frame with what the VAD has seen."""
        self._flushed = True

    def any_voiced(self, t_from: float, t_to: float, loud: bool = True) -> bool:
        """True when a voiced VAD frame starts within ``[t_from, t_to)``; ``loud=False``:
        a frame WebRTC calls speech, loud enough or not (a recognizer keeps an utterance
        going on those, so weak consonants in noise do not split words)."""
        frames = self._voiced if loud else self._speech
        i = bisect.bisect_left(frames, t_from)
        return i < len(frames) and frames[i] < t_to

    def voiced(self, t: float) -> bool:
        """True when a voiced VAD frame starts within ``[t - hangover, t + preroll]``."""
        s = self.setting
        i = bisect.bisect_left(self._voiced, t - s.hangover_ms / 1000.0 - 1e-9)
        return i < len(self._voiced) and self._voiced[i] <= t + s.preroll_ms / 1000.0 + 1e-9

    def gate(self, times, feats):
        """Hold new frames; release the decided ones.

        Returns:
            ``(times (n,), feats (n, dim), n_silent, silent_spans)`` where ``silent_spans``
            lists ``(t_from, t_to)`` runs of frames left out.
        """
        self._held_t.extend(float(t) for t in times)
        self._held_x.extend(feats)
        # a frame at t needs every VAD frame *starting* by t + preroll to be decided
        s = self.setting
        horizon = np.inf if self._flushed else \
            self.decided_s - (s.preroll_ms + s.frame_ms) / 1000.0 - 1e-9
        k = bisect.bisect_right(self._held_t, horizon)
        ts, xs = self._held_t[:k], self._held_x[:k]
        del self._held_t[:k], self._held_x[:k]
        keep_t, keep_x, spans = [], [], []
        for t, x in zip(ts, xs):
            if self.voiced(t):
                keep_t.append(t)
                keep_x.append(x)
            elif spans and abs(spans[-1][1] - t) < 0.0101:
                spans[-1][1] = t + 0.01
            else:
                spans.append([t, t + 0.01])
        self._prune()
        dim = len(xs[0]) if xs else (len(feats[0]) if len(feats) else 0)
        kx = np.asarray(keep_x, np.float32).reshape(len(keep_x), dim)
        return (np.asarray(keep_t, np.float64), kx, len(ts) - len(keep_t),
                [tuple(s) for s in spans])

    def _prune(self) -> None:
        lo = (self._held_t[0] if self._held_t else self.decided_s) - 2.0 - \
            self.setting.hangover_ms / 1000.0
        for frames in (self._voiced, self._speech):
            i = bisect.bisect_left(frames, lo)
            if i > 1000:
                del frames[:i]


def _dbfs(frame: np.ndarray) -> float:
    """RMS level of int16 samples in dB re full scale (-120 for digital silence)."""
    p = float(np.mean(np.square(frame.astype(np.float64)))) / (32768.0 ** 2)
    return 10.0 * np.log10(max(p, 1e-12))


def unavailable_reason() -> str | None:
    """Why the gate cannot run here (one line), or None."""
    return unavailable_reason_of(_webrtcvad)
