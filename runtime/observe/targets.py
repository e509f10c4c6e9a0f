"""What is observed: one ``hrlf-run`` (:class:`RunTarget`) or one ``Hub`` (:class:`HubTarget`),
behind one small interface that the metrics, the health checks and the live page read.

Everything here runs at scrape (or probe) time, never on the hot path.
"""
from __future__ import annotations

import time

from . import redact
from .observer import Observer

#: per-stream series (label ``stream``) while a hub has at most this many open streams;
#: above it, totals only (bounded cardinality; see README, *Metrics*)
STREAM_LABELS_MAX = 32


class Target:
    """The common part: an :class:`Observer`, the start time, readiness checks."""

    kind = ""

    def __init__(self, observer: Observer | None = None, stream_labels: int = STREAM_LABELS_MAX):
        self.observer = observer or Observer()
        self.stream_labels = int(stream_labels)
        self.started = time.time()
        self.checks: dict = {}  # name -> () -> (ok, detail): the embedder's own checks

    def add_check(self, name: str, check) -> None:
        """A readiness check of your own: ``check() -> (ok, detail)``, shown in /readyz."""
        self.checks[str(name)] = check

    def labelled(self) -> list:
        """``(name, session)`` of the streams that get per-stream series (all, or none when
        there are more than ``stream_labels``)."""
        streams = self.sessions()
        return streams if len(streams) <= self.stream_labels else []

    # overridden
    def sessions(self) -> list:
        return []

    def score_range(self) -> tuple[float, float]:
        spec = self.spec()
        return tuple(spec.output.score_range) if spec is not None else (-3.0, 3.0)

    def spec(self):
        return None


class RunTarget(Target):
    """``hrlf-run``: served from before the model loads (``phase`` says where it is)."""

    kind = "run"

    def __init__(self, uri: str, observer: Observer | None = None):
        super().__init__(observer)
        self.name = redact(uri)
        self.runner = None
        self.phase = "loading"  # loading -> running -> finished

    def attach(self, runner) -> None:
        """The model and source are open: observe ``runner`` from now on."""
        runner.observer = self.observer
        runner.session._obs_state = None
        runner.session.name = self.name
        runner.session._guard.on_call = self.observer.call
        self.runner = runner
        self.phase = "running"

    def finish(self) -> None:
        self.phase = "finished"

    def sessions(self) -> list:
        return [(self.name, self.runner.session)] if self.runner is not None else []

    def spec(self):
        return self.runner.session.spec if self.runner is not None else None

    def totals(self) -> dict | None:
        """The run's stats (the final summary once it exists, so that the last scrape
        equals the summary line), or None while loading."""
        r = self.runner
        if r is None:
            return None
        st = r.last_summary
        if st is None:
            st = r.session.stats()
            src = getattr(r.source, "stats", None)
            if callable(src):
                try:
                    st["source"] = src()
                except Exception as e:  # a source's stats must not break a scrape
                    st["source"] = {"error": f"{type(e).__name__}: {e}"}
        return {**st, "streams": 0 if self.phase == "finished" else 1}

    def guard(self):
        return self.runner.session._guard if self.runner is not None else None

    def backend_name(self) -> str:
        return self.runner.session.backend.name if self.runner is not None else ""

    def live_sources(self) -> list:
        r = self.runner
        return [r.source] if r is not None and getattr(r.source, "live", False) else []


class HubTarget(Target):
    """A :class:`~hrlf.runtime.hub.Hub` and its streams."""

    kind = "hub"

    def __init__(self, hub, stream_labels: int = STREAM_LABELS_MAX, observer=None):
        super().__init__(observer, stream_labels)
        self.hub = hub
        hub.observer = self.observer
        hub._guard.on_call = self.observer.call

    def sessions(self) -> list:
        return [(s.name, s) for s in self.hub.streams]

    def spec(self):
        return self.hub.spec

    def totals(self) -> dict:
        st = self.hub.stats()
        pending = getattr(self.hub, "_pending", None) or []
        st["waiting_rows"] = sum(getattr(j, "rows", 0) for j in list(pending))
        return st

    def guard(self):
        return self.hub._guard

    def backend_name(self) -> str:
        return self.hub.backend.name

    def live_sources(self) -> list:
        return []


def results_queued(sessions) -> int:
    """Results waiting for a callback or a ``results()`` reader, over ``sessions``."""
    n = 0
    for _, s in sessions:
        box = s._outbox
        if box is not None:
            n += len(box.items)
        q = s._results  # made on results()'s first use
        if q is not None:
            n += q.qsize()
    return n
