"""The run loop behind ``hrlf-run``: source -> session -> sink, with pacing and stats.

Stopping: SIGINT (Ctrl-C) and SIGTERM (systemd, docker) do the same thing under
:func:`stop_on_signals`: the loop stops reading, the last windows are flushed, the summary
is printed, and the command exits 0. The flush is bounded (by the frames buffered, the
backend's timeout and ``drain_s`` for the output); a second signal during it is reported
and ignored, a third aborts it (the summary is still printed).

The run also stops (then flushes and prints the summary) when the output fails (stdout
closed, a broken pipe, a full disk: ``output.error``) or the session stops
(``on_backend_error="stop"``: ``failure``); the CLI turns either into one ``Error:`` line.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import threading
import time
from collections import deque
from typing import Callable, Iterator, TextIO

from hrlf.runtime import logs
from hrlf.runtime.absent import annotate_source
from hrlf.runtime.errors import InputError
from hrlf.runtime.session import Session, SessionError
from hrlf.runtime.sinks import Result, format_result, stats_line
from hrlf.runtime.sources import Source, Status
from hrlf.runtime.spec import ModelSpec

PACES = ("auto", "realtime", "fast")


def check_featurizers(source: Source, spec: ModelSpec) -> None:
    """Refuse a model whose spec names other featurizers than the stream provides."""
    for m, name in (getattr(source, "featurizers", None) or {}).items():
        want = spec.features[m].featurizer if m in spec.features else None
        if want is not None and name != want:
            raise InputError(f"{source.uri}: provides {m} features from '{name}' but the model "
                             f"expects '{want}'; use a model trained on this stream's "
                             "featurizers (hrlf-train --data clips.csv) or a matching source")


class Runner:
    """Drives one source through one session until EOS, ``duration_s`` or interrupt.

    Args:
        source: an opened source.
        session: the session (its config decides live vs data deadlines).
        write: called with each output line (None: :meth:`results` yields the results).
        fmt: ``jsonl`` or ``text``.
        pace: ``realtime`` replays non-live sources at their timestamps; ``fast`` as fast
            as possible; ``auto`` is realtime for the demo and live sources, else fast.
        duration_s: stop after this many stream seconds (None: until the source ends).
        stats_every_s: seconds between stats lines (0: never).
        log: where stats lines and the summary go: a text file, or None for the log
            records of :mod:`hrlf.runtime.logs` (hrlf-run's format, text or JSON).
        output: the LineWriter behind ``write`` (outlet.py), if any: its errors stop the
            run, and the end waits at most ``drain_s`` for it.
    """

    def __init__(self, source: Source, session: Session,
                 write: Callable[[str], None] | None = None, fmt: str = "jsonl",
                 pace: str = "fast", duration_s: float | None = None,
                 stats_every_s: float = 5.0, log: TextIO | None = None, output=None,
                 drain_s: float = 5.0):
        self.source, self.session, self.write, self.fmt = source, session, write, fmt
        self.pace, self.duration_s, self.stats_every_s = pace, duration_s, stats_every_s
        self.log = log
        self._out: deque = deque()  # results for results() when there is no writer
        self.truth = getattr(source, "truth", None)
        self.pairs: list[tuple[float, float]] = []
        self.stop_signal: int | None = None  # set by request_stop (a signal handler)
        self.flushing = False
        self.output, self.drain_s = output, drain_s
        self.failure: SessionError | None = None  # the session stopped (its policy)
        self.aborted = False  # a third signal cut the final flush short
        self.drained = True
        self.observer = None  # metrics and the live page (hrlf.runtime.observe)
        self.heartbeat = time.monotonic()  # the loop's last step (/healthz)
        self.last_summary: dict | None = None  # the final stats, once summary() ran
        hook = getattr(source, "status_reasons", None)  # capture sources: why data is absent
        if callable(hook):
            session.reason_hooks.append(hook)

    def request_stop(self, signum: int) -> None:
        """Ask the loop to stop at its next step (safe from a signal handler)."""
        self.stop_signal = signum

    def _say(self, msg: str, level: int = logging.INFO, text: str | None = None,
             **fields) -> None:
        """A log line: to ``log`` when given (a file), else a record in hrlf-run's format."""
        if self.log is not None:
            print(text if text is not None else msg, file=self.log, flush=True)
            return
        extra = logs.fields(**fields)
        if text is not None:
            extra["text"] = text
        logs.tool_log().log(level, msg, extra=extra)

    def _emit(self, results: list[Result]) -> None:
        for r in results:
            annotate_source(r, self.source)
            if getattr(self.source, "words_enabled", False):  # --words
                r.extra["words"] = self.source.words(r.t_start, r.t_end)
            if self.truth is not None and r.score is not None:
                y = self.truth(r.t_start, r.t_end)
                if y is not None:
                    r.extra["truth"] = round(y, 6)
                    self.pairs.append((r.score, y))
            if self.write is not None:
                self.write(format_result(r, self.fmt))
            else:
                self._out.append(r)
        if results and self.observer is not None:
            self.observer.seen(self.session, results)

    def _drain(self) -> Iterator[Result]:
        while self._out:
            yield self._out.popleft()

    def _go_on(self) -> bool:
        return (self.stop_signal is None and self.failure is None
                and (self.output is None or self.output.error is None))

    def run(self) -> dict:
        """Run to the end, writing each result; returns the summary (also logged)."""
        for _ in self.results():
            pass
        return self.summary()

    def results(self) -> Iterator[Result]:
        """Run to the end (EOS, ``duration_s`` or a stop request), yielding each result
        (with a ``write`` callback, the results are written instead and nothing is
        yielded); the source is closed and the session flushed at the end."""
        s, src = self.session, self.source
        wall0 = time.monotonic()
        last_stats = wall0
        try:
            while self._go_on():
                self.heartbeat = time.monotonic()
                res = src.read(0.02)
                self._count_source_drops(res.drops)
                done = self._push_events(res.events, wall0)
                yield from self._drain()
                if done:
                    break
                self._emit(s.advance())
                yield from self._drain()
                if res.status == Status.EOS:
                    break
                if src.live and self.duration_s is not None and s.clock() >= self.duration_s:
                    break
                now = time.monotonic()
                if self.stats_every_s and now - last_stats >= self.stats_every_s:
                    st = s.stats()
                    self._say(stats_line(st), stats=st)
                    last_stats = now
        except KeyboardInterrupt:  # outside stop_on_signals (a library caller)
            self.stop_signal = signal.SIGINT
        except SessionError as e:  # the session stopped itself (on_backend_error="stop")
            self.failure = e
        finally:
            src.close()
        if self.stop_signal:  # 0: a library caller's close()
            name = signal.Signals(self.stop_signal).name
            self._say(f"{name}: stopping; flushing the last windows", signal=name)
        self.flushing = True
        try:
            self._finish()
        except KeyboardInterrupt:  # a third signal: give up the flush, keep the summary
            self.aborted = True
        yield from self._drain()

    def _finish(self) -> None:
        """Score and write the last windows (bounded), then wait for the reader."""
        try:
            self._emit(self.session.close())
        except SessionError as e:
            self.failure = self.failure or e
        if self.output is not None:
            self.drained = self.output.drain(self.drain_s, abort=lambda: self.aborted)

    def _count_source_drops(self, drops) -> None:
        s = self.session
        for d in drops:
            with s.acct.lock:
                s.acct.source_drops[d.reason] += d.count
            if self.source.live:  # shown in the reasons of no_data lines
                s.note(d.reason)

    def _push_events(self, events, wall0: float) -> bool:
        """Push a chunk of events; True when --duration was reached (the rest counted)."""
        s = self.session
        paced = self.pace == "realtime" and not self.source.live
        for i, e in enumerate(events):
            t = _num(e.t)
            last = s.last_time
            if (self.duration_s is not None and t >= self.duration_s
                    and (last is None or t - last <= s.cfg.max_jump_s)):  # not a clock glitch
                with s.acct.lock:  # read but never pushed: counted, not lost
                    s.acct.source_drops["past_duration"] += len(events) - i
                return True
            if paced:
                self._pace(t, wall0)
            if self.stop_signal is not None:
                with s.acct.lock:
                    s.acct.source_drops["after_stop"] += len(events) - i
                return True
            s.push(e.modality, e.t, e.x)
            if not self.source.live and s.ready():  # file sources: never overflow a buffer
                self._emit(s.advance())
        return False

    def _pace(self, t: float, wall0: float) -> None:
        """Sleep until stream time ``t``, in short steps (a stop request ends the wait).
        A frame beyond the clock-jump horizon is not waited for (the session drops it)."""
        delay = wall0 + t - time.monotonic()
        if not (0 < delay <= self.session.cfg.max_jump_s):
            return
        self._emit(self.session.advance())
        end = time.monotonic() + delay
        while self.stop_signal is None and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))

    def final_stats(self) -> dict:
        """The session's stats, the source's, and the scores against the truth (if known)."""
        st = self.session.stats()
        lost = self.output.give_up() if self.output is not None else 0
        if lost:  # scored, never written
            st["segments_dropped"]["output_error"] = lost
        src_stats = getattr(self.source, "stats", None)
        if callable(src_stats):
            st["source"] = src_stats()
        if self.pairs:
            from hrlf.runtime.metrics import regression_metrics

            import numpy as np
            p = np.array(self.pairs)
            st["vs_truth"] = {k: round(v, 4) for k, v in regression_metrics(p[:, 0], p[:, 1]).items()
                              if k in ("mae", "corr", "acc2", "f1", "n")}
        return st

    def summary(self) -> dict:
        """:meth:`final_stats`, logged as a stats line and one JSON ``summary`` line."""
        st = self.last_summary = self.final_stats()
        self._say(stats_line(st), stats=st)
        self._say("summary", text=json.dumps({"summary": st}), summary=st)
        return st


def _num(t) -> float:
    """A source timestamp as a float for pacing and --duration (NaN when it is none)."""
    try:
        return float(t)
    except (TypeError, ValueError, OverflowError):
        return math.nan


@contextlib.contextmanager
def stop_on_signals(runner: Runner):
    """SIGINT and SIGTERM ask ``runner`` to stop and flush (main thread only; elsewhere a
    no-op). A second signal during the flush is reported; a third raises
    KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    count = [0]

    def handler(signum, frame):
        count[0] += 1
        if runner.flushing or count[0] > 1:
            if count[0] >= 3:
                raise KeyboardInterrupt
            runner._say(f"{signal.Signals(signum).name}: already stopping, flushing the last "
                        "windows (send it again to abort)", logging.WARNING)
        runner.request_stop(signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
