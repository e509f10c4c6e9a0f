"""Many streams in one process: a hub of sessions sharing one backend.

Each stream (a call, a camera, a robot's sensor set) is a
:class:`~hrlf.runtime.hub_stream.HubStream`: a full ``Session`` with its own buffers,
deadlines, timestamp policy, results and exact accounting. What the streams share is the
backend, and the hub's worker thread, which scores windows that come due at about the same
time across streams in **one backend call**: a due window waits at most ``max_wait_s`` for
others to join it, and a call holds at most ``max_batch`` windows.

* Adding a stream is cheap (its buffers, no model load); removing one scores its last
  windows and frees it.
* One stream's bad input never touches another's results: frames are validated and
  counted per stream; packing happens per stream; the model scores every row
  independently; and when a batched call fails, each stream's rows are retried on their
  own, so only the stream that caused it loses windows (``segments_dropped.backend_error``).

Embedding::

    hub = Hub.load("models/mosi", config=HubConfig(max_batch=64, max_wait_s=0.02)).start()
    call = hub.add_stream("call-17", on_result=print)     # live by default
    call.push("audio", t, x)                              # from any thread
    call.close()                                          # or hub.remove("call-17")
    hub.close()                                           # closes every stream
"""
from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hrlf.runtime.backends.base import Backend, open_backend
from hrlf.runtime.errors import InputError
from hrlf.runtime.hub_stream import HubStream, Job, SharedBackend, concat_feeds
from hrlf.runtime.session_config import SessionConfig
from hrlf.runtime.sinks import LatencyStats, Result
from hrlf.runtime.spec import ModelSpec

log = logging.getLogger("hrlf.runtime.hub")


@dataclass
class HubConfig:
    """Cross-stream batching settings.

    Attributes:
        max_batch: most windows in one backend call.
        max_wait_s: longest a due window waits for other streams' windows to batch with.
        stream: the default SessionConfig of new streams (live, by default).
    """

    max_batch: int = 64
    max_wait_s: float = 0.02
    stream: SessionConfig = field(default_factory=lambda: SessionConfig(live=True))

    def check(self) -> None:
        if isinstance(self.max_batch, bool) or not isinstance(self.max_batch, int) \
                or self.max_batch < 1:
            raise InputError(f"hub config: max_batch={self.max_batch!r} must be a whole number >= 1")
        if not (isinstance(self.max_wait_s, (int, float)) and 0 <= self.max_wait_s <= 10):
            raise InputError(f"hub config: max_wait_s={self.max_wait_s!r} must be in [0, 10] s")


