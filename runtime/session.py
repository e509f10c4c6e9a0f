"""The streaming core and the embedding API.

Frames are pushed per modality with timestamps (seconds since stream start); segments of
``window_s`` every ``hop_s`` are packed and scored once they are due:

* *live* (cameras, microphones, or paced replay): a window is due ``grace_s`` after its
  end on the session's monotonic clock, whatever has arrived;
* *as fast as possible* (files): a window is due once a frame at or after its end has
  arrived (sources deliver frames in time order), or at the end of the stream.

At the deadline a modality with no frame in the window is absent (modality mask 0) and
slots without a frame are masked. Policy for bad timing: per modality, timestamps must
increase; a repeat is dropped as ``duplicate``, an earlier one as ``out_of_order``, one
older than the next window to emit as ``late`` — all counted (see buffers.py). Windows in
which no modality has any frame are skipped and counted as ``empty_windows``.

Embedding::

    session = Session.load("model_dir", on_result=print)   # or iterate session.results()
    session.start()                                        # background worker (optional)
    session.push("audio", t, x)                            # thread-safe, from any thread
    session.close()                                        # flushes the last windows
"""
from __future__ import annotations

import dataclasses
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from hrlf.kernels.pack import pack_segments_numpy, pack_windows, resolve_device
from hrlf.runtime.backends.base import Backend, open_backend
from hrlf.runtime.buffers import Accounting, ModalityBuffer
from hrlf.runtime.errors import InputError
from hrlf.runtime.protocol import condition_modalities, parse_condition
from hrlf.runtime.sinks import LatencyStats, Result
from hrlf.runtime.spec import MODALITIES, MODALITY_MASK, ModelSpec, frame_mask_name

EPS = 1e-9
#: |z-score| beyond which a packed slot is treated as broken: finite in FP16 (max 65504).
Z_LIMIT = 1e4


@dataclass
class SessionConfig:
    """Streaming settings; ``None`` window/hop mean the spec's.

    Attributes:
        live: deadlines from the monotonic clock (True) or from the data (False).
        grace_s: live only: how long after a window's end late frames may still arrive.
        max_batch: most due windows scored in one backend call.
        max_inflight: live only: most due windows kept when inference falls behind; older
            ones are dropped and counted (``segments_dropped.backlog``).
        buffer_s: seconds of frames each modality buffer holds (drop-oldest beyond).
        condition: keep only these modalities (``la``, ``{l,v}``, ...); others are dropped.
        drops: scheduled outages ``(modality, t_from, t_to)``: frames inside are dropped.
        device: where windows are packed: ``cpu`` (numpy) or ``cuda`` (fused kernel).
    """

    window_s: float | None = None
    hop_s: float | None = None
    live: bool = False
    grace_s: float = 0.1
    max_batch: int = 32
    max_inflight: int = 8
    buffer_s: float = 30.0
    condition: str | None = None
    drops: list = field(default_factory=list)
    device: str = "cpu"


