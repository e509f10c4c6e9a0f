"""One stream of a :class:`~hrlf.runtime.hub.Hub`: a Session whose windows the hub scores.

A ``HubStream`` is a full :class:`~hrlf.runtime.session.Session` (same push contract,
validation, timestamp policy, buffers, deadlines and accounting), except that it never
calls the backend itself: due windows are packed into a :class:`Job` that the hub scores
together with other streams' jobs in one backend call, then the stream builds its own
results from its rows of the scores.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hrlf.runtime.delivery import Closed
from hrlf.runtime.frames import T_MAX, _finite64
from hrlf.runtime.session import Session
from hrlf.runtime.session_config import CLOSE_TIMEOUT_S
from hrlf.runtime.sinks import LatencyStats, Result

#: Latencies each stream keeps for its own p50/p99 (bounded: memory per stream stays flat).
STREAM_LATENCY_KEEP = 256


@dataclass
class Job:
    """Packed due windows of one stream, waiting to be scored.

    Attributes:
        stream: the stream.
        plan: in window order, ``("batch", due, (feeds, pack_s, t_start))`` and
            ``("no_data", item, reasons)`` entries (as in ``Session._emit``).
        due_wall: monotonic time the oldest window became due (batching waits from it).
        rows: windows to score.
    """

    stream: "HubStream"
    plan: list
    due_wall: float
    rows: int = 0
    scores: list = field(default_factory=list)


class SharedBackend:
    """The hub's backend as a stream sees it: closing a stream must not close it."""

    def __init__(self, backend):
        self._backend, self.name, self.spec = backend, backend.name, backend.spec
        self.max_batch = backend.max_batch

    def run(self, feeds):  # streams never call it directly; here for the Backend protocol
        return self._backend.run(feeds)

    def close(self) -> None:
        pass


