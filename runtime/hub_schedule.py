"""The hub's worker: which due windows are scored, when, and in which backend calls.

The worker thread (``Hub.start()``) keeps the live streams on a heap by their next
deadline. Each step it takes the windows that came due, packs them, and hands batches to
the inference threads (hub_pool.py):

* **batch size, measured**: a batch goes out once it holds ``target_batch`` windows (the
  smallest batch whose cost per window is within 10 % of the best, measured when the hub
  opened its backend: hub_batching.py) or its oldest window has waited ``max_wait_s``.
  A backlog is split over the idle inference threads in calls of at least
  ``target_batch`` rather than sent as one large call: larger batches cost as much per
  window, and one call at a time would use one core.
* **a latency budget** (``HubConfig.latency_budget_s``): before a due window is packed,
  the worker estimates when its result would be out (how late the window already is,
  plus the windows queued ahead of it at the rate queued windows drained lately, or at
  the measured cost per window spread over the inference threads if that is slower,
  plus one call); a window that would miss the budget is not packed
  nor scored but dropped, counted per stream as ``segments_dropped.overload`` (a live
  stream's windows without frames still get their ``no_data`` results). So when more
  streams arrive than the machine can score, the hub sheds the excess at once and the
  windows it does score stay within the budget, instead of every stream falling behind.

``step()``/``advance()`` called by the embedder (non-live streams, tests) score every
window due now in the caller's thread, the budget aside: the caller asked for them.
"""
from __future__ import annotations

import heapq
import logging
import math
import time

from .hub_stream import HubStream, Job

log = logging.getLogger("hrlf.runtime.hub")

#: the worker collects due windows at most this often (windows due within it share a step)
TICK_S = 0.002
#: weight of a queued job in the running drain rate when it drained slower / faster
DRAIN_UP, DRAIN_DOWN = 0.2, 0.01


