"""Many streams in one process: a hub of sessions sharing one backend.

Each stream (a call, a camera, a robot's sensor set) is a
:class:`~hrlf.runtime.hub_stream.HubStream`: a full ``Session`` with its own buffers,
deadlines, timestamp policy, results and exact accounting. What the streams share is the
backend, the hub's worker thread, which packs the windows that come due across streams,
and a few inference threads (hub_pool.py), which score them in batches in parallel. How
large a batch, when it goes, and which windows are shed when the machine cannot keep up
(``segments_dropped.overload``, a latency budget) is hub_schedule.py's policy, from the
backend's measured cost per call (hub_batching.py).

* Adding a stream is cheap (its buffers, no model load); removing one scores its last
  windows and frees it.
* One stream's bad input never touches another's results: frames are validated and
  counted per stream; packing happens per stream; the model scores every row
  independently; and when a batched call fails, each stream's rows are retried on their
  own, so only the stream that caused it loses windows (``segments_dropped.backend_error``).
* One stream's callback never touches another's results: callbacks run on a pool of
  delivery threads, one stream's outbox at a time (dispatch.py); the worker never waits
  for one, and no lock is held while one runs.
* A backend outage (a dead server) costs one timeout for the whole hub, not one per
  stream (backend_guard.py); its windows are counted as ``backend_error``.

Results are delivered exactly once (delivery.py); ``close()`` of a stream, ``remove()``
and ``Hub.close()`` are idempotent, bounded by ``timeout_s`` in total, and return a
:class:`~hrlf.runtime.delivery.Closed` (``.stats``, ``.timed_out``).

Embedding::

    with Hub.load("models/mosi", config=HubConfig(max_batch=64)).start() as hub:
        call = hub.add_stream("call-17", on_result=print)     # live by default
        call.push("audio", t, x)                              # from any thread
        hub.push_batch("audio", ["call-17", "call-18"], ts, xs)  # many streams' chunks
        hub.remove("call-17")                                 # or call.close()
    # leaving the block closes every stream; hub.stats() has the totals
"""
from __future__ import annotations

import contextlib
import dataclasses
import heapq
import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from .backend_guard import BackendGuard
from .backends.base import Backend, open_backend
from .cpus import usable_cpus
from .delivery import INTERRUPTS, Closed
from .dispatch import DeliveryPool
from ..errors import InputError
from .hub_batching import CostModel
from .hub_pool import InferencePool
from .hub_push import Pushing
from .hub_schedule import Scheduling
from .hub_scoring import Scoring
from .hub_stream import HubStream, Job, SharedBackend
from .hub_totals import Totals
from .memory import release_freed_memory
from .session_config import CLOSE_TIMEOUT_S, SessionConfig, SessionError
from .sinks import LatencyStats, Result
from .spec import ModelSpec

log = logging.getLogger("hrlf.runtime.hub")

#: Removed streams whose final stats() stay in ``hub.removed_stats`` (their counts stay in
#: the totals forever; memory does not grow with the streams a hub has seen).
REMOVED_KEEP = 256
#: Recent latencies behind the hub's p50/p99 (bounded: 10,000 results of any streams).
HUB_LATENCY_KEEP = 10_000
#: Every this many removed streams, freed memory goes back to the OS.
TRIM_EVERY = 256


