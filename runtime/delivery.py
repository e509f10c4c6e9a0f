"""How a session hands out results: the callback (with its error policy), the results()
queue (bounded, drop-oldest, counted) and the background worker."""
from __future__ import annotations

import logging
import queue
import threading
from typing import Iterator

from hrlf.runtime.session_config import SessionError
from hrlf.runtime.sinks import Result

log = logging.getLogger("hrlf.runtime.session")


class Delivery:
    """Mixin of :class:`~hrlf.runtime.session.Session`: delivery and the worker thread."""

    def _deliver(self, r: Result) -> None:
        if self.on_result is not None:
            if self._failure is not None:
                return
            try:
                self.on_result(r)
            except Exception as e:  # the user's callback: count, report, apply the policy
                self._callback_failed(e)
        elif self._thread is not None:
            self._put(r)

    def _callback_failed(self, e: Exception) -> None:
        with self.acct.lock:
            self.acct.callback_errors += 1
            n = self.acct.callback_errors
        what = f"on_result raised {type(e).__name__}: {e}"
        if self.cfg.on_callback_error == "stop":
            log.error("session stopped: %s", what)
            self._fail(SessionError(f"session: {what}; fix the callback (the session stopped "
                                    "because on_callback_error='stop')"), e)
        elif n == 1 or n % 1000 == 0:
            log.warning("%s (callback error %d; the stream goes on, counted as "
                        "callback_errors)", what, n)

    def _fail(self, err: SessionError, cause: BaseException) -> None:
        err.__cause__ = cause
        with self._lock:
            if self._failure is None:
                self._failure = err
            self._stop = True
            self._wake.notify_all()

    def _put(self, item) -> None:
        """Queue a result (or the end marker); when full, drop the oldest, counted."""
        while True:
            try:
                self._results.put_nowait(item)
                return
            except queue.Full:
                try:
                    old = self._results.get_nowait()
                    if old is not None:
                        with self.acct.lock:
                            self.acct.segments_dropped["result_queue_full"] += 1
                except queue.Empty:
                    pass

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
            except Exception as e:  # a backend failure: stop, and tell the next caller
                log.error("session worker failed: %s: %s", type(e).__name__, e)
                self._fail(SessionError(f"session: scoring failed ({type(e).__name__}: {e}); "
                                        "see the log, then create a new Session"), e)
                break

    def results(self, timeout_s: float | None = None) -> Iterator[Result]:
        """Results in order until close(); ``timeout_s`` ends the iteration when idle."""
        while True:
            try:
                r = self._results.get(timeout=timeout_s if timeout_s is not None else 0.05)
            except queue.Empty:
                if self.closed or timeout_s is not None:
                    return
                continue
            if r is None:
                return
            yield r
