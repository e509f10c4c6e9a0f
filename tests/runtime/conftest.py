"""Runtime test helpers: a small synthetic spec and a backend that records its feeds."""
from __future__ import annotations

import numpy as np
import pytest

from hrlf.runtime.session import Session, SessionConfig
from hrlf.runtime.synthetic import SyntheticConfig, generate_recordings, make_synthetic

SMALL = SyntheticConfig(videos={"train": 6, "valid": 2, "test": 2}, duration_s=12.0)


class FakeBackend:
    """Scores = sum of modality mask + mean of valid text features; records every call."""

    name = "fake"

    def __init__(self, spec, max_batch=64):
        self.spec, self.max_batch, self.calls = spec, max_batch, []

    def run(self, feeds):
        self.calls.append({k: v.copy() for k, v in feeds.items()})
        m = feeds["text_mask"]
        text = (feeds["text"].sum((1, 2)) / np.maximum(m.sum(1), 1))
        return (feeds["modality_mask"].sum(1) + 0.01 * text).astype(np.float32)

    def close(self):
        pass


@pytest.fixture(scope="session")
def small_dataset():
    return make_synthetic(SMALL)


@pytest.fixture(scope="session")
def small_spec(small_dataset):
    return small_dataset.spec(small_dataset.splits["train"].norm())


@pytest.fixture
def recording():
    return generate_recordings(SMALL, "test", n=1)[0]


@pytest.fixture
def make_session(small_spec):
    def make(**cfg):
        clock = cfg.pop("monotonic", None)
        be = FakeBackend(small_spec)
        kw = {"monotonic": clock} if clock else {}
        return Session(be, small_spec, SessionConfig(**cfg), **kw), be
    return make


def dirty_chunk(rng, spec, t_last: float, m: str, kinds: int = 8):
    """A random chunk of modality ``m`` after ``t_last``: (times, frames, kind); kinds 0-4
    are dirty in one of push's ways (NaN, a repeat, late, a clock jump, wrong dim), the
    rest clean."""
    n = int(rng.integers(1, 6))
    times = t_last + np.cumsum(rng.uniform(0.01, 0.2, n))
    frames = rng.normal(size=(n, spec.dim(m))).astype(np.float32)
    kind = int(rng.integers(kinds))
    if kind == 0:
        frames[rng.integers(n)] = np.nan
    elif kind == 1:
        times[-1] = times[0]  # a repeat / going back inside the chunk
    elif kind == 2:
        times = times - 3.0  # late / out of order
    elif kind == 3:
        times = times + 5000.0  # beyond the jump horizon
    elif kind == 4:
        frames = frames[:, :-1]  # wrong dim
    return times, frames, kind


def push_recording(session, rec, outages=()):
    """Push all frames of a recording in time order (as the replay source does)."""
    from hrlf.runtime.stream_sources import RecordingSource

    src = RecordingSource("test", rec, {}, outages=outages, chunk=10**9)
    events = src.read().events
    for e in events:
        session.push(e.modality, e.t, e.x)
    return events
