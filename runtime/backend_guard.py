"""Backend calls that fail without stopping a stream: counted, logged, and (for outages)
a short pause before the next try, so that a dead server costs one timeout, not one per
window.

A remote backend (``triton``) retries a call whose connection broke or timed out on its
own, within its deadline (``timeout_s``), then raises :class:`BackendUnavailable`. What
the guard does with a failure:

* ``BackendUnavailable`` / ``ArtifactError`` (the server is gone, or serves another model):
  an *outage*. The call's windows are lost (the caller counts them as
  ``segments_dropped.backend_error``), and for the next ``retry_after_s`` calls fail at
  once without touching the backend; then one call tries again (and reconnects). Every
  stream of a hub shares this: a dead server costs one timeout in total.
* any other exception (a row the model cannot score): a failed call; a hub retries its
  rows stream by stream, so only the stream that caused it loses windows.

The policy (``on_backend_error``) decides what a failure means for the stream:
``continue`` (default: count, log, go on) or ``stop`` (the session stops; its next call
raises ``SessionError``; ``hrlf-run`` prints the summary and exits 1).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import numpy as np

from hrlf.runtime.errors import ArtifactError, BackendUnavailable

log = logging.getLogger("hrlf.runtime.backend")

class BackendFailed(Exception):
    """A backend call failed (``outage``: the backend as a whole, not these rows)."""

    def __init__(self, message: str, outage: bool):
        super().__init__(message)
        self.outage = outage


class BackendGuard:
    """Runs a backend and turns its failures into :class:`BackendFailed`.

    Args:
        backend: the backend.
        retry_after_s: after an outage, calls fail at once for this long.
        monotonic: clock (injectable for tests).
    """

    def __init__(self, backend, retry_after_s: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic):
        self.backend, self.retry_after_s, self._monotonic = backend, retry_after_s, monotonic
        self._lock = threading.Lock()
        self.open_until = -float("inf")
        self.failures = 0  # failed calls (including those failed at once during an outage)
        self.outages = 0
        self._down = False
        self.last_error = ""
        self._last_kind = ""  # the exception type of the last failure (a new kind is logged)
        self.on_call = None  # metrics (hrlf.runtime.observe): called with each call's windows

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Scores for the batch, one per row.

        Raises:
            BackendFailed: the call failed, or an outage is in its pause.
        """
        n = len(next(iter(feeds.values())))
        with self._lock:
            if self._monotonic() < self.open_until:
                self.failures += 1
                raise BackendFailed(f"backend unavailable ({self.last_error}); retrying "
                                    f"within {self.retry_after_s:g} s", outage=True)
        try:
            scores = np.asarray(self.backend.run(feeds), np.float32).reshape(-1)
            if len(scores) != n:
                raise RuntimeError(f"backend returned {len(scores)} scores for {n} windows")
        except Exception as e:  # noqa: BLE001 - a backend failure becomes counted drops
            outage = isinstance(e, (BackendUnavailable, ArtifactError))
            self._failed(e, n, outage)
            raise BackendFailed(self.last_error, outage) from e
        if self._down:
            with self._lock:
                self._down = False
            log.warning("backend %s is back after %d failed calls", self.backend.name,
                        self.failures)
        if self.on_call is not None:
            self.on_call(n)
        return scores

    def _failed(self, e: Exception, n: int, outage: bool) -> None:
        msg = (str(e).splitlines() or [type(e).__name__])[0][:300]
        with self._lock:
            self.failures += 1
            self.last_error = msg
            first = (self.failures == 1 or (outage and not self._down)
                     or type(e).__name__ != self._last_kind)  # a new kind of failure
            self._last_kind = type(e).__name__
            if outage:
                self.open_until = self._monotonic() + self.retry_after_s
                self.outages += first
                self._down = True
        if first or self.failures % 100 == 0:
            log.warning("backend call of %d windows failed (%s: %s); windows dropped as "
                        "backend_error%s", n, type(e).__name__, msg,
                        f", next try in {self.retry_after_s:g} s" if outage else "")

    def stats(self) -> dict:
        with self._lock:
            return {"failures": self.failures, "outages": self.outages, "down": self._down,
                    "last_error": self.last_error}
