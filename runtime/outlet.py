"""``hrlf-run``'s stdout: result lines written by a thread of their own.

The run loop never blocks inside a ``write()`` system call, so a reader that stopped
reading (``hrlf-run | slow_reader``) cannot make it deaf to SIGINT/SIGTERM:

* lines wait in a bounded queue; when it is full the run loop waits for room (a slow
  reader slows a file replay down, nothing is lost), checking for a stop request every
  0.1 s;
* after a stop, lines that find no room are counted, not waited for, and :meth:`drain`
  waits at most ``timeout_s`` for the reader;
* a write that fails (``EPIPE``: the reader went away; ``ENOSPC``: disk full; ``EBADF``:
  stdout closed) is kept in :attr:`error`: the run stops, and every line not written is
  counted in :attr:`lost`.

The CLI then prints the summary on stderr and one ``Error:`` line, and exits 1.
"""
from __future__ import annotations

import errno
import os
import sys
import threading
from collections import deque
from typing import Callable, TextIO

from ..errors import HrlfError

#: Result lines held for a slow reader (a few seconds of any stream).
QUEUE_LINES = 1000


class OutputError(HrlfError):
    """stdout did not take every result (closed, broken pipe, full disk, a stuck reader)."""


class LineWriter:
    """Writes lines to ``stream`` (default: ``sys.stdout`` at the first write) from a
    daemon thread.

    Args:
        stream: a text stream, or None for ``sys.stdout``.
        should_stop: True once the run was asked to stop (then writes never wait).
        max_lines: most lines queued.
    """

    def __init__(self, stream: TextIO | None = None,
                 should_stop: Callable[[], bool] = lambda: False, max_lines: int = QUEUE_LINES):
        self._stream, self.should_stop, self.max_lines = stream, should_stop, max_lines
        self._lines: deque[str] = deque()
        self._cv = threading.Condition()
        self._busy = 0  # lines the thread is writing now
        self._thread: threading.Thread | None = None
        self.error: OSError | None = None
        self.lost = 0
        self.written = 0

    def write(self, line: str) -> None:
        """Queue one line (see the module docstring for when it waits)."""
        with self._cv:
            self._start()
            while (self.error is None and len(self._lines) >= self.max_lines
                   and not self.should_stop()):
                self._cv.wait(0.1)
            if self.error is not None or len(self._lines) >= self.max_lines:
                self.lost += 1
                return
            self._lines.append(line)
            self._cv.notify_all()

    def drain(self, timeout_s: float, abort: Callable[[], bool] = lambda: False) -> bool:
        """Wait until every queued line was written (at most ``timeout_s``, or until
        ``abort()``); lines still queued then are counted in ``lost``. True: all written."""
        import time

        end = time.monotonic() + timeout_s
        with self._cv:
            while ((self._lines or self._busy) and self.error is None and not abort()
                   and time.monotonic() < end):
                self._cv.wait(min(0.1, max(0.0, end - time.monotonic())))
            done = not (self._lines or self._busy) and self.error is None
            self.lost += len(self._lines)
            self._lines.clear()
            return done

    def give_up(self) -> int:
        """Count every line not yet written as lost (the run is over); returns ``lost``."""
        with self._cv:
            self.lost += len(self._lines) + self._busy
            self._lines.clear()
            self._busy = 0  # a write still blocked, if any, is abandoned with its thread
            return self.lost

    def check(self, drained: bool, drain_s: float) -> None:
        """Raise OutputError when a line was not written (after give_up)."""
        if self.error is not None:
            raise OutputError(f"stdout: {describe(self.error)}; {self.lost} result line(s) "
                              "not written (see segments_dropped.output_error)")
        if self.lost:
            why = ("the reader took no output for " + f"{drain_s:g} s after the stop"
                   if not drained else "the output queue was full after the stop")
            raise OutputError(f"stdout: {why}; {self.lost} result line(s) not written (see "
                              "segments_dropped.output_error)")

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, daemon=True, name="hrlf-stdout")
            self._thread.start()

    def _work(self) -> None:
        out = _Out(self._stream if self._stream is not None else sys.stdout)
        while True:
            with self._cv:
                while not self._lines:
                    self._cv.wait()
                batch = list(self._lines)
                self._lines.clear()
                self._busy = len(batch)
                self._cv.notify_all()
            for line in batch:  # one write per line: a line of a JSON result is shorter
                try:             # than PIPE_BUF, so a pipe gets it whole or not at all
                    out.write(line + "\n")
                except (OSError, ValueError) as e:  # ValueError: write to a closed file
                    with self._cv:
                        self.error = e if isinstance(e, OSError) else OSError(errno.EBADF,
                                                                               str(e))
                        self.lost += self._busy + len(self._lines)
                        self._lines.clear()
                        self._busy = 0
                        self._cv.notify_all()
                    return
                with self._cv:
                    self.written += 1
                    self._busy = max(0, self._busy - 1)  # (0 after give_up)
                    if not self._busy:
                        self._cv.notify_all()


class _Out:
    """Where the lines go: a duplicate of the stream's file descriptor, written with
    ``os.write`` (a write blocked on a full pipe then holds no lock that the interpreter
    needs at exit), or the stream itself when it has no descriptor (test runners)."""

    def __init__(self, stream):
        self.stream, self.fd = stream, None
        if stream is None:
            return
        try:
            stream.flush()
            self.fd = os.dup(stream.fileno())
        except (OSError, ValueError, AttributeError):
            self.fd = None

    def write(self, text: str) -> None:
        if self.stream is None:  # the process started with stdout closed
            raise OSError(errno.EBADF, "stdout is closed")
        if self.fd is None:
            self.stream.write(text)
            self.stream.flush()
            return
        data = memoryview(text.encode())
        while data:
            data = data[os.write(self.fd, data):]


def describe(e: OSError) -> str:
    """A one-line reason for a failed stdout write."""
    why = {errno.EPIPE: "the reader went away (broken pipe)",
           errno.ENOSPC: "no space left on the device",
           errno.EBADF: "stdout is closed", errno.EIO: "I/O error"}
    return why.get(e.errno, e.strerror or str(e))
