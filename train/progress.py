"""Progress of long stages: a bar on a terminal, log lines anywhere else.

On a terminal (stderr a TTY, text logs) a stage shows a tqdm bar with its ETA. Written to a
file, a pipe or a log collector (``--log-format json``) a bar would be kilobytes of
carriage returns, so there a stage is one log line when it ends (plus one a minute while
it runs, for long stages), e.g. ``hrlf-train INFO teacher ep 34 val 0.812: 204/204 steps
in 7.3 s``. An interrupted stage ends its bar and writes nothing more, so that the
interruption message stays the last line.
"""
from __future__ import annotations

import contextlib
import logging
import time

from ..runtime import logs

log = logging.getLogger("hrlf.train")
#: seconds between the lines of a long stage without a terminal
EVERY_S = 60.0


class LineProgress:
    """The tqdm calls the training code makes, as log lines."""

    def __init__(self, total: int, desc: str, unit: str):
        self.total, self.desc, self.unit, self.n = total, desc, unit, 0
        self.postfix: dict = {}
        self.t0 = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= EVERY_S:
            self.last = time.monotonic()
            self._line("running")

    def set_postfix(self, postfix: dict, refresh: bool = False) -> None:
        self.postfix = dict(postfix)

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def _line(self, how: str) -> None:
        extra = ", ".join(f"{k} {v}" for k, v in self.postfix.items())
        log.info("%s: %d/%d %ss %s %.1f s%s", self.desc, self.n, self.total, self.unit,
                 "in" if how == "done" else "so far,", time.monotonic() - self.t0,
                 f" ({extra})" if extra else "",
                 extra=logs.fields(stage=self.desc, done=self.n, total=self.total,
                                   unit=self.unit, seconds=round(time.monotonic() - self.t0, 2),
                                   state=how))

    def close(self) -> None:
        self._line("done")


@contextlib.contextmanager
def progress(enabled: bool, total: int, desc: str, unit: str):
    """A progress reporter for one stage (None when disabled); closed on exit, silently
    when the stage was interrupted."""
    if not enabled:
        yield None
        return
    if logs.interactive():
        from tqdm import tqdm  # stderr by default

        bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)
    else:
        bar = LineProgress(total, desc, unit)
    try:
        yield bar
    except BaseException:
        if not isinstance(bar, LineProgress):
            bar.close()  # ends the bar's line; nothing is drawn after the caller's message
        raise
    bar.close()


class Stages:
    """One log line as each stage of a command starts (with the time the previous one
    took), and one when the command is done: ``hrlf-eval INFO plots: ...``."""

    def __init__(self, logger: logging.Logger = log):
        self.log, self.t0 = logger, time.monotonic()
        self.t, self.name = self.t0, None

    def elapsed(self) -> float:
        """Seconds since the first stage (or the Stages) began."""
        return time.monotonic() - self.t0

    def _close(self) -> dict:
        now = time.monotonic()
        out = {"previous": self.name, "previous_s": round(now - self.t, 2)} if self.name else {}
        self.t = now
        return out

    def start(self, what: str) -> None:
        self.log.info("%s …", what, extra=logs.fields(stage=what, **self._close()))
        self.name = what

    @contextlib.contextmanager
    def beating(self, every_s: float = 20.0):
        """While the block runs, a "still running" line every ``every_s`` seconds (for one
        long, opaque call); stopped when the block ends, also by an exception."""
        import threading

        stop = threading.Event()

        def beat():
            while not stop.wait(every_s):
                self.log.info("%s: still running (%.0f s)", self.name, time.monotonic() - self.t,
                              extra=logs.fields(stage=self.name, state="running"))

        th = threading.Thread(target=beat, daemon=True, name="hrlf-progress")
        th.start()
        try:
            yield
        finally:
            stop.set()
            th.join()

    def done(self, what: str) -> None:
        prev = self._close()
        total = round(time.monotonic() - self.t0, 1)
        self.log.info("%s (%.1f s in all)", what, total,
                      extra=logs.fields(stage="done", seconds=total, **prev))
        self.name = None
