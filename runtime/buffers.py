"""Per-modality timestamped frame buffers with exact accounting.

Every frame that reaches the runtime ends up in exactly one bucket: *used* (it fell into
at least one emitted segment) or *dropped* with a reason. ``Accounting.check()`` states
the invariant ``received == used + dropped + pending``; at shutdown ``pending`` is 0.

Drop reasons (see README): ``unknown_modality``, ``malformed_frame``, ``wrong_dim``,
``nonfinite``, ``overflow``, ``bad_timestamp``, ``clock_jump``, ``out_of_order``,
``duplicate``, ``late``, ``buffer_full``, ``outside_window``, ``condition``,
``drop_schedule``, plus whatever a source reports before a frame exists
(``malformed_json``, ``malformed_bytes``, ``device_lost``, ...), which is counted under
``source_drops`` because no frame was received.
"""
from __future__ import annotations

import threading
from collections import Counter

import numpy as np


class Accounting:
    """Thread-safe counters of frames received, used and dropped by reason."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received = 0
        self.used = 0
        self.dropped: Counter = Counter()
        self.source_drops: Counter = Counter()
        self.segments = 0
        self.segments_dropped: Counter = Counter()
        self.empty_windows = 0
        self.no_data = 0
        self.slots_out_of_range = 0
        self.callback_errors = 0

    def drop(self, reason: str, n: int = 1) -> None:
        with self.lock:
            self.dropped[reason] += n

    def pending(self, buffers) -> int:
        return sum(b.pending() for b in buffers)

    def check(self, buffers) -> bool:
        """True when every received frame is used, dropped or still pending."""
        return self.received == self.used + sum(self.dropped.values()) + self.pending(buffers)

    def snapshot(self) -> dict:
        with self.lock:
            return {"received": self.received, "used": self.used,
                    "dropped": dict(self.dropped), "source_drops": dict(self.source_drops),
                    "segments": self.segments, "segments_dropped": dict(self.segments_dropped),
                    "empty_windows": self.empty_windows, "no_data": self.no_data,
                    "slots_out_of_range": self.slots_out_of_range,
                    "callback_errors": self.callback_errors}


class ModalityBuffer:
    """Frames of one modality in ascending time order, bounded, drop-oldest.

    Storage is a preallocated array used as a sliding region ``[lo, hi)``; eviction
    advances ``lo`` and the region is compacted when it reaches the end.
    """

    def __init__(self, modality: str, dim: int, capacity: int, acct: Accounting):
        self.modality, self.dim, self.capacity, self.acct = modality, dim, capacity, acct
        self.t = np.empty(capacity, np.float64)
        self.x = np.empty((capacity, dim), np.float32)
        self.used = np.zeros(capacity, bool)
        self.lo = self.hi = 0
        self.last_t = -np.inf
        self.unused = 0  # frames held and not yet used (kept exact: stats() reads it)

    def __len__(self) -> int:
        return self.hi - self.lo

    def free(self) -> None:
        """Drop the storage (the stream closed; every frame is used or dropped by now)."""
        self.capacity = 0
        self.t = np.empty(0, np.float64)
        self.x = np.empty((0, self.dim), np.float32)
        self.used = np.zeros(0, bool)
        self.lo = self.hi = self.unused = 0

    def pending(self) -> int:
        return self.unused

    def append(self, t: float, x: np.ndarray) -> None:
        """Add one validated frame (``t`` > every earlier ``t``)."""
        if self.hi == self.capacity:
            if self.lo == 0:  # full: drop the oldest frame (backpressure)
                self._release(1, "buffer_full")
            n = self.hi - self.lo
            self.t[:n] = self.t[self.lo:self.hi]
            self.x[:n] = self.x[self.lo:self.hi]
            self.used[:n] = self.used[self.lo:self.hi]
            self.lo, self.hi = 0, n
        self.t[self.hi] = t
        self.x[self.hi] = x
        self.used[self.hi] = False
        self.hi += 1
        self.unused += 1
        self.last_t = t

    def times(self) -> np.ndarray:
        return self.t[self.lo:self.hi]

    def frames(self) -> np.ndarray:
        return self.x[self.lo:self.hi]

    def mark_used(self, t0: float, t1: float) -> None:
        """Count frames in ``[t0, t1)`` not yet used as used."""
        ts = self.times()
        a, b = np.searchsorted(ts, t0, "left"), np.searchsorted(ts, t1, "left")
        seg = self.used[self.lo + a:self.lo + b]
        n = int((~seg).sum())
        seg[:] = True
        self.unused -= n
        with self.acct.lock:
            self.acct.used += n

    def evict_before(self, t: float) -> None:
        """Release frames older than ``t``; unused ones are dropped as ``outside_window``."""
        n = int(np.searchsorted(self.times(), t, "left"))
        if n:
            self._release(n, "outside_window")

    def _release(self, n: int, reason: str) -> None:
        unused = int((~self.used[self.lo:self.lo + n]).sum())
        if unused:
            self.unused -= unused
            self.acct.drop(reason, unused)
        self.lo += n
        if self.lo == self.hi:
            self.lo = self.hi = 0

    def first_time(self) -> float | None:
        """Time of the oldest frame not yet used, or None."""
        return self.next_time(-np.inf, unused_only=True)

    def next_time(self, t0: float, unused_only: bool = False) -> float | None:
        """Time of the first frame at or after ``t0`` (optionally: not yet used), or None."""
        a = self.lo + int(np.searchsorted(self.times(), t0, "left"))
        if not unused_only:
            return float(self.t[a]) if a < self.hi else None
        free = ~self.used[a:self.hi]
        i = int(free.argmax()) if len(free) else 0
        return float(self.t[a + i]) if len(free) and free[i] else None

    def has_frames(self, t0: float, t1: float, unused_only: bool = False) -> bool:
        """True when a frame (optionally: one not yet used) lies in ``[t0, t1)``."""
        t = self.next_time(t0, unused_only)
        return t is not None and t < t1

    def last_unused_time(self) -> float | None:
        """Time of the newest frame not yet used, or None."""
        free = ~self.used[self.lo:self.hi]
        if not free.any():
            return None
        return float(self.t[self.lo + len(free) - 1 - int(free[::-1].argmax())])