@dataclass
class HubConfig:
    """Cross-stream batching settings.

    Attributes:
        max_batch: most windows in one backend call.
        max_wait_s: longest a due window waits for other streams' windows to batch with.
        stream: the default SessionConfig of new streams (live, by default).
        delivery_threads: most threads running callbacks (one blocked callback holds one;
            another starts when all are blocked and other streams wait).
        workers: inference threads (backend calls at once). None: the CPUs this process
            may use (affinity, cgroup quota) for a backend that runs calls in parallel
            (ONNX Runtime, Triton), else 1.
        target_batch: windows per call when many are due. None: measured (the smallest
            batch within 10 % of the best cost per window; ``max_batch`` for a Hub built
            without a measured cost model).
        latency_budget_s: a live window whose result would come later than this after it
            was due is dropped unscored (``segments_dropped.overload``) instead of making
            every stream late; None: never shed.
        metrics_port: serve Prometheus metrics, /healthz, /readyz and the live page on this
            port from ``start()`` (None: off; 0: a free port, see ``hub.observe.url``);
            needs ``hrlf[metrics]`` (hrlf.runtime.observe).
        metrics_address: the interface to bind (loopback unless you say otherwise).
        metrics_streams: per-stream series while at most this many streams are open.
        metrics_linger_s: at close(), keep serving until one more scrape, at most this long.
    """

    max_batch: int = 64
    max_wait_s: float = 0.02
    stream: SessionConfig = field(default_factory=lambda: SessionConfig(live=True))
    delivery_threads: int = 16
    workers: int | None = None
    target_batch: int | None = None
    latency_budget_s: float | None = 0.25
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"
    metrics_streams: int = 32
    metrics_linger_s: float = 0.0

    def check(self) -> None:
        if isinstance(self.max_batch, bool) or not isinstance(self.max_batch, int) \
                or self.max_batch < 1:
            raise InputError(f"hub config: max_batch={self.max_batch!r} must be a whole number >= 1")
        if not (isinstance(self.max_wait_s, (int, float)) and 0 <= self.max_wait_s <= 10):
            raise InputError(f"hub config: max_wait_s={self.max_wait_s!r} must be in [0, 10] s")
        for name, hi in (("delivery_threads", 1024), ("workers", 256), ("target_batch", 1 << 20)):
            v = getattr(self, name)
            if (v is not None or name == "delivery_threads") and (
                    isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi):
                raise InputError(f"hub config: {name}={v!r} must be a whole number in [1, {hi}]")
        b = self.latency_budget_s
        if b is not None and not (isinstance(b, (int, float)) and not isinstance(b, bool)
                                  and 0 < b <= 3600):
            raise InputError(f"hub config: latency_budget_s={b!r} must be in (0, 3600] s, or "
                             "None (never shed)")


