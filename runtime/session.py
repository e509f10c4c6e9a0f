"""The streaming core and the embedding API.

Frames are pushed per modality with timestamps (seconds); segments of ``window_s`` every
``hop_s`` are packed and scored once they are due:

* *live* (cameras, microphones, or paced replay): a window is due ``grace_s`` after its
  end on the session's monotonic clock, whatever has arrived;
* *as fast as possible* (files): a window is due once a frame at or after its end has
  arrived (sources deliver frames in time order), or at the end of the stream.

At the deadline a modality with no frame in the window is absent (modality mask 0) and
slots without a frame are masked. Bad timing: per modality, timestamps must increase; a
repeat is ``duplicate``, an earlier one ``out_of_order``, one older than the next window
to emit ``late``; a jump beyond ``max_jump_s`` is ``clock_jump`` or re-anchors the stream
(timebase.py). Windows in which no modality has any frame are skipped and counted as
``empty_windows`` or, with ``no_data=True`` (what ``hrlf-run`` uses for live sources),
delivered as results with ``status="no_data"`` and their reasons. Work is bounded by the
frames pushed, never by the time span they cover.

Contracts: ``push`` counts a frame exactly once (received, then used or dropped with a
reason) or raises before counting (a non-string modality, a closed session). Every result
is handed out exactly once, through one channel (delivery.py): the callback, ``results()``
or the return value. An exception in ``on_result`` is counted (``callback_errors``) and,
with ``on_callback_error="stop"``, stops the session (the next call raises
``SessionError``). A failed backend call drops its windows, counted as
``segments_dropped.backend_error`` (``on_backend_error="stop"`` stops instead).
``close(timeout_s)`` is idempotent and bounded: it returns a :class:`Closed` (the results
it handed out, ``stats``, ``timed_out``).

Embedding::

    with Session.load("models/mine", on_result=print) as session:  # or "demo"; or results()
        session.start()                                  # background worker (optional)
        session.push("audio", t, x)                      # thread-safe, from any thread
    # leaving the block closes it: the last windows are scored and delivered
"""
from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from typing import Callable, Iterable

from .backend_guard import BackendFailed, BackendGuard
from .backends.base import Backend, open_backend
from .buffers import Accounting, ModalityBuffer
from .delivery import Delivery
from ..errors import InputError
from .frames import check_time, to_frame
from .limits import check_window
from .protocol import condition_modalities, parse_condition
from .refusals import ACCEPTED, Pushed, refuse
from .session_close import Closed, Closing  # noqa: F401 (re-exported)
from .session_config import (  # noqa: F401 (re-exported)
    CALLBACK_POLICIES,
    SessionClosed,
    SessionConfig,
    SessionError,
)
from .sinks import LatencyStats, Result
from .spec import MODALITIES, ModelSpec
from .timebase import Timebase
from .windows import Packer

log = logging.getLogger(__name__)

EPS = 1e-9


