"""SIGTERM behaves like Ctrl-C (SIGINT) for ``hrlf-train``, ``hrlf-eval`` and ``hrlf-export``.

systemd, docker and batch schedulers stop a process with SIGTERM, whose default action
kills Python without running ``finally`` blocks or removing temp folders. Inside
:func:`handled`, SIGINT and SIGTERM both raise :class:`Interrupted` (a ``KeyboardInterrupt``
that knows its signal), so the same cleanup runs for both, and the command exits with the
shell's convention ``128 + signal`` (130 for SIGINT, 143 for SIGTERM). Inside
:func:`deferred` (a rename that must not be cut in half) a signal is only recorded and
raised when the block ends.

Standard library only.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread when SIGINT or SIGTERM arrives.

    Attributes:
        signum: the signal number.
    """

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_state = {"defer": 0, "pending": None}


def exit_code(e: KeyboardInterrupt) -> int:
    """128 + the signal (a bare KeyboardInterrupt is SIGINT's 130)."""
    return e.exit_code if isinstance(e, Interrupted) else 128 + signal.SIGINT


def signal_name(e: KeyboardInterrupt) -> str:
    return e.name if isinstance(e, Interrupted) else "SIGINT"


def stop(e: KeyboardInterrupt, state: str) -> None:
    """End a command interrupted by ``e``: one log line saying what was kept (the last
    line it writes), then exit with 128 + the signal."""
    from ..runtime import logs

    logs.tool_log().warning("Interrupted by %s: %s", signal_name(e), state,
                            extra=logs.fields(signal=signal_name(e)))
    raise SystemExit(exit_code(e))


def _handler(signum, frame):
    if _state["defer"]:
        _state["pending"] = _state["pending"] or signum
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Route SIGINT and SIGTERM to :class:`Interrupted` inside the block (main thread only;
    elsewhere, e.g. a worker thread, the block runs with the handlers as they are)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def deferred(reraise: bool = True) -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block ends (a signal during it is raised after it,
    or, with ``reraise=False``, dropped: the block was the last step of the work)."""
    _state["defer"] += 1
    try:
        yield
    finally:
        _state["defer"] -= 1
        if not _state["defer"]:
            signum, _state["pending"] = _state["pending"], None
            if signum is not None and reraise:
                raise Interrupted(signum)
