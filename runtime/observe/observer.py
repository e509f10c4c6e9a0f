"""What metrics and the live page need from the hot path, at the least cost.

Counters of frames, drops and segments already exist (``Session.stats()``, ``Hub.stats()``)
and are read at scrape time. What does not exist is per-result: which modalities each
window had and why the others were absent, the latency of each scored window, the size of
each backend call, and the recent scores the live page draws. :class:`Observer` takes
those where results are handed out (``seen``: a few list appends and dict increments per
result, under the stream's own lock) and where the backend is called (``call``: one list
append); values are folded into cumulative histogram buckets with numpy at scrape time
(or every :data:`FOLD_AT` values), so nothing on the hot path sorts or searches.

Memory stays bounded: a stream's state leaves with the stream (``closed``: its counts join
the totals), pending values are folded every :data:`FOLD_AT`, and only the first
:data:`LIVE_STREAMS` streams keep a ring of :data:`RING` recent points for the page.
"""
from __future__ import annotations

import threading
from collections import Counter, deque

import numpy as np

from hrlf.runtime.spec import MODALITIES

#: latency histogram buckets (seconds): 1 ms .. 10 s
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                     10.0)
STAGES = ("wait", "pack", "infer", "total")
#: batch-size histogram buckets (windows per backend call)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
#: pending values folded into buckets once this many wait (bounds memory between scrapes)
FOLD_AT = 4096
#: streams whose recent scores the live page draws (the first ones seen; a closed one's
#: slot goes to the next new stream)
LIVE_STREAMS = 32
#: recent results kept per drawn stream (10 minutes at a 1 s hop)
RING = 600


class Histogram:
    """Cumulative bucket counts and sums of ``rows`` series sharing ``bounds``."""

    def __init__(self, bounds, rows: int = 1):
        self.bounds = np.asarray(bounds, np.float64)
        self.counts = np.zeros((rows, len(bounds) + 1), np.int64)  # last: +Inf
        self.sums = np.zeros(rows, np.float64)
        self.lock = threading.Lock()

    def fold(self, values, scale: float = 1.0) -> None:
        """Add ``values`` ((n,) or (n, rows), in units of ``1/scale``) to the buckets."""
        if not len(values):
            return
        a = np.asarray(values, np.float64).reshape(len(values), -1) * scale  # (n, rows)
        idx = np.searchsorted(self.bounds, a, side="left")  # value <= bound: that bucket
        with self.lock:
            for j in range(a.shape[1]):
                self.counts[j] += np.bincount(idx[:, j], minlength=self.counts.shape[1])
                self.sums[j] += float(a[:, j].sum())

    def snapshot(self, row: int = 0) -> tuple[list, float]:
        """``([(upper bound as str, cumulative count), ..., ("+Inf", n)], sum)``."""
        with self.lock:
            cum = np.cumsum(self.counts[row])
            total = float(self.sums[row])
        edges = [_fmt(b) for b in self.bounds] + ["+Inf"]
        return list(zip(edges, (int(c) for c in cum))), total


def _fmt(b: float) -> str:
    return str(int(b)) if float(b).is_integer() and b >= 1 else repr(float(b))


class StreamObs:
    """One stream's share: presence counts, pending latencies, its ring (if drawn)."""

    __slots__ = ("session", "name", "lock", "present", "absent", "lat", "ring", "latest")

    def __init__(self, session, name: str, ring: int | None):
        self.session, self.name = session, name
        self.lock = threading.Lock()
        self.present = dict.fromkeys(MODALITIES, 0)
        self.absent: Counter = Counter()  # (modality, reason) -> windows
        self.lat: list = []  # (wait, pack, infer, total) ms of scored windows, not yet folded
        self.ring = deque(maxlen=ring) if ring else None  # (t_end, score, modalities, absent)
        self.latest = None  # the last result handed out


