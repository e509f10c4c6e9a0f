"""How long a backend call of B windows takes, measured: the hub's batching policy and
its latency estimates come from this, not from constants.

A call costs about ``fixed + per_row * B`` (per-call overhead, then work that grows with
the batch). For a small model on a CPU the fixed part is small: on the 1-head demo model
(ONNX Runtime, one thread, a 2-core AMD EPYC VM) a batch of 12 costs about as much per
window as a batch of 64, so waiting for a larger batch buys latency, not throughput.
:class:`CostModel` fits the line on calls timed when the hub opens its backend
(:meth:`CostModel.measure`) and keeps it current with every real call (a running scale
for a machine that got busier or quieter). The hub reads two things from it:

* :meth:`CostModel.target_batch`: the smallest batch whose cost per window is within
  ``eps`` (10 %) of the asymptote; windows due together are sent in calls of this size,
  and a backlog is split into parallel calls of it rather than one large call;
* :meth:`CostModel.call_s`: the expected duration of a call, for the latency budget
  (hub_admission.py).
"""
from __future__ import annotations

import math
import threading
import time

import numpy as np

from hrlf.runtime.spec import MODALITIES, MODALITY_MASK, ModelSpec, frame_mask_name

#: the batch sizes timed when a hub opens its backend (those above max_batch are skipped)
SIZES = (1, 2, 4, 8, 16, 32, 64)
#: a batch is "large enough" when its cost per window is within this of the asymptote
EPS = 0.10
#: weight of each new call in the running scale (about the last 50 calls)
DECAY = 0.02


def random_feeds(spec: ModelSpec, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random windows with every frame present: what a busy stream sends."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for m in MODALITIES:
        t, d = spec.frames(m), spec.dim(m)
        feeds[m] = rng.standard_normal((batch, t, d)).astype(np.float32)
        feeds[frame_mask_name(m)] = np.ones((batch, t), np.float32)
    feeds[MODALITY_MASK] = np.ones((batch, len(MODALITIES)), np.float32)
    return feeds


class CostModel:
    """Seconds per backend call of ``rows`` windows: ``scale * (fixed_s + per_row_s * rows)``.

    Args:
        fixed_s: per-call overhead (seconds).
        per_row_s: cost of each window (seconds).
        points: the measured ``{batch: seconds per call}`` behind the fit (for stats()).
    """

    def __init__(self, fixed_s: float, per_row_s: float, points: dict | None = None):
        self.fixed_s, self.per_row_s = max(0.0, fixed_s), max(1e-7, per_row_s)
        self.points = dict(points or {})
        self.scale = 1.0
        self._lock = threading.Lock()

    @classmethod
    def fit(cls, points: dict[int, float]) -> "CostModel":
        """Least squares on relative error (every batch size counts alike)."""
        b = np.asarray(sorted(points), float)
        t = np.asarray([points[int(x)] for x in b], float)
        if len(b) == 1:
            return cls(0.0, float(t[0] / b[0]), points)
        w = 1.0 / t  # relative error: a 1-window call weighs as much as a 64-window one
        a = np.stack([np.ones_like(b), b], axis=1) * w[:, None]
        (fixed, per_row), *_ = np.linalg.lstsq(a, t * w, rcond=None)
        if per_row <= 0:  # timing noise on a flat curve: all of it is per row
            fixed, per_row = 0.0, float(np.min(t / b))
        return cls(float(fixed), float(per_row), points)

    @classmethod
    def measure(cls, run, spec: ModelSpec, max_batch: int, rounds: int = 3,
                limit_s: float = 1.0) -> "CostModel":
        """Time ``run(feeds)`` at the batch sizes of :data:`SIZES` up to ``max_batch``:
        the median of ``rounds`` calls each, after one warm-up call, in interleaved rounds,
        stopping early after ``limit_s`` (a slow backend still gets a fit)."""
        sizes = [b for b in SIZES if b <= max_batch] or [1]
        feeds = {b: random_feeds(spec, b, seed=b) for b in sizes}
        for b in sizes:
            run(feeds[b])
        times: dict[int, list] = {b: [] for b in sizes}
        t_end = time.perf_counter() + limit_s
        for _ in range(rounds):
            for b in sizes:
                t0 = time.perf_counter()
                run(feeds[b])
                times[b].append(time.perf_counter() - t0)
            if time.perf_counter() > t_end:
                break
        return cls.fit({b: float(np.median(v)) for b, v in times.items()})

    def target_batch(self, max_batch: int, eps: float = EPS) -> int:
        """Smallest batch whose cost per window is within ``eps`` of the asymptote."""
        b = math.ceil(self.fixed_s / (eps * self.per_row_s)) if self.fixed_s > 0 else 1
        return int(min(max(1, b), max_batch))

    def call_s(self, rows: float) -> float:
        """Expected seconds for one call of ``rows`` windows (0 rows: 0)."""
        if rows <= 0:
            return 0.0
        return self.scale * (self.fixed_s + self.per_row_s * rows)

    def row_s(self) -> float:
        """Expected seconds per window in a large batch."""
        return self.scale * self.per_row_s

    def observe(self, rows: int, seconds: float) -> None:
        """A real call took ``seconds`` for ``rows`` windows: update the running scale."""
        want = self.fixed_s + self.per_row_s * rows
        if rows <= 0 or not seconds > 0 or want <= 0:
            return
        ratio = min(max(seconds / want, 0.05), 50.0)  # one stalled call moves it little
        with self._lock:
            self.scale += DECAY * (ratio - self.scale)

    def summary(self) -> dict:
        return {"fixed_ms": round(self.fixed_s * 1e3, 4),
                "per_row_ms": round(self.per_row_s * 1e3, 4), "scale": round(self.scale, 3),
                "measured_ms": {str(b): round(s * 1e3, 4) for b, s in
                                sorted(self.points.items())}}