class Scheduling:
    """Mixin of :class:`~hrlf.runtime.hub.Hub`: the worker loop and the batching policy."""

    def _work(self) -> None:
        last = 0.0
        while True:
            with self._lock:
                if self._stop:
                    return
                now = self._monotonic()
                wake = now + 0.1
                if self._heap:
                    wake = min(wake, max(self._heap[0][0], last + TICK_S))
                if self._pending and self._infer.free() > 0:
                    oldest = min(j.due_wall for j in self._pending)
                    wake = min(wake, oldest + self.cfg.max_wait_s)
                if not self._dirty and wake > now:
                    self._cv.wait(wake - now)
            self._pool.poke()  # a callback blocked in every delivery thread: add one
            last = self._monotonic()
            try:
                with self._step_lock:
                    self._step_async(last)
            except Exception:  # a bug, not a stream's input: log it, keep serving
                log.exception("hub worker step failed")

    def _wake_worker(self) -> None:
        """An inference thread finished a batch: the worker may submit the next one."""
        with self._lock:
            self._cv.notify()

    def _pop_due(self, now: float) -> list[HubStream]:
        """The streams with windows due by ``now`` (live) or pushed since (non-live)."""
        with self._lock:
            due: list[HubStream] = []
            while self._heap and self._heap[0][0] <= now:
                s = heapq.heappop(self._heap)[2]
                s.in_heap = False
                due.append(s)
            due.extend(self._dirty)
            self._dirty.clear()
        return due

    def _reschedule(self, due: list[HubStream], now: float) -> None:
        with self._lock:
            for s in due:
                if s.cfg.live:
                    self._schedule(s, not_before=now + 1e-3)

    def _step_async(self, now: float) -> None:
        """(worker, step lock held) Admit the due windows, submit ready batches."""
        due = self._pop_due(now)
        self._pending += self._admit(due, now)
        self._reschedule(due, now)
        self._dispatch(now)

    def _step(self, flush: bool) -> int:
        """(step lock held) ``step()``: score what is due in the caller's thread."""
        now = self._monotonic()
        due = self._pop_due(now)
        self._pending += self._take_jobs(due, final=False)
        self._reschedule(due, now)
        rows = sum(j.rows for j in self._pending)
        if self._pending and (flush or rows >= self.max_batch or
                              now >= self._pending[0].due_wall + self.cfg.max_wait_s):
            jobs, self._pending = self._pending, []
            self._score_now(jobs)
            return rows
        return 0

    def _score_now(self, jobs: list[Job], deadline: float | None = None) -> None:
        """Score jobs in this thread once their streams have nothing in flight (order)."""
        if deadline is None:
            deadline = time.monotonic() + self._close_timeout_s
        self._infer.wait_streams({j.stream for j in jobs}, deadline)
        self._score_jobs(jobs)

    # ---- the policy --------------------------------------------------------------------
    def _admit(self, streams: list[HubStream], now: float) -> list[Job]:
        """Pack the due windows of ``streams``, shedding those that would miss the budget."""
        budget = self.cfg.latency_budget_s
        if not budget:
            return self._take_jobs(streams, final=False)
        ahead = sum(j.rows for j in self._pending) + self._infer.rows_out
        jobs = []
        for s in streams:
            due = s.next_due() if s.cfg.live else None
            shed = due is not None and now - due + self._wait_s(ahead) > budget
            try:
                job = s.shed("overload") if shed else s.take(final=False)
            except Exception as e:  # this stream's problem only
                log.error("hub: stream %s: %s: %s", s.name, type(e).__name__, e)
                job = None
            if job is not None:
                job.t_admit, job.ahead = now, ahead
                ahead += job.rows
                jobs.append(job)
        return jobs

    def _wait_s(self, ahead_rows: int) -> float:
        """Expected seconds from now until a window queued behind ``ahead_rows`` is
        scored: the measured cost of the rows ahead over the inference threads plus one
        call, or, if longer, the rows ahead at the rate queues have drained lately (the
        model cannot see a busy machine, the GIL or other processes; the drain rate can)."""
        model = 0.0
        if self.cost is not None:
            model = (self.cost.row_s() * ahead_rows / self.workers
                     + self.cost.call_s(self.target_batch))
        return max(model, self._drain_s * (ahead_rows + 1))

    def _observe_delay(self, jobs: list[Job], t_done: float) -> None:
        """A batch was scored: its jobs that waited behind a queue tell how fast queued
        windows drain (seconds per window ahead). The running estimate takes one step per
        batch (the mean of its jobs' rates: the jobs of one batch share one delay, so one
        stall, a collector pass, must not count twenty times), at once towards slower
        and slowly towards faster: the budget is about the worst windows."""
        rates = [(t_done - j.t_admit) / (j.ahead + j.rows) for j in jobs
                 if j.t_admit and j.ahead >= self.target_batch]
        if rates:
            rate = sum(rates) / len(rates)
            w = DRAIN_UP if rate > self._drain_s else DRAIN_DOWN
            self._drain_s += w * (rate - self._drain_s)

    def _dispatch(self, now: float) -> None:
        """Submit ready batches while an inference thread is free (module docstring)."""
        while self._pending:
            free = self._infer.free()
            if free <= 0:
                return
            ready = [j for j in self._pending if not self._infer.busy(j.stream)]
            if not ready:
                return
            rows = sum(j.rows for j in ready)
            oldest = min(j.due_wall for j in ready)
            if rows < self.target_batch and now < oldest + self.cfg.max_wait_s:
                return
            per_call = min(self.max_batch, max(self.target_batch, math.ceil(rows / free)))
            batch, n = [], 0
            for j in ready:
                if batch and n + j.rows > per_call:
                    break
                batch.append(j)
                n += j.rows
            taken = {id(j) for j in batch}
            self._pending = [j for j in self._pending if id(j) not in taken]
            self._infer.submit(batch)
