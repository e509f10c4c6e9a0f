"""Seeded synthetic multimodal sentiment streams.

Each recording ("video") has a smooth latent sentiment trajectory s(t) in [-3, 3]. Each
modality m observes it through its own view:

* a sentiment-relevant factor: a modality-specific nonlinear function of
  ``s(t) + e_m(t)``, where ``e_m`` is smooth noise independent per modality, so that
  combining modalities estimates s better than any single one;
* a modality-specific nuisance factor ``n_m(t)`` (speaker, room, lighting) that carries
  no sentiment and dominates the feature variance;
* a fixed random two-layer nonlinear projection to ``dim`` features, plus white noise;

sampled at the modality's own frame rate with jittered timestamps. The projection matrices
come from ``world_seed`` (the task is the same for every split); ``seed`` draws recordings.
Text keeps polarity well but magnitude poorly, audio mostly arousal (|s|) with weak
polarity, vision polarity with the most noise: sentiment is learnable, better from all
modalities than from one, and not trivially from one.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from .recording import Recording
from .spec import MODALITIES, ModalitySpec

GENERATOR_VERSION = 1
_DT = 0.05  # trajectory grid (s)
_HIDDEN = 16
_NUISANCE = 3


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of the generator (all of it goes into the data fingerprint)."""

    videos: dict = field(default_factory=lambda: {"train": 120, "valid": 30, "test": 30})
    duration_s: float = 30.0
    window_s: float = 2.0
    hop_s: float = 1.0
    rates_hz: dict = field(default_factory=lambda: {"text": 4.0, "audio": 20.0, "vision": 10.0})
    dims: dict = field(default_factory=lambda: {"text": 32, "audio": 24, "vision": 32})
    #: std of each modality's private sentiment noise e_m (smooth) — larger = weaker view
    view_noise: dict = field(default_factory=lambda: {"text": 1.2, "audio": 1.5, "vision": 1.8})
    frame_noise: float = 0.5
    jitter: float = 0.2  # timestamp jitter, fraction of a frame period
    seed: int = 0
    world_seed: int = 2024
    #: fraction of each modality's frames lost in bursts (sensor/network outages); 0 = none
    drop_fraction: float = 0.0
    #: mean length of one burst of lost frames, seconds (geometric in frames)
    drop_burst_s: float = 1.0

    def features(self) -> dict[str, ModalitySpec]:
        return {m: ModalitySpec(dim=int(self.dims[m]), frame_rate_hz=float(self.rates_hz[m]),
                                frames=max(1, round(self.window_s * self.rates_hz[m])),
                                featurizer=f"synthetic-v{GENERATOR_VERSION}-{m}")
                for m in MODALITIES}

    def fingerprint(self) -> dict:
        import hashlib  # here: not on the demo stream's way to a first result

        fields = asdict(self)
        for k, v in _OPTIONAL.items():  # off by default: the default fingerprint stays as it was
            if fields[k] == v:
                del fields[k]
        blob = json.dumps({"generator_version": GENERATOR_VERSION, **fields}, sort_keys=True)
        return {"source": "synthetic", "sha256": hashlib.sha256(blob.encode()).hexdigest(),
                "config": json.loads(blob)}


_OPTIONAL = {"drop_fraction": 0.0, "drop_burst_s": 1.0}


def burst_keep(rng: np.random.Generator, n: int, fraction: float, burst: float) -> np.ndarray:
    """(n,) bool: frames kept by a two-state (Gilbert) loss process.

    Bursts of lost frames have a geometric length of mean ``burst`` frames (>= 1) and cover
    ``fraction`` of the frames on average; the chain starts in its stationary state.
    """
    if fraction <= 0 or n == 0:
        return np.ones(n, bool)
    fraction = min(fraction, 0.95)
    p_end = 1.0 / max(burst, 1.0)  # lost -> kept
    p_start = p_end * fraction / (1.0 - fraction)  # kept -> lost (stationary share = fraction)
    u = rng.random(n)
    keep = np.empty(n, bool)
    state = rng.random() >= fraction
    for i in range(n):
        keep[i] = state
        state = (u[i] >= p_start) if state else (u[i] < p_end)
    return keep