class Session(Delivery, Closing):
    """One stream through one model. Thread-safe; see the module docstring."""

    def __init__(self, backend: Backend, spec: ModelSpec, config: SessionConfig | None = None,
                 on_result: Callable[[Result], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.backend, self.spec = backend, spec
        self._guard = BackendGuard(backend, monotonic=monotonic)
        self._monotonic = monotonic  # injectable for tests of live deadlines
        self.cfg = c = config or SessionConfig()
        c.check()
        self.window_s = float(c.window_s or spec.window_s)
        self.hop_s = float(c.hop_s or spec.hop_s)
        if not (1e-3 <= self.window_s <= 3600 and 1e-3 <= self.hop_s <= 3600):
            raise InputError("window/hop: must be seconds in [0.001, 3600]; fix "
                             "--window/--hop")
        if self.window_s / self.hop_s > 1000:  # work per frame grows with windows per frame
            raise InputError(f"window/hop: {self.window_s:g} s / {self.hop_s:g} s puts each "
                             "frame in over 1000 windows; use a longer --hop")
        check_window(spec, self.window_s, c.buffer_s)  # before any buffer is allocated
        self.kept = (set(condition_modalities(parse_condition(c.condition))) if c.condition
                     else set(MODALITIES)) - set(spec.modalities_off)  # not_trained
        for m, _, _ in c.drops:
            if m not in MODALITIES:
                raise InputError(f"drop schedule: unknown modality '{m}'; use text, audio or vision")
        self.acct = Accounting()
        self.packer = Packer(spec, self.window_s, c.device, self.acct)
        self.n_frames = self.packer.n_frames
        self.buffers = {m: ModalityBuffer(m, spec.dim(m), max(64, math.ceil(
            spec.features[m].frame_rate_hz * max(c.buffer_s, 2 * self.window_s))), self.acct)
            for m in MODALITIES}
        self.timebase = Timebase(c.max_jump_s)
        self.latency = LatencyStats()
        self.on_result = on_result
        self.reason_hooks: list[Callable[[], Iterable[str]]] = []
        self._notes: deque = deque(maxlen=256)  # (stream t, reason) for no_data results
        self._results = None  # the results() queue, made on first use (Delivery._queue)
        self._lock = threading.RLock()
        self._infer_lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._k_next: int | None = None  # index of the next window to emit
        self._watermark: float | None = None  # stream time of the latest accepted frame
        self._t0_wall: float | None = None
        self._thread: threading.Thread | None = None
        self._stop = self._closing = self.closed = False
        self._failure: SessionError | None = None
        self.work_steps = 0  # window-loop iterations (bounded by frames; the fuzzer checks)

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def load(cls, model_dir: str | None = None, backend: str = "auto",
             config: SessionConfig | None = None, on_result=None, **backend_opts) -> "Session":
        """Open a MODEL_DIR made by hrlf-export, or ``"demo"`` (the built-in demo model).

        Raises:
            InputError: no model given, or not a MODEL_DIR (one line naming the fix).
        """
        from .model_dir import resolve_model

        model_dir = resolve_model(model_dir, backend, "Session.load")
        spec = ModelSpec.load(model_dir)
        be = open_backend(backend, model_dir, spec, **backend_opts)
        return cls(be, spec, config, on_result)

    # ---- input -----------------------------------------------------------------------
    def clock(self) -> float:
        """Seconds on the session's monotonic clock (0 at the first push or start())."""
        if self._t0_wall is None:
            self._t0_wall = self._monotonic()
            if self.cfg.live and self.cfg.no_data and self._k_next is None:
                self._k_next = 0  # outages from the very start are reported too
        return self._monotonic() - self._t0_wall

    def push(self, modality: str, t: float, x) -> Pushed:
        """Add one frame; returns a :class:`~hrlf.runtime.refusals.Pushed`, false when the
        frame was refused (counted as dropped), with ``.reason`` and a one-line ``.message``.

        Raises:
            InputError: ``strict`` config and a frame the caller got wrong (counted first).
            TypeError: ``modality`` is not a string (nothing is counted).
            SessionClosed: after close() (nothing is counted).
            SessionError: the session stopped after a failure (nothing is counted).
        """
        if not isinstance(modality, str):
            raise TypeError(f"push: modality must be a str such as 'audio', not "
                            f"{type(modality).__name__}")
        with self._lock:
            self._check_open("push")
            now = self.clock() if self.cfg.live else None
            self.acct.received += 1
            reason, arr, s = self._check(modality, t, x, now)
            if reason is not None:
                self.acct.drop(reason)
                buf = self.buffers.get(modality)
                return refuse(reason, modality, t, x, None if buf is None else buf.dim,
                              self.cfg.strict)
            self.timebase.accepted()
            self.buffers[modality].append(s, arr)
            if self._watermark is None or s > self._watermark:
                self._watermark = s
            if self._k_next is None:
                self._k_next = self._first_window(s)
            if self._thread is not None:
                self._wake.notify()
            return ACCEPTED

    def _check_open(self, what: str) -> None:
        if self._failure is not None:
            self._raise_failure()
        if self._closing or self.closed:
            raise SessionClosed(f"session: {what} after close(); create a new Session")

    def _check(self, modality: str, t, x, now):
        """(drop reason or None, the frame as float32, its stream time)."""
        buf = self.buffers.get(modality)
        if buf is None:
            return "unknown_modality", None, None
        t_src = check_time(t)
        reason, arr = to_frame(x, buf.dim)
        if reason is not None:
            return reason, None, None
        if t_src is None:
            return "bad_timestamp", None, None
        if modality not in self.kept:
            return ("not_trained" if modality in self.spec.modalities_off else "condition",
                    None, None)
        for m, a, b in self.cfg.drops:
            if m == modality and a <= t_src < b:
                return "drop_schedule", None, None
        before = (self.timebase.anchored, self.timebase.reanchors)
        jump, s = self.timebase.place(t_src, self._watermark, now, self._reanchor_target)
        if jump is not None:
            return jump, None, None
        if (self.timebase.anchored, self.timebase.reanchors) != before:
            log.warning("%s at t=%.6g s: stream time now counts from origin %.6g s (%s; see "
                        "stats()['time_base'])", modality, t_src, self.timebase.origin,
                        "a live stream far from the session clock: epoch or boot time?"
                        if self.timebase.anchored == "first_frame" else
                        "the source's clock jumped and stayed: re-anchored")
        if s == buf.last_t:
            return "duplicate", None, None
        if s < buf.last_t:
            return "out_of_order", None, None
        if s < 0 or (self._k_next is not None and s < self._k_next * self.hop_s):
            return "late", None, None
        return None, arr, s

    def _reanchor_target(self) -> float:
        """Stream time for the first frame after a re-anchor: one window after the latest
        frame, not before the next window to emit, not before now (live)."""
        return max(self._watermark + self.window_s if self._watermark is not None else 0.0,
                   self._k_next * self.hop_s if self._k_next is not None else 0.0,
                   self.clock() if self.cfg.live else 0.0)

    # Window k is [k * hop_s, k * hop_s + window_s), tested exactly (as packing does); these
    # two helpers correct the float division so that they agree with that test.
    def _first_window(self, t: float) -> int:
        """The first window holding time ``t``: smallest k >= 0 with t < k*hop + window."""
        h, w = self.hop_s, self.window_s
        k = max(0, math.floor((t - w) / h) + 1)
        while k > 0 and t < (k - 1) * h + w:
            k -= 1
        while t >= k * h + w:
            k += 1
        return k

    def _last_window(self, t: float, offset: float) -> int:
        """Largest k with k*hop + offset <= t (offset 0: the last window starting by t;
        offset window_s: the last window ending by t). May be negative."""
        h = self.hop_s
        k = math.floor((t - offset) / h)
        while k * h + offset > t:
            k -= 1
        while (k + 1) * h + offset <= t:
            k += 1
        return k

    @property
    def last_time(self) -> float | None:
        """Source time of the latest accepted frame (None before the first)."""
        w = self._watermark
        return None if w is None else w + self.timebase.origin

    def note(self, reason: str, t: float | None = None) -> None:
        """Record why data may be missing (``device_lost``, ``silence``, ...) at stream time
        ``t`` (default: now, live; else the latest frame). It appears in the ``reasons`` of
        every no_data result from the window holding ``t`` until frames come back."""
        with self._lock:
            if t is None:
                t = self.clock() if self.cfg.live else (self._watermark or 0.0)
            self._notes.append((float(t), str(reason)))

    # ---- segments --------------------------------------------------------------------
    def ready(self) -> bool:
        """True when a reader of a file source should call advance() before pushing more:
        a full batch of windows is due, or a buffer is 3/4 full (so that as-fast-as-possible
        reading never overflows a buffer; live sources rely on the clock and drop-oldest)."""
        if self._k_next is None or self._watermark is None:
            return False
        due = math.floor((self._watermark - self.window_s) / self.hop_s + EPS) - self._k_next + 1
        return due >= self.cfg.max_batch or any(
            4 * len(b) >= 3 * b.capacity for b in self.buffers.values())

    def advance(self) -> list[Result]:
        """Score every window that is due now; returns their results (also delivered)."""
        with self._lock:
            if self._failure is not None:
                self._raise_failure()
        return self._emit(final=False)

    def finish(self) -> list[Result]:
        """End of stream: score the remaining windows that hold unused frames."""
        return self._emit(final=True)

    def _last_due(self, final: bool) -> int | None:
        """Index of the last window due now (windows up to it are due), or None."""
        if final:
            ts = [b.last_unused_time() for b in self.buffers.values()]
            ts = [t for t in ts if t is not None]
            return self._last_window(max(ts), 0.0) if ts else None
        if self.cfg.live:
            end = self.clock() - self.cfg.grace_s
        elif self._watermark is not None:
            end = self._watermark
        else:
            return None
        return self._last_window(end, self.window_s)

    def _collect(self, final: bool) -> list[tuple[int, float, bool]]:
        """Due windows ``(index, due wall time, has frames)``, advancing the window pointer.

        Each step emits a window with frames, or a no_data window (at most max_inflight
        per call), or jumps straight to the next window that can hold a frame: the work
        is bounded by the frames buffered, however far apart their timestamps are.
        """
        due: list[tuple[int, float, bool]] = []
        k_last = self._last_due(final) if self._k_next is not None else None
        no_data = self.cfg.live and self.cfg.no_data and not final
        while self._k_next is not None and k_last is not None and self._k_next <= k_last:
            self.work_steps += 1
            k = self._k_next
            start, end = k * self.hop_s, k * self.hop_s + self.window_s
            if any(b.has_frames(start, end, unused_only=final) for b in self.buffers.values()):
                due.append((k, self._due_wall(end), True))
                for b in self.buffers.values():
                    b.mark_used(start, end)
                while self._notes and self._notes[0][0] < start:
                    self._notes.popleft()  # data came back after these reasons
                self._k_next = k + 1
                continue
            if no_data:
                skip = k_last - k + 1 - self.cfg.max_inflight
                if skip > 0:  # a long outage: keep the newest, count the rest
                    self.acct.segments_dropped["backlog"] += skip
                    self._k_next = k + skip
                    continue
                due.append((k, self._due_wall(end), False))
                self._k_next = k + 1
                continue
            nxt = [t for t in (b.next_time(start, unused_only=final)
                               for b in self.buffers.values()) if t is not None]
            if final and not nxt:
                break  # at the end, windows holding only used frames are not counted
            k_new = k_last + 1 if not nxt else min(k_last + 1,
                                                     max(k + 1, self._first_window(min(nxt))))
            self.acct.empty_windows += k_new - k
            self._k_next = k_new
        return due

    def _evict(self) -> None:
        """Release frames no window still to come can use (after packing)."""
        horizon = math.inf if self._k_next is None else self._k_next * self.hop_s
        for b in self.buffers.values():
            b.evict_before(horizon)

    def _due_wall(self, end: float) -> float:
        """Monotonic time at which the window became due (live) or was found due."""
        if self.cfg.live and self._t0_wall is not None:
            return self._t0_wall + end + self.cfg.grace_s
        return self._monotonic()

    def _emit(self, final: bool) -> list[Result]:
        with self._lock:
            plan = self._plan(self._due_now(final))
        out: list[Result] = []
        for kind, what, extra in plan:
            if kind == "batch":
                out.extend(self._infer(what, *extra))
            else:
                out.append(self._no_data_result(what, extra))
        return self._hand_out(out)

    def _due_now(self, final: bool) -> list:
        """The due windows (under the lock), a live backlog past max_inflight dropped."""
        due = self._collect(final)
        if self.cfg.live and not final and len(due) > self.cfg.max_inflight:
            self.acct.segments_dropped["backlog"] += len(due) - self.cfg.max_inflight
            due = due[-self.cfg.max_inflight:]
        return due

    def _plan(self, due: list) -> list:
        """Pack due windows (under the lock) in window order: ``("batch", run, packed)`` of
        at most max_batch windows with frames, ``("no_data", window, reasons)`` for the
        rest; then release frames no later window uses."""
        plan, run = [], []
        for item in due + [None]:
            if item is not None and item[2]:
                run.append(item)
                if len(run) < self.cfg.max_batch:
                    continue
            if run:
                plan.append(("batch", run, self._pack([k * self.hop_s for k, _, _ in run])))
                run = []
            if item is not None and not item[2]:
                plan.append(("no_data", item, self._reasons(item[0])))
        self._evict()
        return plan

    def _pack(self, starts: list[float]):
        """(the lock held) What a plan's batch entry carries: the packed feeds."""
        return self.packer.pack(self.buffers, starts, self._monotonic)

    def _infer(self, due, feeds, t_pack: float, t_start: float) -> list[Result]:
        t0 = time.perf_counter()
        try:
            with self._infer_lock:
                scores = self._guard.run(feeds)
        except BackendFailed as e:
            self._backend_failed(len(due), e)
            return []
        t_infer = time.perf_counter() - t0
        lo, hi = self.spec.output.score_range
        results = []
        for i, (k, due_wall, _) in enumerate(due):
            score = float(min(max(scores[i], lo), hi))
            wait = max(0.0, t_start - due_wall) if self.cfg.live else 0.0
            lat = {"wait": wait * 1e3, "pack": t_pack * 1e3 / len(due),
                   "infer": t_infer * 1e3 / len(due)}
            lat["total"] = lat["wait"] + lat["pack"] + lat["infer"]
            t_a, t_b = self._result_times(k)
            mods, frames = self.packer.present(feeds, i)
            r = Result(segment=k, t_start=t_a, t_end=t_b, score=score,
                       label=self.spec.label(score), modalities=mods, frames=frames,
                       latency_ms=lat, backend=self.backend.name, batch=len(due))
            self.latency.add(lat)
            results.append(r)
        with self.acct.lock:
            self.acct.segments += len(results)
        return results

    def stats(self) -> dict:
        s = self.acct.snapshot()
        with self._lock:
            s["pending"] = self.acct.pending(self.buffers.values())
            s["accounting_ok"] = self.acct.check(self.buffers.values())
            s["time_base"] = self.timebase.stats()
        s["latency_ms"] = self.latency.summary()
        s["backend"] = self.backend.name
        if self._failure is not None:
            s["error"] = str(self._failure)
        return s
