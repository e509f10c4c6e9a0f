"""Streaming audio featurizers: sample chunks in, timestamped frames (100 per second) out.

* ``egemaps-lld-v02``: the 25 eGeMAPSv02 low-level descriptors of opensmile, one frame
  every 10 ms.
* ``logmel40-v1``: numpy log-mel spectrogram, 40 mel bands (20 Hz .. min(8 kHz, sr/2)) of a
  25 ms Hann window every 10 ms, ``log(power + 1e-10)``; used when opensmile is missing.

Frame ``k`` of a stream starting at ``t0_s`` is stamped ``t0_s + k * hop / sample_rate``
(the start of its analysis window), offline and chunked alike.

Chunking: a featurizer keeps a buffer holding ``context_frames`` of audio before the next
frame it owes, recomputes frames over that buffer when at least ``min_chunk_frames`` of new
audio has arrived, and holds back the last ``lookahead_frames`` (their windows and 3-frame
smoothing are not complete yet). Log-mel frames depend only on their own window, so chunked
equals offline exactly. For eGeMAPS, 23 of the 25 descriptors equal offline to float
precision; jitter and shimmer carry pitch-period history longer than the 1 s context and agree
within a tolerance (tests/capture/test_featurizers.py measures it).
"""
from __future__ import annotations

import functools

import numpy as np

from ...errors import InputError, import_optional
from .catalog import EGEMAPS, LOGMEL, FeaturizerInfo

_EMPTY_T = np.zeros(0, np.float64)


