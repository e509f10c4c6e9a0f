"""Stream generators shared by the packing tests (reference, host-side CUDA logic, GPU)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest


def random_stream(rng: np.random.Generator, *, dim: int, rate_hz: float, duration_s: float,
                  jitter: float = 0.3, extra: float = 0.3, gap_s: float = 0.6,
                  bad_frac: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """Frames with jittered times, extra frames (several per slot), a gap (empty slots) and
    NaN/Inf rows; times ascending (duplicates allowed)."""
    n = int(duration_s * rate_hz)
    t = (np.arange(n) + rng.uniform(-jitter, jitter, n) / 2) / rate_hz
    t = np.concatenate([t, rng.uniform(0, duration_s, int(extra * n))])
    gap0 = rng.uniform(0, max(duration_s - gap_s, 0))
    t = np.sort(t[(t < gap0) | (t >= gap0 + gap_s)])
    frames = rng.normal(3.0, 2.0, (len(t), dim)).astype(np.float32)
    bad = rng.random(len(t)) < bad_frac
    cols = rng.integers(0, dim, len(t))
    frames[bad, cols[bad]] = rng.choice([np.nan, np.inf, -np.inf], bad.sum())
    return frames, t


def grid_stream(dim: int, rate_hz: float, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Frames stamped exactly on slot boundaries (k / rate_hz): the SLOT_EPS case."""
    t = np.arange(int(duration_s * rate_hz)) / rate_hz
    return np.arange(len(t) * dim, dtype=np.float32).reshape(len(t), dim) % 7, t


def starts_for(rng: np.random.Generator, n: int, duration_s: float, window_s: float) -> np.ndarray:
    """Overlapping windows, some hanging off either end of the stream."""
    return np.sort(rng.uniform(-0.5 * window_s, duration_s, n))


@pytest.fixture
def streams():
    return SimpleNamespace(random=random_stream, grid=grid_stream, starts=starts_for)
