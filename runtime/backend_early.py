"""The backend opened on a thread while the source opens (a shorter cold start).

Loading an ONNX Runtime session (about 15 ms for the demo model) mostly runs in C++ with
the GIL released, and opening a source is Python (the demo's generator) or waiting on a
device or a server (capture sources): side by side, the first result comes sooner
(``bench/coldstart.py``). The backend's batch sizes depend on whether the source is live,
so it is opened early only where the URI's kind says that in advance
(:func:`live_of_scheme`); :meth:`EarlyBackend.take` checks it against the opened source and
reopens when they differ.
"""
from __future__ import annotations

import threading

#: kinds whose liveness is known before they open: the world paces camera, mic, rtsp
LIVE_SCHEMES = frozenset({"camera", "mic", "rtsp"})
RECORDED_SCHEMES = frozenset({"demo", "replay", "file"})


def live_of_scheme(scheme: str) -> bool | None:
    """True / False when a source of this kind is always live / never; None: it depends
    (``stdin``, a registered kind)."""
    return True if scheme in LIVE_SCHEMES else False if scheme in RECORDED_SCHEMES else None


class EarlyBackend:
    """``open_fn(max_batch)`` running on a thread from construction on.

    Args:
        open_fn: opens the backend for a largest batch.
        max_batch: the batch it is opened for (the source's liveness guessed from its kind).
    """

    def __init__(self, open_fn, max_batch: int):
        self.open_fn, self.max_batch = open_fn, int(max_batch)
        self._out: tuple = (None, None)
        self._thread = threading.Thread(target=self._run, name="hrlf-open-backend", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._out = (self.open_fn(self.max_batch), None)
        except BaseException as e:  # noqa: BLE001 - handed to the caller by take()
            self._out = (None, e)

    def take(self, max_batch: int):
        """The backend for ``max_batch``: the one opened early when it matches, else a new one
        (the early one closed). Raises what opening it raised."""
        self._thread.join()
        be, err = self._out
        if err is not None:
            raise err
        if int(max_batch) == self.max_batch:
            return be
        be.close()
        return self.open_fn(int(max_batch))

    def discard(self) -> None:
        """The run failed before using it: wait for it and close it (errors ignored)."""
        self._thread.join()
        be, _ = self._out
        if be is not None:
            try:
                be.close()
            except Exception:  # noqa: BLE001 - already failing; the first error is the one
                pass