def as_mono_float(samples) -> np.ndarray:
    """Samples as float32 mono in [-1, 1]: ints are scaled, (n, channels) is averaged."""
    x = np.asarray(samples)
    if x.dtype == np.int16:
        x = x.astype(np.float32) / 32768.0
    elif x.dtype == np.int32:
        x = x.astype(np.float32) / 2147483648.0
    elif x.dtype == np.uint8:
        x = (x.astype(np.float32) - 128.0) / 128.0
    x = np.asarray(x, np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    return x.reshape(-1)


class StreamingAudio:
    """Base class: buffering and emission; subclasses define :meth:`compute`.

    Args:
        sample_rate: input sample rate in Hz.
        t0_s: timestamp of the first sample.
        min_chunk_frames: recompute after this much new audio (frames); smaller means less
            latency for more compute (None: the featurizer's default).
    """

    info: FeaturizerInfo
    context_frames = 0
    lookahead_frames = 0
    min_chunk_frames = 0

    def __init__(self, sample_rate: int, t0_s: float = 0.0, min_chunk_frames: int | None = None):
        if min_chunk_frames is not None:
            self.min_chunk_frames = int(min_chunk_frames)
        if int(sample_rate) <= 0:
            raise InputError(f"audio featurizer: sample rate {sample_rate} must be positive")
        self.sample_rate = int(sample_rate)
        self.hop = int(round(self.sample_rate / self.info.rate_hz))
        self.reset(t0_s)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def dim(self) -> int:
        return self.info.dim

    @property
    def latency_s(self) -> float:
        """Worst-case delay from a sample's arrival to its frame's emission (chunked)."""
        return (self.min_chunk_frames + self.lookahead_frames) / self.info.rate_hz

    @property
    def next_t(self) -> float:
        """Timestamp of the next frame this featurizer will emit."""
        return self.t0_s + self._next * self.hop / self.sample_rate

    def reset(self, t0_s: float = 0.0) -> None:
        """Start a new, discontinuous stream at ``t0_s`` (e.g. after a device reconnect)."""
        self.t0_s = float(t0_s)
        self._buf = np.zeros(0, np.float32)
        self._buf0 = 0      # absolute sample index of _buf[0]
        self._end = 0       # absolute samples received
        self._computed = 0  # _end at the last computation
        self._next = 0      # next frame index to emit

    def compute(self, signal: np.ndarray) -> np.ndarray:
        """Frames of ``signal`` (float32 mono) whose frame 0 starts at sample 0: (n, dim)."""
        raise NotImplementedError

    def push(self, samples) -> tuple[np.ndarray, np.ndarray]:
        """Add samples; returns the frames that became final: ``(times (n,), x (n, dim))``."""
        x = as_mono_float(samples)
        self._buf = np.concatenate([self._buf, x]) if len(self._buf) else x.copy()
        self._end += len(x)
        if self._end - self._computed < max(1, self.min_chunk_frames * self.hop):
            return _EMPTY_T, np.zeros((0, self.dim), np.float32)
        return self._emit(final=False)

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """End of stream: emit every frame still owed."""
        if self._end == 0:
            return _EMPTY_T, np.zeros((0, self.dim), np.float32)
        return self._emit(final=True)

    def offline(self, signal) -> tuple[np.ndarray, np.ndarray]:
        """Featurize a whole signal at once (from ``t0_s``); does not touch the stream state."""
        f = self.compute(as_mono_float(signal)).astype(np.float32)
        return self.t0_s + np.arange(len(f)) * self.hop / self.sample_rate, f

    def _emit(self, final: bool) -> tuple[np.ndarray, np.ndarray]:
        self._computed = self._end
        f = self.compute(self._buf)
        k0 = self._buf0 // self.hop
        last = k0 + len(f) - (0 if final else self.lookahead_frames)
        lo = max(self._next, k0)
        if last <= lo:
            return _EMPTY_T, np.zeros((0, self.dim), np.float32)
        out = f[lo - k0:last - k0].astype(np.float32)
        times = self.t0_s + np.arange(lo, last) * self.hop / self.sample_rate
        self._next = last
        keep_from = max(self._buf0, (self._next - self.context_frames) * self.hop)
        self._buf = self._buf[keep_from - self._buf0:]
        self._buf0 = keep_from
        return times, out


class LogMel(StreamingAudio):
    """``logmel40-v1``: 40-band log-mel energies, 25 ms window, 10 ms hop (numpy only)."""

    info = LOGMEL
    n_mels = 40

    def __init__(self, sample_rate: int, t0_s: float = 0.0, **kw):
        super().__init__(sample_rate, t0_s, **kw)
        self.win = int(round(0.025 * self.sample_rate))
        self.n_fft = 1 << (self.win - 1).bit_length()
        self.window = np.hanning(self.win).astype(np.float32)
        self.mel = mel_filterbank(self.sample_rate, self.n_fft, self.n_mels, 20.0,
                                  min(8000.0, self.sample_rate / 2))

    def compute(self, signal: np.ndarray) -> np.ndarray:
        n = 1 + (len(signal) - self.win) // self.hop if len(signal) >= self.win else 0
        if n <= 0:
            return np.zeros((0, self.dim), np.float32)
        frames = np.lib.stride_tricks.as_strided(
            signal, shape=(n, self.win), strides=(signal.strides[0] * self.hop, signal.strides[0]))
        spec = np.fft.rfft(frames * self.window, n=self.n_fft, axis=1)  # (n, n_fft/2+1)
        power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
        return np.log(power @ self.mel.T + 1e-10).astype(np.float32)


def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular mel filters (HTK mel scale), shape (n_mels, n_fft // 2 + 1)."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _smile():
    opensmile = import_optional("opensmile", f"audio featurizer {EGEMAPS.name}: opensmile",
                                f"pip install opensmile, or use {LOGMEL.name}")
    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.LowLevelDescriptors)


class Egemaps(StreamingAudio):
    """``egemaps-lld-v02``: opensmile eGeMAPSv02 low-level descriptors (25 per 10 ms)."""

    info = EGEMAPS
    context_frames = 100   # 1 s of history: F0 smoothing and period tracking
    lookahead_frames = 10  # 60 ms pitch window + 3-frame smoothing not complete yet
    min_chunk_frames = 25  # recompute at most every 250 ms of new audio

    def __init__(self, sample_rate: int, t0_s: float = 0.0, **kw):
        self._smile_obj = _smile()  # raise BackendUnavailable at construction, not mid-stream
        super().__init__(sample_rate, t0_s, **kw)

    def compute(self, signal: np.ndarray) -> np.ndarray:
        # opensmile needs a few analysis windows (60 ms) to produce a frame
        if len(signal) < int(0.06 * self.sample_rate):
            return np.zeros((0, self.dim), np.float32)
        df = self._smile_obj.process_signal(np.ascontiguousarray(signal, np.float32),
                                            self.sample_rate)
        return df.to_numpy(dtype=np.float32)


_CLASSES = {EGEMAPS.name: Egemaps, LOGMEL.name: LogMel}


def make(name: str, sample_rate: int, t0_s: float = 0.0, **kw) -> StreamingAudio:
    """Build audio featurizer ``name`` for a stream at ``sample_rate`` (``kw``: see
    :class:`StreamingAudio`).

    Raises:
        InputError: ``name`` is not an audio featurizer.
        BackendUnavailable: its library is missing (one line).
    """
    cls = _CLASSES.get(name)
    if cls is None:
        raise InputError(f"featurizer '{name}': not an audio featurizer; use one of "
                         f"{sorted(_CLASSES)}")
    return cls(sample_rate, t0_s, **kw)