class HubStream(Session):
    """A Session scored by its hub; create it with :meth:`Hub.add_stream`.

    Attributes:
        name: the stream's name in the hub (``hub.stream(name)``).
    """

    def __init__(self, hub, name: str, backend: SharedBackend, spec, config, on_result,
                 monotonic):
        super().__init__(backend, spec, config, on_result, monotonic)
        self.hub, self.name = hub, name
        self.latency = LatencyStats(keep=STREAM_LATENCY_KEEP)
        self.in_heap = False  # hub bookkeeping: scheduled for its next deadline
        self.backend_errors = 0

    # ---- input: as Session, plus telling the hub ----------------------------------------
    def push(self, modality: str, t: float, x) -> bool:
        ok = super().push(modality, t, x)
        self.hub._pushed(self)
        return ok

    def push_many(self, modality: str, times, frames) -> int:
        """Push a chunk of one modality's frames (row i of ``frames`` at ``times[i]``), as a
        featurizer emits them. Same contract and counts as ``push`` called row by row, in
        order; a clean chunk (float32 rows of the right dim, finite, increasing, after
        every frame already pushed, within the jump horizon) is stored in one step.

        Returns:
            how many frames were accepted.
        """
        n = self._fast_chunk(modality, times, frames)
        if n is None:  # anything unusual: exactly the per-frame path
            return sum(bool(self.push(modality, t, x)) for t, x in zip(times, frames))
        self.hub._pushed(self)
        return n

    def _fast_chunk(self, modality, times, frames) -> int | None:
        """Store a clean chunk in one step and return its size; None: not clean."""
        buf = self.buffers.get(modality) if isinstance(modality, str) else None
        if (buf is None or modality not in self.kept or self.cfg.drops
                or not isinstance(times, np.ndarray) or times.dtype.kind != "f"
                or not isinstance(frames, np.ndarray) or frames.dtype != np.float32
                or frames.ndim != 2 or frames.shape[1] != buf.dim
                or len(frames) != len(times) or len(times) == 0):
            return None
        with self._lock:
            self._check_open("push")
            tb = self.timebase
            if self._watermark is None or tb._run or len(buf) + len(times) > buf.capacity:
                return None
            s = times.astype(np.float64) - tb.origin
            if not (np.isfinite(s).all() and times.min() >= 0 and times.max() <= T_MAX
                    and _finite64(frames) and s[0] > buf.last_t and s[0] >= 0
                    and (len(s) == 1 or (np.diff(s) > 0).all())):
                return None
            if self._k_next is not None and s[0] < self._k_next * self.hop_s:  # as push: late
                return None
            latest = np.maximum.accumulate(np.concatenate(([self._watermark], s[:-1])))
            ref = np.maximum(latest, self.clock()) if self.cfg.live else latest
            if not (np.abs(s - ref) <= tb.max_jump_s).all():
                return None
            self.acct.received += len(s)
            tb.accepted()
            _extend(buf, s, frames)
            self._watermark = max(self._watermark, float(s[-1]))
        return len(s)

    @property
    def observer(self):
        """The hub's metrics observer (``hrlf.runtime.observe``), if it serves metrics."""
        return getattr(self.hub, "observer", None)

    def start(self, poll_s: float = 0.005) -> "HubStream":
        """No-op: the hub's worker scores this stream (``Hub.start``)."""
        return self

    # ---- windows -> jobs -------------------------------------------------------------
    def take(self, final: bool) -> Job | None:
        """Collect and pack the windows due now (all remaining ones if ``final``)."""
        with self._lock:
            if self._failure is not None or (self.closed and not final):
                return None
            due = self._due_now(final)
            if not due:
                self._evict()
                return None
            plan = self._plan(due)
        rows = sum(len(what) for kind, what, _ in plan if kind == "batch")
        return Job(self, plan, min(d[1] for d in due), rows)

    def _emit(self, final: bool) -> list[Result]:
        """advance()/finish()/close() on one stream: score its due windows right away."""
        job = self.take(final)
        if job is not None:
            self.hub._score_jobs([job])
        return []  # a hub stream's results go to on_result or results()

    def finish_job(self, job: Job, scores: list, infer_s: float, batch: int,
                   t_done: float, error=None) -> None:
        """Deliver the results of a scored job (``scores[i]`` per batch entry; None: the
        backend failed, with ``error``)."""
        out: list[Result] = []
        lo, hi = self.spec.output.score_range
        for (kind, what, extra), sc in zip(job.plan, scores):
            if kind == "no_data":
                out.append(self._no_data_result(what, extra))
                continue
            if sc is None:  # this stream's rows could not be scored
                self._backend_failed(len(what), error)
                continue
            feeds, pack_s, _t_start = extra
            batch_results = []
            for i, (k, due_wall, _) in enumerate(what):
                score = float(min(max(sc[i], lo), hi))
                pack, infer = pack_s * 1e3 / len(what), infer_s * 1e3 / max(1, batch)
                # from due to result; a window scored before it was due (close, remove)
                # waited for nothing: never negative
                total = max((t_done - due_wall) * 1e3, pack + infer) if self.cfg.live \
                    else pack + infer
                lat = {"wait": total - pack - infer, "pack": pack, "infer": infer,
                       "total": total}
                t_a, t_b = self._result_times(k)
                mods, frames = self.packer.present(feeds, i)
                r = Result(segment=k, t_start=t_a, t_end=t_b, score=score,
                           label=self.spec.label(score), modalities=mods, frames=frames,
                           latency_ms=lat, backend=self.backend.name, batch=batch)
                self.latency.add(lat)
                self.hub.latency.add(lat)
                batch_results.append(r)
            with self.acct.lock:
                self.acct.segments += len(batch_results)
            out.extend(batch_results)
        self._hand_out(out)  # in window order, as Session delivers

    def _queued(self) -> bool:
        return True  # the hub's worker scores it: without a callback, results() reads

    def _make_outbox(self):
        return self.hub._pool.outbox(self._call_back, self._undelivered)

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> Closed:
        """Score the remaining windows, deliver them, end results(), and leave the hub
        (same contract as :meth:`Session.close`)."""
        deadline = time.monotonic() + max(0.0, float(timeout_s))
        if not self._begin_close():
            return Closed([], self.stats())
        self.hub._flush_stream(self)
        return self._end_close(deadline)

    def _end_close(self, deadline: float) -> Closed:
        closed = None
        try:
            closed = super()._end_close(deadline)
            return closed
        finally:
            self.hub._forget(self, closed.stats if closed is not None else None)

    def next_due(self) -> float | None:
        """Monotonic time the next window is due (live), or None."""
        k, t0 = self._k_next, self._t0_wall
        if k is None or t0 is None:
            return None
        return t0 + k * self.hop_s + self.window_s + self.cfg.grace_s


def _extend(buf, s: np.ndarray, x: np.ndarray) -> None:
    """Append rows to a ModalityBuffer that has room for them (compacting like append)."""
    n = len(s)
    if buf.hi + n > buf.capacity:
        k = buf.hi - buf.lo
        buf.t[:k] = buf.t[buf.lo:buf.hi]
        buf.x[:k] = buf.x[buf.lo:buf.hi]
        buf.used[:k] = buf.used[buf.lo:buf.hi]
        buf.lo, buf.hi = 0, k
    buf.t[buf.hi:buf.hi + n] = s
    buf.x[buf.hi:buf.hi + n] = x
    buf.used[buf.hi:buf.hi + n] = False
    buf.hi += n
    buf.unused += n
    buf.last_t = float(s[-1])


def concat_feeds(parts: list[dict]) -> dict:
    """Stack feeds of several batch entries along the batch axis."""
    if len(parts) == 1:
        return parts[0]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
