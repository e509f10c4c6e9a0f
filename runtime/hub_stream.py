"""One stream of a :class:`~hrlf.runtime.hub.Hub`: a Session whose windows the hub scores.

A ``HubStream`` is a full :class:`~hrlf.runtime.session.Session` (same push contract,
validation, timestamp policy, buffers, deadlines and accounting), except that it never
calls the backend itself: due windows are packed into a :class:`Job` that the hub scores
together with other streams' jobs in one backend call, then the stream builds its own
results from its rows of the scores.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .delivery import Closed
from .frames import T_MAX
from .hub_pack import Cut, cut_windows
from .session import Session
from .session_config import CLOSE_TIMEOUT_S
from .sinks import LatencyStats, Result

#: Latencies each stream keeps for its own p50/p99 (bounded: memory per stream stays flat).
STREAM_LATENCY_KEEP = 256


@dataclass
class Job:
    """Packed due windows of one stream, waiting to be scored.

    Attributes:
        stream: the stream.
        plan: in window order, ``("batch", due, cuts)`` (the windows' frames, cut out of
            the buffers: hub_pack.py) and ``("no_data", item, reasons)`` entries (as in
            ``Session._emit``).
        due_wall: monotonic time the oldest window became due (batching waits from it).
        rows: windows to score.
        scores: per plan entry, its scores once scored (None: not scored).
        packed: per plan entry, ``(batch feeds, first row, pack seconds per row)``.
    """

    stream: "HubStream"
    plan: list
    due_wall: float
    rows: int = 0
    scores: list = field(default_factory=list)
    packed: list = field(default_factory=list)
    t_admit: float = 0.0  # hub clock when the worker took it (its queueing starts)
    ahead: int = 0  # windows queued ahead of it then


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
        """Store a clean chunk in one step and return its size; None: not clean.

        Cheap by design (it runs for every chunk of every stream): scalar checks, and a
        few numpy calls (stream times, their order, the frames' finiteness, the copy in).
        Frames are accepted here only where ``push`` would accept each of them: stream
        times strictly increasing from after the last frame and not before the next
        window, which (with the first in [0, T_MAX] and the last not beyond it) makes
        them finite; and the chunk within ``max_jump_s`` of the reference (the latest
        frame, live: or the clock, if later) at both ends, which bounds every frame's
        distance to its own reference (``Timebase.place``)."""
        buf = self._chunk_buffer(modality, times, frames)
        if buf is None or not 0.0 <= float(times[0]) or not float(times[-1]) <= T_MAX:
            return None
        origin = self.timebase.origin  # checked again under the lock (_store_clean)
        s = times - origin if times.dtype == np.float64 else \
            times.astype(np.float64) - origin
        if len(s) > 1 and not (s[1:] > s[:-1]).all():
            return None
        # a finite float32 sum means every value is finite (an overflowing sum of
        # finite values only sends the chunk down the exact per-frame path)
        if not math.isfinite(np.add.reduce(frames, axis=None)):
            return None
        return self._store_clean(buf, s, float(s[0]), float(s[-1]), frames, origin)

    def _chunk_buffer(self, modality, times, frames):
        """The buffer a chunk goes to when it has the fast path's types and shapes (float
        times, float32 frames of the modality's dim, no drop schedule), else None."""
        buf = self.buffers.get(modality) if modality.__class__ is str else None
        n = len(times) if times.__class__ is np.ndarray and times.ndim == 1 else 0
        if (buf is None or n == 0 or times.dtype.kind != "f" or frames.__class__ is not np.ndarray
                or frames.dtype != np.float32 or frames.shape != (n, buf.dim)
                or self.cfg.drops or modality not in self.kept):
            return None
        return buf

    def _store_clean(self, buf, s: np.ndarray, s0: float, s1: float, frames,
                     origin: float) -> int | None:
        """Store a chunk whose stream times ``s`` (source times minus ``origin``) strictly
        increase from ``s0`` to ``s1`` and whose frames are finite, when the rest of
        ``push``'s checks pass for all of it (see :meth:`_fast_chunk`); None: not stored."""
        n = len(s)
        with self._lock:
            self._check_open("push")
            tb, wm = self.timebase, self._watermark
            if wm is None or tb._run or tb.origin != origin \
                    or buf.hi - buf.lo + n > buf.capacity:
                return None
            k = self._k_next
            ref = max(wm, self.clock()) if self.cfg.live else wm
            if not (s0 > buf.last_t and s0 >= 0.0 and (k is None or s0 >= k * self.hop_s)
                    and s1 - ref <= tb.max_jump_s and ref - s0 <= tb.max_jump_s):
                return None
            self.acct.received += n
            tb.accepted()
            _extend(buf, s, frames)
            self._watermark = max(wm, s1)
        return n

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
            if self._failure is not None or ((self._closing or self.closed) and not final):
                return None
            due = self._due_now(final)
            if not due:
                self._evict()
                return None
            plan = self._plan(due)
        rows = sum(len(what) for kind, what, _ in plan if kind == "batch")
        return Job(self, plan, min(d[1] for d in due), rows)

    def _pack(self, starts: list[float]) -> list[Cut]:
        """(the lock held) Cut the windows out of the buffers; the hub packs its whole
        batch at once when it scores it (hub_pack.py)."""
        return cut_windows(self.buffers, starts, self.window_s)

    def shed(self, reason: str) -> Job | None:
        """Drop the windows due now unscored, counted as ``segments_dropped[reason]`` (the
        hub cannot score them in time); windows without frames still get their no_data
        results (the returned job, or None)."""
        with self._lock:
            if self._failure is not None or self._closing or self.closed:
                return None
            due = self._due_now(False)
            if not due:
                self._evict()
                return None
            n = sum(1 for d in due if d[2])
            if n:
                with self.acct.lock:
                    self.acct.segments_dropped[reason] += n
            plan = [("no_data", d, self._reasons(d[0])) for d in due if not d[2]]
            self._evict()
        return Job(self, plan, min(d[1] for d in due), 0) if plan else None

    def _emit(self, final: bool) -> list[Result]:
        """advance()/finish()/close() on one stream: score its due windows right away."""
        job = self.take(final)
        if job is not None:
            self.hub._score_now([job])
        return []  # a hub stream's results go to on_result or results()

    def finish_job(self, job: Job, scores: list, infer_s: float, batch: int,
                   t_done: float, error=None) -> None:
        """Deliver the results of a scored job (``scores[i]`` per batch entry; None: the
        backend failed, with ``error``)."""
        out: list[Result] = []
        lo, hi = self.spec.output.score_range
        for (kind, what, extra), sc, packed in zip(job.plan, scores, job.packed):
            if kind == "no_data":
                out.append(self._no_data_result(what, extra))
                continue
            if sc is None:  # this stream's rows could not be scored
                self._backend_failed(len(what), error)
                continue
            feeds, row0, pack_row_s = packed
            batch_results = []
            for i, (k, due_wall, _) in enumerate(what):
                score = float(min(max(sc[i], lo), hi))
                pack, infer = pack_row_s * 1e3, infer_s * 1e3 / max(1, batch)
                # from due to result; a window scored before it was due (close, remove)
                # waited for nothing: never negative
                total = max((t_done - due_wall) * 1e3, pack + infer) if self.cfg.live \
                    else pack + infer
                lat = {"wait": total - pack - infer, "pack": pack, "infer": infer,
                       "total": total}
                t_a, t_b = self._result_times(k)
                mods, frames = self.packer.present(feeds, row0 + i)
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
        self.hub._flush_stream(self, deadline)
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