class Session:
    """One stream through one model. Thread-safe; see the module docstring."""

    def __init__(self, backend: Backend, spec: ModelSpec, config: SessionConfig | None = None,
                 on_result: Callable[[Result], None] | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.backend, self.spec = backend, spec
        self._monotonic = monotonic  # injectable for tests of live deadlines
        self.cfg = c = config or SessionConfig()
        self.window_s = float(c.window_s or spec.window_s)
        self.hop_s = float(c.hop_s or spec.hop_s)
        if not (self.window_s > 0 and self.hop_s > 0):
            raise InputError("window/hop: must be positive seconds; fix --window/--hop")
        self.n_frames = {m: max(1, round(self.window_s * spec.features[m].frame_rate_hz))
                         for m in MODALITIES}
        self.kept = set(condition_modalities(parse_condition(c.condition))) if c.condition \
            else set(MODALITIES)
        for m, _, _ in c.drops:
            if m not in MODALITIES:
                raise InputError(f"drop schedule: unknown modality '{m}'; use text, audio or vision")
        self.acct = Accounting()
        self.buffers = {m: ModalityBuffer(m, spec.dim(m), max(64, math.ceil(
            spec.features[m].frame_rate_hz * max(c.buffer_s, 2 * self.window_s))), self.acct)
            for m in MODALITIES}
        self.norm = {m: (np.asarray(spec.norm[m]["mean"], np.float32),
                         np.asarray(spec.norm[m]["std"], np.float32)) for m in MODALITIES}
        self.latency = LatencyStats()
        self.pack_device = resolve_device(c.device)  # 'auto' decides (and logs) once
        # the spec as packed: a window override changes the frames per window
        self.pack_spec = spec.replace(window_s=self.window_s, features={
            m: dataclasses.replace(spec.features[m], frames=self.n_frames[m]) for m in MODALITIES})
        self.on_result = on_result
        self._results: queue.Queue = queue.Queue(maxsize=1000)
        self._lock = threading.RLock()
        self._infer_lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._k_next: int | None = None  # index of the next window to emit
        self._watermark = -math.inf
        self._t0_wall: float | None = None
        self._thread: threading.Thread | None = None
        self._stop = False
        self.closed = False

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def load(cls, model_dir: str | None = None, backend: str = "auto",
             config: SessionConfig | None = None, on_result=None, **backend_opts) -> "Session":
        """Open a MODEL_DIR (default: the demo model shipped in the package)."""
        from hrlf.runtime.assets import demo_model_dir

        model_dir = model_dir or demo_model_dir()
        spec = ModelSpec.load(model_dir)
        be = open_backend(backend, model_dir, spec, **backend_opts)
        return cls(be, spec, config, on_result)

    # ---- input -----------------------------------------------------------------------
    def clock(self) -> float:
        """Seconds on the session's monotonic clock (0 at the first push or start())."""
        if self._t0_wall is None:
            self._t0_wall = self._monotonic()
        return self._monotonic() - self._t0_wall

    def push(self, modality: str, t: float, x) -> bool:
        """Add one frame; returns False when it was dropped (and counted with its reason)."""
        with self._lock:
            if self._t0_wall is None:
                self._t0_wall = self._monotonic()
            self.acct.received += 1
            reason, arr = self._check(modality, t, x)
            if reason is not None:
                self.acct.dropped[reason] += 1
                return False
            t = float(t)
            self.buffers[modality].append(t, arr)
            if t > self._watermark:
                self._watermark = t
            if self._k_next is None:
                self._k_next = self._first_window(t)
            if self._thread is not None:
                self._wake.notify()
            return True

    def _check(self, modality: str, t, x) -> tuple[str | None, np.ndarray | None]:
        """(drop reason or None, the frame as float32)."""
        buf = self.buffers.get(modality)
        if buf is None:
            return "unknown_modality", None
        try:
            t = float(t)
            arr = x if isinstance(x, np.ndarray) and x.dtype == np.float32 else np.asarray(x, np.float32)
        except (TypeError, ValueError):
            return "malformed_frame", None
        if arr.shape != (buf.dim,):
            return "wrong_dim", None
        if not math.isfinite(t) or t < 0:
            return "bad_timestamp", None
        # NaN/Inf propagate into the sum, and a float64 sum of float32 values cannot
        # overflow: a finite sum <=> every value finite (cheaper than isfinite().all())
        if not math.isfinite(np.add.reduce(arr, dtype=np.float64)):
            return "nonfinite", None
        if modality not in self.kept:
            return "condition", None
        for m, a, b in self.cfg.drops:
            if m == modality and a <= t < b:
                return "drop_schedule", None
        if t == buf.last_t:
            return "duplicate", None
        if t < buf.last_t:
            return "out_of_order", None
        if self._k_next is not None and t < self._k_next * self.hop_s - EPS:
            return "late", None
        return None, arr

    def _first_window(self, t: float) -> int:
        return max(0, math.floor((t - self.window_s) / self.hop_s + EPS) + 1)

    # ---- segments --------------------------------------------------------------------
    def ready(self) -> bool:
        """True when a reader of a file source should call advance() before pushing more:
        a full batch of windows is due, or a buffer is 3/4 full (so that as-fast-as-possible
        reading never overflows a buffer; live sources rely on the clock and drop-oldest)."""
        if self._k_next is None:
            return False
        due = math.floor((self._watermark - self.window_s) / self.hop_s + EPS) - self._k_next + 1
        return due >= self.cfg.max_batch or any(
            4 * len(b) >= 3 * b.capacity for b in self.buffers.values())

    def advance(self) -> list[Result]:
        """Score every window that is due now; returns their results (also delivered)."""
        return self._emit(final=False)

    def finish(self) -> list[Result]:
        """End of stream: score the remaining windows that hold unused frames."""
        return self._emit(final=True)

    def _due(self, end: float, final: bool) -> bool:
        if final:
            return True
        if self.cfg.live:
            return self.clock() >= end + self.cfg.grace_s
        return self._watermark >= end - EPS

    def _collect(self, final: bool) -> list[tuple[int, float]]:
        """Due windows (index, due wall time), advancing the window pointer."""
        due = []
        while self._k_next is not None:
            k = self._k_next
            start, end = k * self.hop_s, k * self.hop_s + self.window_s
            if not self._due(end, final):
                break
            if final:  # at the end only windows with frames no segment used yet
                firsts = [t for t in (b.first_time() for b in self.buffers.values())
                          if t is not None]
                has_data = any(t < end for t in firsts)
            else:
                has_data = any(_has_frames(b, start, end) for b in self.buffers.values())
            if has_data:
                due.append((k, self._due_wall(end)))
                for b in self.buffers.values():
                    b.mark_used(start, end)
                self._k_next = k + 1
            else:
                nxt = firsts if final else [t for t in (b.first_time() for b in
                                                        self.buffers.values()) if t is not None]
                if not nxt:  # nothing buffered at all
                    if final:
                        self._k_next = None
                        break
                    self._k_next = k + 1
                    self.acct.empty_windows += 1
                    continue
                k_new = max(k + 1, self._first_window(min(nxt)))
                self.acct.empty_windows += k_new - k
                self._k_next = k_new
        return due

    def _evict(self) -> None:
        """Release frames no window still to come can use (after packing)."""
        horizon = math.inf if self._k_next is None else self._k_next * self.hop_s - EPS
        for b in self.buffers.values():
            b.evict_before(horizon)

    def _due_wall(self, end: float) -> float:
        """Monotonic time at which the window became due (live) or was found due."""
        if self.cfg.live and self._t0_wall is not None:
            return self._t0_wall + end + self.cfg.grace_s
        return self._monotonic()

    def _emit(self, final: bool) -> list[Result]:
        with self._lock:
            due = self._collect(final)
            if self.cfg.live and not final and len(due) > self.cfg.max_inflight:
                self.acct.segments_dropped["backlog"] += len(due) - self.cfg.max_inflight
                due = due[-self.cfg.max_inflight:]
            batches = [due[i:i + self.cfg.max_batch] for i in range(0, len(due), self.cfg.max_batch)]
            packed = [self._pack(b) for b in batches]
            self._evict()
        out = []
        for batch, (feeds, t_pack, t_start) in zip(batches, packed):
            out.extend(self._infer(batch, feeds, t_pack, t_start))
        return out

    def _pack(self, due: list[tuple[int, float]]):
        t_start, t_perf = self._monotonic(), time.perf_counter()
        starts = np.array([k * self.hop_s for k, _ in due])
        feeds = {}
        present = np.zeros((len(due), len(MODALITIES)), np.float32)
        if self.pack_device == "cuda":  # every modality in one kernel launch
            feeds = pack_windows(self.pack_spec, {m: (b.frames(), b.times())
                                                  for m, b in self.buffers.items()},
                                 starts, device="cuda")
        else:
            for m in MODALITIES:
                b, f = self.buffers[m], self.spec.features[m]
                feeds[m], feeds[frame_mask_name(m)] = pack_segments_numpy(
                    b.frames(), b.times(), starts, window_s=self.window_s,
                    rate_hz=f.frame_rate_hz, n_frames=self.n_frames[m],
                    mean=self.norm[m][0], std=self.norm[m][1])
        for i, m in enumerate(MODALITIES):
            x, mask = feeds[m], feeds[frame_mask_name(m)]
            if not (np.minimum.reduce(x, axis=None, initial=0.0) >= -Z_LIMIT
                    and np.maximum.reduce(x, axis=None, initial=0.0) <= Z_LIMIT):
                self._mask_out_of_range(x, mask)
            present[:, i] = mask.any(axis=1)
        feeds[MODALITY_MASK] = present
        return feeds, time.perf_counter() - t_perf, t_start

    def _mask_out_of_range(self, x: np.ndarray, mask: np.ndarray) -> None:
        """Zero and mask slots whose z-scores are absurd (a finite but broken frame), so that
        no Inf reaches the model, FP16 included; counted as ``slots_out_of_range``."""
        bad = ~(np.abs(x) <= Z_LIMIT).all(axis=-1)
        x[bad] = 0.0
        mask[bad] = 0.0
        with self.acct.lock:
            self.acct.slots_out_of_range += int(bad.sum())

    def _infer(self, due, feeds, t_pack: float, t_start: float) -> list[Result]:
        t0 = time.perf_counter()
        with self._infer_lock:
            scores = self.backend.run(feeds)
        t_infer = time.perf_counter() - t0
        lo, hi = self.spec.output.score_range
        results = []
        for i, (k, due_wall) in enumerate(due):
            score = float(min(max(scores[i], lo), hi))
            wait = max(0.0, t_start - due_wall) if self.cfg.live else 0.0
            lat = {"wait": wait * 1e3, "pack": t_pack * 1e3 / len(due),
                   "infer": t_infer * 1e3 / len(due)}
            lat["total"] = lat["wait"] + lat["pack"] + lat["infer"]
            r = Result(segment=k, t_start=k * self.hop_s, t_end=k * self.hop_s + self.window_s,
                       score=score, label=self.spec.label(score),
                       modalities=[m for j, m in enumerate(MODALITIES)
                                   if feeds[MODALITY_MASK][i, j] > 0],
                       frames={m: int(feeds[frame_mask_name(m)][i].sum()) for m in MODALITIES},
                       latency_ms=lat, backend=self.backend.name, batch=len(due))
            self.latency.add(lat)
            results.append(r)
            self._deliver(r)
        with self.acct.lock:
            self.acct.segments += len(results)
        return results

    def _deliver(self, r: Result) -> None:
        if self.on_result is not None:
            self.on_result(r)
        elif self._thread is not None:
            while True:
                try:
                    self._results.put_nowait(r)
                    return
                except queue.Full:  # nobody reads: drop the oldest result, counted
                    try:
                        self._results.get_nowait()
                        self.acct.segments_dropped["result_queue_full"] += 1
                    except queue.Empty:
                        pass

    # ---- background worker -------------------------------------------------------------
    def start(self, poll_s: float = 0.005) -> "Session":
        """Score due windows on a background thread; results go to on_result/results()."""
        if self._thread is None:
            self.clock()
            self._thread = threading.Thread(target=self._work, args=(poll_s,), daemon=True,
                                            name="hrlf-session")
            self._thread.start()
        return self

    def _work(self, poll_s: float) -> None:
        while True:
            with self._lock:
                if self._stop:
                    break
                self._wake.wait(timeout=poll_s)
            self.advance()

    def results(self, timeout_s: float | None = None) -> Iterator[Result]:
        """Results in order until close(); ``timeout_s`` ends the iteration when idle."""
        while True:
            try:
                r = self._results.get(timeout=timeout_s if timeout_s is not None else 0.05)
            except queue.Empty:
                if self.closed or timeout_s is not None:
                    return
                continue
            if r is None:
                return
            yield r

    def close(self) -> list[Result]:
        """Stop the worker, score the remaining windows, and end results()."""
        if self.closed:
            return []
        with self._lock:
            self._stop = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join()
        out = self.finish()
        self.closed = True
        if self._thread is not None:
            self._results.put(None)
        self.backend.close()
        return out

    def stats(self) -> dict:
        s = self.acct.snapshot()
        with self._lock:
            s["pending"] = self.acct.pending(self.buffers.values())
            s["accounting_ok"] = self.acct.check(self.buffers.values())
        s["latency_ms"] = self.latency.summary()
        s["backend"] = self.backend.name
        return s


def _has_frames(buf: ModalityBuffer, start: float, end: float) -> bool:
    ts = buf.times()
    return np.searchsorted(ts, end, "left") > np.searchsorted(ts, start, "left")