def _smooth(rng: np.random.Generator, t: np.ndarray, n: int, periods: tuple[float, float],
            k: int = 4) -> np.ndarray:
    """(len(t), n) sum of k random sinusoids per column, unit variance on average."""
    per = rng.uniform(*periods, size=(k, n))
    phase = rng.uniform(0, 2 * np.pi, size=(k, n))
    amp = rng.normal(size=(k, n))
    out = np.einsum("kn,tkn->tn", amp, np.sin(2 * np.pi * t[:, None, None] / per + phase))
    return out * np.sqrt(2.0 / k)


def _view(modality: str, s: np.ndarray) -> np.ndarray:
    """(N, 2) sentiment-relevant factor of one modality's noisy sentiment ``s`` (N,)."""
    if modality == "text":  # polarity kept, magnitude weak
        return np.stack([np.tanh(1.5 * s), 0.25 * s], -1)
    if modality == "audio":  # arousal |s| strong, polarity weak
        return np.stack([np.abs(s) / 2 - 0.6, 0.3 * s], -1)
    return np.stack([s / 2, np.sin(s)], -1)  # vision: polarity, noisiest view


class _World:
    """The fixed nonlinear projections, shared by every recording of a config."""

    def __init__(self, cfg: SyntheticConfig):
        rng = np.random.default_rng(cfg.world_seed)
        self.w1, self.b1, self.w2 = {}, {}, {}
        for m in MODALITIES:
            self.w1[m] = rng.normal(size=(2 + _NUISANCE, _HIDDEN)) * np.array(
                [1.5, 1.5] + [1.0] * _NUISANCE)[:, None]
            self.b1[m] = rng.normal(scale=0.3, size=_HIDDEN)
            self.w2[m] = rng.normal(size=(_HIDDEN, cfg.dims[m])) / np.sqrt(_HIDDEN)


def generate_recordings(cfg: SyntheticConfig, split: str, n: int | None = None) -> list[Recording]:
    """Recordings of one split (``train``/``valid``/``test`` draw disjoint seeds)."""
    world = _World(cfg)
    n = cfg.videos[split] if n is None else n
    split_id = {"train": 0, "valid": 1, "test": 2}.get(split, 3)
    recs = []
    for i in range(n):
        rng = np.random.default_rng([cfg.seed, split_id, i])
        grid = np.arange(0.0, cfg.duration_s, _DT)
        raw = 0.9 * rng.normal() + 1.3 * _smooth(rng, grid, 1, (6.0, 30.0))[:, 0]
        sent = 3.0 * np.tanh(raw / 2.0)
        times, frames = {}, {}
        for m in MODALITIES:
            rate = cfg.rates_hz[m]
            k = np.arange(int(np.floor(cfg.duration_s * rate)))
            t = (k + 0.5 + rng.uniform(-cfg.jitter, cfg.jitter, len(k))) / rate
            s_t = np.interp(t, grid, sent)
            noisy = s_t + cfg.view_noise[m] * _smooth(rng, t, 1, (2.0, 10.0))[:, 0]
            view = _view(m, noisy)
            nuisance = rng.normal(size=_NUISANCE) + _smooth(rng, t, _NUISANCE, (5.0, 40.0))
            h = np.tanh(np.concatenate([view, nuisance], 1) @ world.w1[m] + world.b1[m])
            x = h @ world.w2[m] + cfg.frame_noise * rng.normal(size=(len(t), cfg.dims[m]))
            if cfg.drop_fraction > 0:  # bursty frame loss, own stream: same recording
                lrng = np.random.default_rng([cfg.seed, split_id, i, 7, MODALITIES.index(m)])
                keep = burst_keep(lrng, len(t), cfg.drop_fraction, cfg.drop_burst_s * rate)
                t, x = t[keep], x[keep]
            times[m], frames[m] = t, x.astype(np.float32)
        recs.append(Recording(id=f"syn{split[:2]}{cfg.seed}-{i:04d}", duration_s=cfg.duration_s,
                              times=times, frames=frames, knots=grid, values=sent))
    return recs


def make_synthetic(cfg: SyntheticConfig | None = None) -> Dataset:
    """The synthetic dataset: windows of train/valid/test recordings, packed raw."""
    from .datasets import Dataset, pack_recordings

    cfg = cfg or SyntheticConfig()
    feats = cfg.features()
    splits = {s: pack_recordings(generate_recordings(cfg, s), feats, cfg.window_s, cfg.hop_s)
              for s in cfg.videos}
    fp = cfg.fingerprint()
    fp["sizes"] = {s: len(v) for s, v in splits.items()}
    return Dataset("synthetic", splits, feats, cfg.window_s, cfg.hop_s, fingerprint=fp)
