"""The run loop behind ``hrlf-run``: source -> session -> sink, with pacing and stats."""
from __future__ import annotations

import json
import sys
import time
from typing import Callable, TextIO

from hrlf.runtime.errors import InputError
from hrlf.runtime.session import Session
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
        write: called with each output line.
        fmt: ``jsonl`` or ``text``.
        pace: ``realtime`` replays non-live sources at their timestamps; ``fast`` as fast
            as possible; ``auto`` is realtime for the demo and live sources, else fast.
        duration_s: stop after this many stream seconds (None: until the source ends).
        stats_every_s: seconds between stats lines on ``log`` (0: never).
    """

    def __init__(self, source: Source, session: Session, write: Callable[[str], None],
                 fmt: str = "jsonl", pace: str = "fast", duration_s: float | None = None,
                 stats_every_s: float = 5.0, log: TextIO | None = None):
        self.source, self.session, self.write, self.fmt = source, session, write, fmt
        self.pace, self.duration_s, self.stats_every_s = pace, duration_s, stats_every_s
        self.log = log if log is not None else sys.stderr  # resolved now, not at import
        self.truth = getattr(source, "truth", None)
        self.pairs: list[tuple[float, float]] = []

    def _emit(self, results: list[Result]) -> None:
        reasons = getattr(self.source, "reasons", None)  # capture sources know why
        for r in results:
            missing = [m for m in ("text", "audio", "vision") if m not in r.modalities]
            if missing and callable(reasons):
                why = reasons(r.t_start, r.t_end)
                r.extra["absent"] = {m: why.get(m, "no_frames") for m in missing}
            if self.truth is not None:
                y = self.truth(r.t_start, r.t_end)
                if y is not None:
                    r.extra["truth"] = round(y, 6)
                    self.pairs.append((r.score, y))
            self.write(format_result(r, self.fmt))

    def run(self) -> dict:
        """Run to the end; returns the summary (also written to ``log`` as JSON)."""
        s, src = self.session, self.source
        paced = self.pace == "realtime" and not src.live
        wall0 = time.monotonic()
        last_stats = wall0
        stop = False
        try:
            while not stop:
                res = src.read(0.02)
                for d in res.drops:
                    with s.acct.lock:
                        s.acct.source_drops[d.reason] += d.count
                for i, e in enumerate(res.events):
                    if self.duration_s is not None and e.t >= self.duration_s:
                        stop = True  # frames read past --duration are counted, not lost
                        with s.acct.lock:
                            s.acct.source_drops["past_duration"] += len(res.events) - i
                        break
                    if paced:
                        delay = wall0 + e.t - time.monotonic()
                        if delay > 0:
                            self._emit(s.advance())
                            time.sleep(delay)
                    s.push(e.modality, e.t, e.x)
                    if not src.live and s.ready():  # file sources: never overflow a buffer
                        self._emit(s.advance())
                self._emit(s.advance())
                if res.status == Status.EOS:
                    break
                if src.live and self.duration_s is not None and s.clock() >= self.duration_s:
                    break
                now = time.monotonic()
                if self.stats_every_s and now - last_stats >= self.stats_every_s:
                    print(stats_line(s.stats()), file=self.log, flush=True)
                    last_stats = now
        except KeyboardInterrupt:
            print("[hrlf-run] interrupted; flushing", file=self.log)
        finally:
            src.close()
        self._emit(s.close())
        return self.summary()

    def summary(self) -> dict:
        st = self.session.stats()
        src_stats = getattr(self.source, "stats", None)
        if callable(src_stats):
            st["source"] = src_stats()
        if self.pairs:
            from hrlf.runtime.metrics import regression_metrics

            import numpy as np
            p = np.array(self.pairs)
            st["vs_truth"] = {k: round(v, 4) for k, v in regression_metrics(p[:, 0], p[:, 1]).items()
                              if k in ("mae", "corr", "acc2", "f1", "n")}
        print(stats_line(st), file=self.log)
        print(json.dumps({"summary": st}), file=self.log, flush=True)
        return st
