"""How a session hands out results: the callback (with its error policy), the results()
queue (bounded, drop-oldest, counted) and the background worker."""
from __future__ import annotations

import logging
import queue
import threading
from typing import Iterator

from hrlf.runtime.absent import annotate as annotate_absent
from hrlf.runtime.session_config import SessionError
from hrlf.runtime.sinks import Result
from hrlf.runtime.spec import MODALITIES

log = logging.getLogger("hrlf.runtime.session")


class Delivery:
    """Mixin of :class:`~hrlf.runtime.session.Session`: delivery and the worker thread."""

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
        self._deliver(r)
        return r

    def _deliver(self, r: Result) -> None:
        annotate_absent(self, r)
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
        first = (str(e).splitlines() or [""])[0]
        what = f"on_result raised {type(e).__name__}: {first}"
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