class Observer:
    """Per-result observations of many streams (see the module docstring). Thread-safe."""

    def __init__(self, live_streams: int = LIVE_STREAMS, ring: int = RING):
        self._lock = threading.Lock()
        self._streams: dict[int, StreamObs] = {}
        self.latency = Histogram(LATENCY_BUCKETS_S, rows=len(STAGES))
        self.batch = Histogram(BATCH_BUCKETS)
        self._batches: list = []
        self._blk = threading.Lock()  # _batches: appended by workers, swapped by scrapes
        self.gone_present: Counter = Counter()  # closed streams' counts
        self.gone_absent: Counter = Counter()
        self.live_streams, self.ring = int(live_streams), int(ring)
        self._drawn = 0

    # ---- the hot path ------------------------------------------------------------------
    def seen(self, session, results) -> None:
        """Results a stream handed out (called once per batch of them)."""
        st = getattr(session, "_obs_state", None)
        if st is None:
            st = self._new(session)
        with st.lock:
            lat, present, absent, ring = st.lat, st.present, st.absent, st.ring
            for r in results:
                if r.status == "ok":
                    ms = r.latency_ms
                    lat.append((ms["wait"], ms["pack"], ms["infer"], ms["total"]))
                    for m in r.modalities:
                        present[m] += 1
                for item in r.absent.items():
                    absent[item] += 1
                if ring is not None:
                    ring.append((r.t_end, r.score, r.modalities, r.absent))
            st.latest = results[-1]
            if len(lat) >= FOLD_AT:
                st.lat = []
            else:
                lat = None
        if lat:
            self.latency.fold(lat, 1e-3)

    def call(self, n: int) -> None:
        """A backend call of ``n`` windows succeeded (BackendGuard's ``on_call``)."""
        with self._blk:
            self._batches.append(n)
            full = len(self._batches) >= FOLD_AT
        if full:
            self.fold_batches()

    def _new(self, session) -> StreamObs:
        with self._lock:
            st = getattr(session, "_obs_state", None)
            if st is None:
                drawn = self._drawn < self.live_streams
                self._drawn += drawn
                st = StreamObs(session, str(getattr(session, "name", "") or "stream"),
                               self.ring if drawn else None)
                session._obs_state = st
                self._streams[id(session)] = st
        return st

    # ---- streams leaving, scrapes ------------------------------------------------------
    def closed(self, session) -> None:
        """A stream closed: its counts join the totals, its state is freed."""
        with self._lock:
            st = self._streams.pop(id(session), None)
            if st is None:
                return
            self._drawn -= st.ring is not None
            with st.lock:
                self.gone_present.update(st.present)
                self.gone_absent.update(st.absent)
                lat, st.lat = st.lat, []
        session._obs_state = None
        self.latency.fold(lat, 1e-3)

    def streams(self) -> list[StreamObs]:
        with self._lock:
            return list(self._streams.values())

    def fold_batches(self) -> None:
        with self._blk:
            b, self._batches = self._batches, []
        self.batch.fold(b)

    def fold(self) -> None:
        """Fold every pending value into the histograms (at scrape time)."""
        pending = []
        for st in self.streams():
            with st.lock:
                if st.lat:
                    pending += st.lat
                    st.lat = []
        self.latency.fold(pending, 1e-3)
        self.fold_batches()

    def presence(self) -> tuple[dict, Counter, dict]:
        """Totals: windows with each modality, windows without it by reason, and live
        streams whose latest window had it (plain loops: a scrape of 1,000 streams)."""
        with self._lock:
            present = {m: self.gone_present.get(m, 0) for m in MODALITIES}
            absent = Counter(self.gone_absent)
        now = dict.fromkeys(MODALITIES, 0)
        for st in self.streams():
            with st.lock:
                p, r = st.present, st.latest
                for m in MODALITIES:
                    present[m] += p[m]
                for k, v in st.absent.items():
                    absent[k] += v
            if r is not None:
                for m in r.modalities:
                    now[m] += 1
        return present, absent, now
