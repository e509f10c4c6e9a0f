"""How a session ends: ``close()`` is idempotent and bounded, and hands out the last
results through the stream's one channel (delivery.py); and what a failed backend call
means for a stream (``on_backend_error``)."""
from __future__ import annotations

import logging
import threading
import time

from hrlf.runtime.backend_guard import BackendFailed
from hrlf.runtime.delivery import Closed
from hrlf.runtime.session_config import CLOSE_TIMEOUT_S, SessionError
from hrlf.runtime.sinks import Result

log = logging.getLogger("hrlf.runtime.session")


class Closing:
    """Mixin of :class:`~hrlf.runtime.session.Session`: the end of a stream."""

    def _backend_failed(self, n: int, e: BackendFailed) -> None:
        """A backend call failed: its ``n`` windows are lost (counted); policy applies."""
        with self.acct.lock:
            self.acct.segments_dropped["backend_error"] += n
        if self.cfg.on_backend_error == "stop":
            self._fail(SessionError(f"session: backend failed ({e}); the session stopped "
                                    "because on_backend_error='stop'"), e)

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> Closed:
        """Stop the worker, score the remaining windows, deliver them, and end results().

        Idempotent (a second call returns at once), bounded: waits at most ``timeout_s`` in
        total for the worker, the last backend calls and the callback; what is left then
        is dropped and counted (``close_timeout``) and ``timed_out`` says so. Never waits on
        a ``results()`` reader. Called from inside ``on_result`` it returns at once; the
        last results follow when the callback returns.

        Returns:
            the results handed out by this call (only when neither ``on_result`` nor
            ``results()`` takes them), with ``.stats`` and ``.timed_out``.

        Raises:
            SessionError: what stopped the session, if anything did (after cleaning up);
                a callback's ``SystemExit``/``KeyboardInterrupt`` is re-raised as itself.
        """
        deadline = time.monotonic() + max(0.0, float(timeout_s))
        if not self._begin_close():
            return Closed([], self.stats())
        return self._end_close(deadline)

    def _end_close(self, deadline: float) -> Closed:
        """The rest of close() once new frames are refused (``_begin_close``)."""
        out: list[Result] = []
        try:
            timed_out = not self._join_worker(deadline)
            if timed_out or time.monotonic() >= deadline:
                timed_out = True
                self._abandon("close_timeout")
            elif self._failure is None:
                out = self.finish()
            timed_out |= not self._close_outbox(deadline - time.monotonic())
        finally:
            with self._lock:
                self.closed = True
                why = "session_stopped" if self._failure is not None else "unscored_at_close"
                for b in self.buffers.values():  # nothing can use them any more
                    if len(b):
                        b._release(len(b), why)  # unused ones counted (normally none)
                    b.free()
            if self.delivery == "results":
                self._put(None)
            self.backend.close()
            if self.observer is not None:  # its counts join the metrics' totals
                self.observer.closed(self)
        if self._failure is not None:
            self._raise_failure()
        return Closed(out, self.stats(), timed_out)

    def _begin_close(self) -> bool:
        """Refuse new frames and stop the worker; False when already closing/closed."""
        with self._lock:
            if self._closing or self.closed:
                return False
            self._closing = self._stop = True
            self._wake.notify_all()
            return True

    def _join_worker(self, deadline: float) -> bool:
        th = self._thread
        if th is not None and th is not threading.current_thread():
            th.join(max(0.0, deadline - time.monotonic()))
            return not th.is_alive()
        return True

    def _abandon(self, reason: str) -> None:
        """Give up the frames still buffered (close timed out): dropped with ``reason``."""
        with self._lock:
            for b in self.buffers.values():
                b._release(len(b), reason)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # an exception is already on its way: do not replace it with close()'s
            self.close()
        except Exception as e:  # noqa: BLE001
            log.error("close() while handling %s: %s", exc_type.__name__, e)