class Hub(Scheduling, Scoring, Pushing):
    """Streams sharing one backend, with cross-stream batching. Thread-safe.

    Args:
        backend: the backend every stream's windows are scored on.
        spec: its model's spec.
        config: batching, threads, latency budget, the streams' default config.
        monotonic: clock (injectable for tests).
        cost: the backend's measured cost per call (:meth:`load` measures it); None:
            batches of ``max_batch``, and only lateness counts against the budget.
    """

    observer = None  # metrics (hrlf.runtime.observe): sees every stream's results
    observe = None  # the metrics server, while HubConfig.metrics_port serves

    def __init__(self, backend: Backend, spec: ModelSpec, config: HubConfig | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 cost: CostModel | None = None):
        self.cfg = config or HubConfig()
        self.cfg.check()
        self.backend, self.spec, self._monotonic = backend, spec, monotonic
        self.max_batch = max(1, min(self.cfg.max_batch, getattr(backend, "max_batch", 1 << 30)))
        self.cost = cost
        self.target_batch = min(self.max_batch, self.cfg.target_batch or (
            cost.target_batch(self.max_batch) if cost is not None else self.max_batch))
        parallel = bool(getattr(backend, "concurrent_runs", False))
        self.workers = self.cfg.workers or (usable_cpus() if parallel else 1)
        self._close_timeout_s = CLOSE_TIMEOUT_S
        self._shared = SharedBackend(backend)
        self._guard = BackendGuard(backend, monotonic=monotonic)
        self._pool = DeliveryPool("hrlf-hub-cb", self.cfg.delivery_threads)
        self._streams: dict[str, HubStream] = {}
        self._names = itertools.count()
        self._lock = threading.Lock()  # streams, heap, dirty set
        self._cv = threading.Condition(self._lock)
        self._heap: list = []  # (due wall time, tiebreak, stream) for live streams
        self._tie = itertools.count()
        self._dirty: set = set()  # non-live streams pushed since the last step
        self._pending: list[Job] = []  # under the step lock
        # backends that cannot run calls in parallel still overlap packing and delivery
        self._infer_lock = contextlib.nullcontext() if parallel else threading.Lock()
        self._count_lock = threading.Lock()
        self._drain_s = 0.0  # seconds per queued window, lately (hub_schedule.py)
        self._infer = InferencePool(self._score_jobs, self.workers, done=self._wake_worker)
        self._step_lock = threading.Lock()  # the worker's step vs. a caller's advance()
        self._thread: threading.Thread | None = None
        self._stop = self._closing = self.closed = False
        self.latency = LatencyStats(keep=HUB_LATENCY_KEEP)
        self.counts = {"calls": 0, "rows": 0, "batch_failures": 0, "streams_added": 0,
                       "streams_removed": 0}
        self.removed = Totals()  # every removed stream's final counts, summed
        #: the final stats of the most recently removed streams (bounded)
        self.removed_stats: deque = deque(maxlen=REMOVED_KEEP)

    @classmethod
    def load(cls, model_dir: str | None = None, backend: str = "auto",
             config: HubConfig | None = None, **backend_opts) -> "Hub":
        """Open a MODEL_DIR made by hrlf-export (or ``"demo"``, the built-in demo model)
        once for every stream.

        Raises:
            InputError: no model given, or not a MODEL_DIR (one line naming the fix).
        """
        from .model_dir import resolve_model

        model_dir = resolve_model(model_dir, backend, "Hub.load")
        spec = ModelSpec.load(model_dir)
        cfg = config or HubConfig()
        backend_opts.setdefault("max_batch", cfg.max_batch)
        be = open_backend(backend, model_dir, spec, **backend_opts)
        try:
            cost = CostModel.measure(be.run, spec, min(cfg.max_batch, be.max_batch))
        except Exception as e:  # a backend that fails here fails (counted) while streaming
            log.warning("hub: could not time the backend (%s: %s); batches of max_batch",
                        type(e).__name__, e)
            cost = None
        return cls(be, spec, config, cost=cost)

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
            if self.closed or self._closing:
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

    def remove(self, stream: HubStream | str, timeout_s: float = CLOSE_TIMEOUT_S) -> Closed:
        """Close a stream (:meth:`HubStream.close`): its last windows are scored and
        delivered; safe from any thread, its own callback included."""
        s = self.stream(stream) if isinstance(stream, str) else stream
        return s.close(timeout_s)

    def _flush_stream(self, s: HubStream, deadline: float) -> None:
        """Score the windows of ``s`` still waiting for a batch (before it closes), after
        those in flight (bounded by ``deadline``)."""
        with self._step_lock:
            mine = [j for j in self._pending if j.stream is s]
            self._pending = [j for j in self._pending if j.stream is not s]
        if mine:
            self._score_now(mine, deadline)
        else:
            self._infer.wait_streams([s], deadline)

    def _forget(self, s: HubStream, final: dict | None = None) -> None:
        """A closed stream leaves: its counts join the totals (``final``: its stats())."""
        final = final if final is not None else s.stats()  # (outside the hub's lock)
        trim = False
        with self._lock:
            if self._streams.get(s.name) is s:
                del self._streams[s.name]
                self._dirty.discard(s)
                self.counts["streams_removed"] += 1
                self.removed.add(s)
                self.removed_stats.append({"stream": s.name, **final})
                trim = self.counts["streams_removed"] % TRIM_EVERY == 0
        if trim:  # freed stream buffers back to the OS: memory stays flat (memory.py)
            release_freed_memory(min_interval_s=0.0)

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
        """Run the worker thread that scores every stream's due windows (and serve metrics
        when ``HubConfig.metrics_port`` is set)."""
        if self.cfg.metrics_port is not None and self.observe is None and not self.closed:
            from .observe.server import serve_hub

            self.observe = serve_hub(self)
        with self._lock:
            if self._thread is None and not self.closed:
                self._thread = threading.Thread(target=self._work, daemon=True, name="hrlf-hub")
                self._thread.start()
        return self

    def step(self, flush: bool = False) -> int:
        """Collect due windows of every stream, and score them in this thread when a batch
        is full, the oldest has waited ``max_wait_s``, or ``flush``. Returns windows
        scored."""
        with self._step_lock:
            return self._step(flush)

    @staticmethod
    def _take_jobs(streams: list[HubStream], final: bool) -> list[Job]:
        """The due windows of each stream, packed; a stream that fails only loses its own."""
        jobs = []
        for s in streams:
            try:
                job = s.take(final=final)
            except Exception as e:  # this stream's problem only
                log.error("hub: stream %s: %s: %s", s.name, type(e).__name__, e)
                job = None
            if job is not None:
                jobs.append(job)
        return jobs

    def advance(self) -> int:
        """Score every window due now across streams (non-live streams: call after pushing)."""
        return self.step(flush=True)

    # ---- end -----------------------------------------------------------------------
    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> Closed:
        """Stop the worker, score every stream's last windows (together: a dead backend
        costs one timeout, not one per stream), deliver them and close every stream.

        Idempotent and bounded: at most ``timeout_s`` in total (what is left then is
        dropped and counted as ``close_timeout``). Safe from a callback.

        Returns:
            ``Closed`` (an empty list: hub streams deliver to on_result or results()), with
            ``.stats`` (``stats()``) and ``.timed_out``.

        Raises:
            SystemExit, KeyboardInterrupt: a stream's callback raised it and no call of
                that stream re-raised it yet (after closing everything).
        """
        deadline = time.monotonic() + max(0.0, float(timeout_s))
        with self._lock:
            again = self.closed or self._closing
            self._closing = self._stop = True
            self._cv.notify_all()
        if again:  # (stats() outside the lock: it takes it)
            return Closed([], self.stats())
        th = self._thread
        timed_out = False
        if th is not None and th is not threading.current_thread():
            th.join(max(0.0, deadline - time.monotonic()))
            timed_out = th.is_alive()
        timed_out = not self._infer.drain(deadline) or timed_out  # batches in flight
        closing = self._final_flush(flush=not timed_out)
        interrupt = None
        for s in closing:
            try:
                timed_out |= s._end_close(deadline).timed_out
            except INTERRUPTS as e:  # a callback's, not yet re-raised by its stream
                interrupt = interrupt or e
            except SessionError as e:  # a stream stopped by its callback or backend policy
                log.error("hub: closing stream %s: %s", s.name, e)
        with self._lock:
            self.closed = True
        self._infer.stop()
        self._pool.stop()
        self.backend.close()
        if self.observe is not None:  # the final totals, scraped once more
            self.observe.close(self.cfg.metrics_linger_s)
        if timed_out:
            log.warning("hub: close() gave up waiting after %.3g s (see close_timeout in "
                        "stats)", timeout_s)
        if interrupt is not None:
            raise interrupt
        return Closed([], self.stats(), timed_out)

    def _final_flush(self, flush: bool) -> list[HubStream]:
        """Refuse new frames on every stream and score their remaining windows in as few
        calls as possible (``flush``; else the worker is stuck: they are left to
        ``close_timeout``). Returns the streams this call began to close."""
        closing = [s for s in self.streams if s._begin_close()]
        if not flush:
            return closing
        with self._step_lock:
            jobs, self._pending = self._pending, []
            jobs += self._take_jobs(closing, final=True)
            if jobs:
                self._score_jobs(jobs)
        return closing

    def __enter__(self) -> "Hub":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def stats(self) -> dict:
        """Totals over live and removed streams, batching counters, latency p50/p99.
        Cheap: counters only (per-stream details: ``stream.stats()``)."""
        tot = Totals()
        live = self.streams
        tot.add_all(live)
        out = tot.merged(self.removed)
        calls = self.counts["calls"]
        return {**out, "streams": len(live),
                "mean_batch": round(self.counts["rows"] / calls, 2) if calls else 0.0,
                **self.counts, "backend_failures": self._guard.failures,
                "delivery": self._pool.stats(), "latency_ms": self.latency.summary(),
                "backend": self.backend.name, "batching": self.batching()}

    def batching(self) -> dict:
        """The batching policy in force: threads, batch sizes, budget, measured costs."""
        b = self.cfg.latency_budget_s
        return {"workers": self.workers, "target_batch": self.target_batch,
                "max_batch": self.max_batch, "max_wait_ms": self.cfg.max_wait_s * 1e3,
                "latency_budget_ms": None if b is None else b * 1e3,
                "cost": None if self.cost is None else self.cost.summary(),
                "inference": self._infer.stats()}
