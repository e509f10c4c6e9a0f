"""How a session hands out results: exactly once, through one channel per stream.

* ``on_result`` set: every result goes to the callback, in order, on a delivery thread
  (dispatch.py), never under a lock of the session or its hub;
* else, when a worker scores the stream (``Session.start()``, or any hub stream): every
  result goes to ``results()`` (bounded: when nobody reads, the oldest are dropped and
  counted as ``result_queue_full``);
* else (a session driven by the caller): the return value of the call that scored it
  (``advance()``, ``finish()``, ``close()``).

So the return values hold exactly the results that went nowhere else: ``[]`` when a
callback or ``results()`` took them. A callback's exception (any ``BaseException``) is
counted in ``callback_errors``; ``SystemExit`` / ``KeyboardInterrupt`` also stop the
session, and the owner's next call (``push``, ``advance``, ``close``...) re-raises it.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Iterator

from .absent import annotate as annotate_absent
from .dispatch import DeliveryPool, Outbox
from .session_config import SessionError
from .sinks import Result
from .spec import MODALITIES

log = logging.getLogger("hrlf.runtime.session")

INTERRUPTS = (KeyboardInterrupt, SystemExit)
RESULTS_QUEUE_MAX = 1000
#: guards the first use of a stream's results() queue (made then: a hub of thousands of
#: callback streams would otherwise keep a queue, its lock and three conditions each, which
#: every full pass of Python's collector walks)
_QUEUE_MADE = threading.Lock()


class Closed(list):
    """What ``close()`` returns (``Session``, hub streams, ``Hub``, ``hub.remove()``).

    A list of the results handed out by this call (empty when ``on_result`` or
    ``results()`` took them, and on a second close), with:

    Attributes:
        stats: the final ``stats()`` (a Hub: its totals).
        timed_out: close() gave up waiting (a worker, the backend or a callback did not
            finish within its ``timeout_s``); what was left is counted in ``stats``
            (``segments_dropped.close_timeout``, ``dropped.close_timeout``).
    """

    def __init__(self, results=(), stats: dict | None = None, timed_out: bool = False):
        super().__init__(results)
        self.stats = stats if stats is not None else {}
        self.timed_out = timed_out


class Delivery:
    """Mixin of :class:`~hrlf.runtime.session.Session`: delivery and the worker thread."""

    _outbox: Outbox | None = None
    _own_pool: DeliveryPool | None = None
    _interrupt: BaseException | None = None
    #: metrics and the live page (hrlf.runtime.observe): sees every result handed out
    observer = None

    def _reasons(self, k: int) -> list[str]:
        end = k * self.hop_s + self.window_s
        reasons = {r for t, r in self._notes if t < end}  # until data comes back
        for hook in self.reason_hooks:
            try:
                reasons.update(str(r) for r in hook())
            except Exception as e:  # a source's hook must not stop the stream
                log.warning("reason hook %r failed: %s: %s", hook, type(e).__name__, e)
                reasons.add("reason_hook_failed")
        return ["no_frames"] + sorted(reasons)

    def _result_times(self, k: int) -> tuple[float, float]:
        t0 = self.timebase.origin + k * self.hop_s
        return t0, t0 + self.window_s

    def _no_data_result(self, item, reasons: list[str]) -> Result:
        k, due_wall, _ = item
        wait = max(0.0, self._monotonic() - due_wall) * 1e3
        t0, t1 = self._result_times(k)
        r = Result(segment=k, t_start=t0, t_end=t1, score=None, label=None, modalities=[],
                   frames={m: 0 for m in MODALITIES},
                   latency_ms={"wait": wait, "pack": 0.0, "infer": 0.0, "total": wait},
                   backend=self.backend.name, batch=0, status="no_data", reasons=reasons)
        with self.acct.lock:
            self.acct.no_data += 1
        return r

    # ---- the one channel ---------------------------------------------------------------
    @property
    def delivery(self) -> str:
        """Where results go: ``callback``, ``results`` or ``return`` (module docstring)."""
        if self.on_result is not None:
            return "callback"
        return "results" if self._queued() else "return"

    def _queued(self) -> bool:
        return self._thread is not None

    def _hand_out(self, results: list[Result]) -> list[Result]:
        """Deliver results through the stream's channel; returns those left to return."""
        if not results:
            return results
        for r in results:
            annotate_absent(self, r)  # every result says why it lacks a modality
        if self.observer is not None:
            self.observer.seen(self, results)
        mode = self.delivery
        if mode == "return":
            return results
        for r in results:
            if mode == "callback":
                self._outbox_for_callback().put(r)
            else:
                self._put(r)
        return []

    def _outbox_for_callback(self) -> Outbox:
        box = self._outbox
        if box is None:
            with self._lock:
                if self._outbox is None:
                    self._outbox = self._make_outbox()
                box = self._outbox
        return box

    def _make_outbox(self) -> Outbox:
        """A one-thread pool of the session's own (hub streams share the hub's)."""
        self._own_pool = DeliveryPool("hrlf-session-cb", max_threads=1)
        return self._own_pool.outbox(self._call_back, self._undelivered)

    def _undelivered(self, reason: str, n: int) -> None:
        with self.acct.lock:
            self.acct.segments_dropped[reason] += n

    def _call_back(self, r: Result) -> None:
        """Run on a delivery thread: the user's callback, every exception counted."""
        cb = self.on_result
        if self._failure is not None or cb is None:
            self._undelivered("session_stopped", 1)
            return
        try:
            cb(r)
        except BaseException as e:  # noqa: BLE001 - the user's code: counted, policy applied
            self._callback_failed(e)

    def _callback_failed(self, e: BaseException) -> None:
        first = (str(e).splitlines() or [""])[0]
        what = f"on_result raised {type(e).__name__}{': ' + first if first else ''}"
        if isinstance(e, INTERRUPTS):
            log.error("session stopped: %s; the next call re-raises it", what)
            self._interrupt = e
            self._fail(SessionError(f"session: {what}; the session stopped"), e)
        elif self.cfg.on_callback_error == "stop":
            log.error("session stopped: %s", what)
            self._fail(SessionError(f"session: {what}; fix the callback (the session stopped "
                                    "because on_callback_error='stop')"), e)
        else:
            n = self._count_callback_error()
            if n == 1 or n % 1000 == 0:
                log.warning("%s (callback error %d; the stream goes on, counted as "
                            "callback_errors)", what, n)
            return
        # counted after the stop: whoever sees the count (stats(), a test waiting on it)
        # finds the session already stopped, never a call slipped in between
        self._count_callback_error()

    def _count_callback_error(self) -> int:
        with self.acct.lock:
            self.acct.callback_errors += 1
            return self.acct.callback_errors

    def _raise_failure(self) -> None:
        """Raise what stopped the session: a callback's interrupt once, then the error."""
        e, self._interrupt = self._interrupt, None
        if e is not None:
            raise e
        if self._failure is not None:
            raise self._failure

    def _fail(self, err: SessionError, cause: BaseException | None) -> None:
        err.__cause__ = cause
        with self._lock:
            if self._failure is None:
                self._failure = err
            self._stop = True
            self._wake.notify_all()

    def _queue(self) -> queue.Queue:
        """The results() queue, made on first use."""
        q = self._results
        if q is None:
            with _QUEUE_MADE:
                if self._results is None:
                    self._results = queue.Queue(maxsize=RESULTS_QUEUE_MAX)
                q = self._results
        return q

    def _put(self, item) -> None:
        """Queue a result (or the end marker); when full, drop the oldest, counted."""
        q = self._queue()
        while True:
            try:
                q.put_nowait(item)
                return
            except queue.Full:
                try:
                    old = q.get_nowait()
                    if old is not None:
                        self._undelivered("result_queue_full", 1)
                except queue.Empty:
                    pass

    def _close_outbox(self, timeout_s: float) -> bool:
        """Wait (bounded) for the callback to take the queued results; False: timed out."""
        ok = True
        if self._outbox is not None:
            ok = self._outbox.close(timeout_s)
            if not ok:
                log.warning("close(): on_result did not take the last results within %.3g s; "
                            "they were dropped (segments_dropped.close_timeout)", timeout_s)
        if self._own_pool is not None:
            self._own_pool.stop()
        return ok

    # ---- background worker -------------------------------------------------------------
    def start(self, poll_s: float = 0.005) -> "Delivery":
        """Score due windows on a background thread; results go to on_result/results()."""
        with self._lock:
            self._check_open("start")
            if self._thread is None:
                self.clock()
                self._thread = threading.Thread(target=self._work, args=(poll_s,), daemon=True,
                                                name="hrlf-session")
                self._thread.start()
        return self

    def _work(self, poll_s: float) -> None:
        while True:
            with self._lock:
                if self._stop:
                    break
                self._wake.wait(timeout=poll_s)
            try:
                self._emit(final=False)
            except Exception as e:  # a bug (backend failures are counted drops): stop
                log.error("session worker failed: %s: %s", type(e).__name__, e)
                self._fail(SessionError(f"session: scoring failed ({type(e).__name__}: {e}); "
                                        "see the log, then create a new Session"), e)
                break

    def results(self, timeout_s: float | None = None) -> Iterator[Result]:
        """Results in order until close(); ``timeout_s`` ends the iteration when idle."""
        q = self._queue()
        while True:
            try:
                r = q.get(timeout=timeout_s if timeout_s is not None else 0.05)
            except queue.Empty:
                if self.closed or timeout_s is not None:
                    return
                continue
            if r is None:
                return
            yield r