class Hub:
    """Streams sharing one backend, with cross-stream batching. Thread-safe."""

    def __init__(self, backend: Backend, spec: ModelSpec, config: HubConfig | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.cfg = config or HubConfig()
        self.cfg.check()
        self.backend, self.spec, self._monotonic = backend, spec, monotonic
        self.max_batch = max(1, min(self.cfg.max_batch, getattr(backend, "max_batch", 1 << 30)))
        self._shared = SharedBackend(backend)
        self._streams: dict[str, HubStream] = {}
        self._names = itertools.count()
        self._lock = threading.Lock()  # streams, heap, dirty set
        self._cv = threading.Condition(self._lock)
        self._heap: list = []  # (due wall time, tiebreak, stream) for live streams
        self._tie = itertools.count()
        self._dirty: set = set()  # non-live streams pushed since the last step
        self._pending: list[Job] = []  # worker only
        self._infer_lock = threading.Lock()
        self._step_lock = threading.Lock()  # the worker's step vs. a caller's advance()
        self._thread: threading.Thread | None = None
        self._stop = False
        self.closed = False
        self.latency = LatencyStats(keep=100_000)
        self.counts = {"calls": 0, "rows": 0, "batch_failures": 0, "streams_added": 0,
                       "streams_removed": 0}
        self.removed_stats: list[dict] = []  # the final stats of every removed stream

    @classmethod
    def load(cls, model_dir: str | None = None, backend: str = "auto",
             config: HubConfig | None = None, **backend_opts) -> "Hub":
        """Open a MODEL_DIR made by hrlf-export (or ``"demo"``, the built-in demo model)
        once for every stream.

        Raises:
            InputError: no model given, or not a MODEL_DIR (one line naming the fix).
        """
        from hrlf.runtime.api import resolve_model

        model_dir = resolve_model(model_dir, backend, "Hub.load")
        spec = ModelSpec.load(model_dir)
        backend_opts.setdefault("max_batch", (config or HubConfig()).max_batch)
        return cls(open_backend(backend, model_dir, spec, **backend_opts), spec, config)

    # ---- streams ---------------------------------------------------------------------
    def add_stream(self, name: str | None = None, config: SessionConfig | None = None,
                   on_result: Callable[[Result], None] | None = None) -> HubStream:
        """A new stream (default config: ``HubConfig.stream``); results go to ``on_result``
        or the stream's ``results()``.

        Raises:
            InputError: the name is taken, or the hub is closed.
        """
        cfg = dataclasses.replace(config or self.cfg.stream)
        with self._lock:
            if self.closed:
                raise InputError("hub: add_stream after close(); create a new Hub")
            name = str(next(self._names)) if name is None else str(name)
            if name in self._streams:
                raise InputError(f"hub: a stream named '{name}' exists; choose another name")
            s = HubStream(self, name, self._shared, self.spec, cfg, on_result, self._monotonic)
            self._streams[name] = s
            self.counts["streams_added"] += 1
        return s

    def stream(self, name: str) -> HubStream:
        with self._lock:
            s = self._streams.get(str(name))
        if s is None:
            raise InputError(f"hub: no stream named '{name}'")
        return s

    @property
    def streams(self) -> list[HubStream]:
        with self._lock:
            return list(self._streams.values())

    def remove(self, stream: HubStream | str) -> list[Result]:
        """Close a stream: its last windows are scored; returns their results."""
        s = self.stream(stream) if isinstance(stream, str) else stream
        return s.close()

    def _flush_stream(self, s: HubStream) -> None:
        """Score the windows of ``s`` still waiting for a batch (before it closes)."""
        with self._step_lock:
            mine = [j for j in self._pending if j.stream is s]
            if mine:
                self._pending = [j for j in self._pending if j.stream is not s]
                self._score_jobs(mine)

    def _forget(self, s: HubStream) -> None:
        with self._lock:
            if self._streams.get(s.name) is s:
                del self._streams[s.name]
                self._dirty.discard(s)
                self.counts["streams_removed"] += 1
                self.removed_stats.append({"stream": s.name, **s.stats()})

    def _pushed(self, s: HubStream) -> None:
        """A stream accepted or dropped a frame: make sure the worker will look at it."""
        if s.cfg.live:
            if not s.in_heap and s._k_next is not None:
                with self._lock:
                    self._schedule(s)
        elif s not in self._dirty:
            with self._lock:
                self._dirty.add(s)
                self._cv.notify()

    def _schedule(self, s: HubStream, not_before: float | None = None) -> None:
        """(lock held) Put a live stream on the heap at its next deadline."""
        due = s.next_due()
        if due is None or s.in_heap or s.closed:
            return
        if not_before is not None:
            due = max(due, not_before)
        s.in_heap = True
        heapq.heappush(self._heap, (due, next(self._tie), s))
        if self._heap[0][2] is s:
            self._cv.notify()

    # ---- the worker ------------------------------------------------------------------
    def start(self) -> "Hub":
        """Run the worker thread that scores every stream's due windows."""
        with self._lock:
            if self._thread is None and not self.closed:
                self._thread = threading.Thread(target=self._work, daemon=True, name="hrlf-hub")
                self._thread.start()
        return self

    def _work(self) -> None:
        while True:
            with self._lock:
                if self._stop:
                    return
                now = self._monotonic()
                wake = [now + 0.1]
                if self._heap:
                    wake.append(self._heap[0][0])
                if self._pending:
                    wake.append(self._pending[0].due_wall + self.cfg.max_wait_s)
                if not self._dirty and min(wake) > now:
                    self._cv.wait(min(wake) - now)
            try:
                self.step()
            except Exception:  # a bug, not a stream's input: log it, keep serving
                log.exception("hub worker step failed")

    def step(self, flush: bool = False) -> int:
        """Collect due windows of every stream, and score them when a batch is full, the
        oldest has waited ``max_wait_s``, or ``flush``. Returns windows scored."""
        with self._step_lock:
            return self._step(flush)

    def _step(self, flush: bool) -> int:
        now = self._monotonic()
        with self._lock:
            due: list[HubStream] = []
            while self._heap and self._heap[0][0] <= now:
                s = heapq.heappop(self._heap)[2]
                s.in_heap = False
                due.append(s)
            due.extend(self._dirty)
            self._dirty.clear()
        for s in due:
            try:
                job = s.take(final=False)
            except Exception as e:  # this stream's problem only
                log.error("hub: stream %s: %s: %s", s.name, type(e).__name__, e)
                job = None
            if job is not None:
                self._pending.append(job)
        with self._lock:
            for s in due:
                if s.cfg.live:
                    self._schedule(s, not_before=now + 1e-3)
        rows = sum(j.rows for j in self._pending)
        if self._pending and (flush or rows >= self.max_batch or
                              now >= self._pending[0].due_wall + self.cfg.max_wait_s):
            jobs, self._pending = self._pending, []
            self._score_jobs(jobs)
            return rows
        return 0

    def advance(self) -> int:
        """Score every window due now across streams (non-live streams: call after pushing)."""
        return self.step(flush=True)

    # ---- scoring -----------------------------------------------------------------------
    def _score_jobs(self, jobs: list[Job]) -> list[Result]:
        """Score jobs of any streams in as few backend calls as possible; deliver results."""
        entries = [(j, n) for j in jobs for n, (kind, _, _) in enumerate(j.plan)
                   if kind == "batch"]
        for j in jobs:
            j.scores = [None] * len(j.plan)
        t0 = time.perf_counter()
        batch = sum(j.rows for j in jobs)
        self._run_entries(entries)
        infer_s = time.perf_counter() - t0
        t_done = self._monotonic()
        out: list[Result] = []
        for j in jobs:
            out.extend(j.stream.finish_job(j, j.scores, infer_s, batch, t_done))
        for r in out:
            if r.status == "ok":
                self.latency.add(r.latency_ms)
        return out

    def _run_entries(self, entries: list) -> None:
        """Fill ``job.scores`` for every batch entry, ``max_batch`` rows per call; a failed
        call is retried stream by stream so that only the failing stream's rows are lost."""
        chunk, rows = [], 0
        for e in entries + [None]:
            n = 0 if e is None else len(e[0].plan[e[1]][1])
            if chunk and (e is None or rows + n > self.max_batch):
                if not self._call(chunk) and len({id(j.stream) for j, _ in chunk}) > 1:
                    self.counts["batch_failures"] += 1
                    by_stream: dict = {}
                    for je in chunk:
                        by_stream.setdefault(id(je[0].stream), []).append(je)
                    for part in by_stream.values():
                        self._call(part)
                chunk, rows = [], 0
            if e is not None:
                chunk.append(e)
                rows += n

    def _call(self, chunk: list) -> bool:
        feeds = concat_feeds([j.plan[n][2][0] for j, n in chunk])
        try:
            with self._infer_lock:
                scores = np.asarray(self.backend.run(feeds), np.float32).reshape(-1)
            if len(scores) != len(feeds[next(iter(feeds))]):
                raise RuntimeError(f"backend returned {len(scores)} scores for "
                                   f"{len(feeds[next(iter(feeds))])} windows")
        except Exception as e:  # noqa: BLE001 - counted per stream, logged, never fatal
            log.warning("hub: backend call of %d windows failed: %s: %s",
                        sum(len(j.plan[n][1]) for j, n in chunk), type(e).__name__, e)
            return False
        self.counts["calls"] += 1
        self.counts["rows"] += len(scores)
        at = 0
        for j, n in chunk:
            k = len(j.plan[n][1])
            j.scores[n] = scores[at:at + k]
            at += k
        return True

    # ---- end -----------------------------------------------------------------------
    def close(self) -> dict:
        """Stop the worker, score what is pending, close every stream; returns stats()."""
        with self._lock:
            if self.closed:
                return self.stats()
            self._stop = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join()
        self.step(flush=True)
        for s in self.streams:
            try:
                s.close()
            except Exception as e:  # e.g. a stream stopped by its callback: reported in stats
                log.error("hub: closing stream %s: %s", s.name, e)
        with self._lock:
            self.closed = True
        self.backend.close()
        return self.stats()

    def stats(self) -> dict:
        """Totals over live and removed streams, batching counters, latency p50/p99."""
        per = [{"stream": s.name, **s.stats()} for s in self.streams] + list(self.removed_stats)
        keys = ("received", "used", "segments", "no_data", "empty_windows")
        tot = {k: sum(p.get(k, 0) for p in per) for k in keys}
        dropped: dict = {}
        for p in per:
            for k, v in p["dropped"].items():
                dropped[k] = dropped.get(k, 0) + v
        calls = self.counts["calls"]
        return {**tot, "dropped": dropped, "streams": len(self.streams),
                "accounting_ok": all(p["accounting_ok"] for p in per),
                "mean_batch": round(self.counts["rows"] / calls, 2) if calls else 0.0,
                **self.counts, "latency_ms": self.latency.summary(),
                "backend": self.backend.name}
