"""Built-in sources: ``demo``, ``replay:PATH[#split]`` and ``stdin``.

* ``demo[:SEED]``: a synthetic recording from the generator the model was trained on
  (its spec's data fingerprint holds the generator config), with scripted outages so the
  output shows the model coping: audio gone 8-14 s, vision 12-18 s, text 20-24 s.
* ``replay:PATH``: a feature file replayed in time order. ``.npz`` either in the replay
  layout (``<modality>_t`` (N,), ``<modality>_x`` (N, d), optional ``label_knots``,
  ``label_values``, ``duration_s``, ``featurizers`` as JSON), or the CMU-MOSI
  ``mosi_utterance.npz`` (``#test`` by default; clip k is second [k, k+1)). ``.jsonl``:
  lines as for stdin.
* ``stdin``: JSON lines ``{"t": 12.4, "modality": "audio", "x": [...]}``; a malformed line
  is a counted drop (``malformed_bytes`` for bytes that are not UTF-8, ``line_too_long``
  beyond 1 MiB, ``malformed_json``, ``malformed_event``), never the end of the stream. A
  read error ends the stream (``read_error``) as an end of file would. A pipe or a
  terminal is *live* (``tail -f feats.jsonl | hrlf-run --stream stdin``): windows are due
  by the clock and a gap gives ``no_data`` lines; a redirected file (``< feats.jsonl``) is
  read as fast as possible, as is a pipe with ``live=False`` (``--pace fast``).
"""
from __future__ import annotations

import dataclasses
import json
import os
import queue
import stat
import sys
import threading

import numpy as np

from .recording import Recording
from ..errors import InputError
from .limits import check_npz
from .sources import Drop, Event, ReadResult, Status
from .spec import MODALITIES, ModelSpec

DEMO_OUTAGES = (("audio", 8.0, 14.0), ("vision", 12.0, 18.0), ("text", 20.0, 24.0))
DEMO_DURATION_S = 30.0


class RecordingSource:
    """Replays a :class:`Recording` in time order (all modalities merged), in chunks."""

    live = False

    def __init__(self, uri: str, rec: Recording, featurizers: dict, outages=(), chunk: int = 256):
        self.uri, self.rec, self.featurizers, self.chunk = uri, rec, featurizers, chunk
        self.end_t = rec.duration_s
        self.outages = tuple(outages)
        self._missing = {m for m in MODALITIES if len(rec.times.get(m, ())) == 0}
        t, mod, row = [], [], []
        for i, m in enumerate(MODALITIES):
            ts = np.asarray(rec.times.get(m, np.empty(0)), np.float64)
            keep = np.ones(len(ts), bool)
            for om, a, b in outages:
                if om == m:
                    keep &= ~((ts >= a) & (ts < b))
            idx = np.flatnonzero(keep)
            t.append(ts[idx])
            mod.append(np.full(len(idx), i))
            row.append(idx)
        t, mod, row = np.concatenate(t), np.concatenate(mod), np.concatenate(row)
        order = np.lexsort((mod, t))
        self._t, self._mod, self._row = t[order], mod[order], row[order]
        self._pos = 0

    def read(self, timeout_s: float = 0.0) -> ReadResult:
        if self._pos >= len(self._t):
            return ReadResult(Status.EOS)
        sl = slice(self._pos, self._pos + self.chunk)
        self._pos = sl.stop
        events = [Event(float(t), MODALITIES[m], self.rec.frames[MODALITIES[m]][r])
                  for t, m, r in zip(self._t[sl], self._mod[sl], self._row[sl])]
        return ReadResult(Status.OK, events)

    def reasons(self, t0: float, t1: float) -> dict[str, str]:
        """Why a modality has no frames in ``[t0, t1)``: ``demo_outage`` (a scripted outage
        covers the window) or ``not_in_source`` (the recording has none of it at all)."""
        out = {m: "not_in_source" for m in self._missing}
        for m, a, b in self.outages:
            if a < t1 and b > t0:
                out.setdefault(m, "demo_outage")
        return out

    def truth(self, t0: float, t1: float) -> float | None:
        """Mean ground-truth sentiment over ``[t0, t1)`` when the recording has labels."""
        if len(self.rec.knots) == 0 or t0 >= self.rec.duration_s:
            return None
        return float(self.rec.label(np.array([t0]), t1 - t0)[0])

    def stats(self) -> dict:
        return {"events_total": int(len(self._t)), "events_read": int(min(self._pos, len(self._t)))}

    def close(self) -> None:
        self._pos = len(self._t)


def open_demo(uri: str, spec: ModelSpec, duration_s: float = DEMO_DURATION_S,
              model_dir: str | None = None, **_) -> RecordingSource:
    """The synthetic demo recording of ``spec``'s data config (``demo:SEED``); with
    ``model_dir``, read from / kept in its cache folder (:mod:`hrlf.runtime.demo_cache`)."""
    from . import demo_cache

    if spec.data.get("source") != "synthetic" or "config" not in spec.data:
        raise InputError(f"{uri}: the demo stream needs a model trained on synthetic data (this "
                         f"one was trained on '{spec.data.get('source')}'); omit MODEL_DIR to use "
                         "the built-in demo model, or use --stream replay:PATH")
    seed = uri.split(":", 1)[1] if ":" in uri else "0"
    if not seed.isdigit():
        raise InputError(f"{uri}: the demo seed must be a whole number, e.g. demo:3")
    key = demo_cache.key(spec.data["config"], int(seed), float(duration_s)) if model_dir else ""
    kept = demo_cache.load(model_dir, key) if model_dir else None
    if kept is not None:
        return RecordingSource(uri, *kept, outages=DEMO_OUTAGES)
    from .synthetic import SyntheticConfig, generate_recordings

    fields = {f.name for f in dataclasses.fields(SyntheticConfig)}
    cfg = SyntheticConfig(**{k: v for k, v in spec.data["config"].items() if k in fields})
    cfg = dataclasses.replace(cfg, duration_s=float(duration_s), seed=int(seed))
    rec = generate_recordings(cfg, "demo", n=1)[0]
    feats = {m: cfg.features()[m].featurizer for m in MODALITIES}
    if model_dir:
        demo_cache.save(model_dir, key, rec, feats)
    return RecordingSource(uri, rec, feats, outages=DEMO_OUTAGES)


def save_replay(path: str, rec: Recording, featurizers: dict | None = None) -> None:
    """Write a recording in the replay ``.npz`` layout."""
    arrays = {}
    for m in MODALITIES:
        if m in rec.times:
            arrays[f"{m}_t"] = np.asarray(rec.times[m], np.float64)
            arrays[f"{m}_x"] = np.asarray(rec.frames[m], np.float32)
    np.savez_compressed(path, label_knots=np.asarray(rec.knots, np.float64),
                        label_values=np.asarray(rec.values, np.float64),
                        duration_s=np.float64(rec.duration_s),
                        featurizers=np.array(json.dumps(featurizers or {})), **arrays)


def _load_npz(path: str, split: str | None) -> tuple[Recording, dict]:
    import zipfile  # here, not at the top: the demo's first result does not wait for them
    import zlib

    from .datasets import MOSI_FEATURIZERS, mosi_recording

    try:
        with np.load(path, allow_pickle=False) as z:
            check_npz(z, path)  # before any array is inflated
            files = set(z.files)
            if "test_text" in files:  # the CMU-MOSI utterance file
                return mosi_recording(path, split or "test"), dict(MOSI_FEATURIZERS)
            times, frames = {}, {}
            for m in MODALITIES:
                if f"{m}_t" in files:
                    times[m], frames[m] = z[f"{m}_t"].astype(np.float64), z[f"{m}_x"].astype(np.float32)
                    if frames[m].ndim != 2 or len(frames[m]) != len(times[m]):
                        raise InputError(f"{path}: {m}_x must be (N, dim) with N = len({m}_t)")
            if not times:
                raise InputError(f"{path}: no '<modality>_t' / '<modality>_x' arrays; write it "
                                 "with hrlf.runtime.stream_sources.save_replay")
            knots = z["label_knots"] if "label_knots" in files else np.empty(0)
            values = z["label_values"] if "label_values" in files else np.empty(0)
            last = max(float(t[-1]) for t in times.values() if len(t)) if times else 0.0
            dur = float(z["duration_s"]) if "duration_s" in files else last
            feats = json.loads(str(z["featurizers"])) if "featurizers" in files else {}
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile,
            zlib.error) as e:  # truncated, corrupt or of the wrong layout
        why = " ".join(str(e).split())[:160]
        raise InputError(f"{path}: not a readable replay file ({type(e).__name__}: {why}); "
                         "pass an .npz written by save_replay, the MOSI npz, or a .jsonl") from None
    for m in MODALITIES:
        times.setdefault(m, np.empty(0))
        frames.setdefault(m, np.empty((0, 1), np.float32))
    return Recording(os.path.basename(path), dur, times, frames, knots, values), feats


_END = object()  # end of input, queued after the last line
MAX_LINE = 1 << 20  # bytes; a longer line is dropped (line_too_long), never buffered whole


class LinesSource:
    """JSON lines from a file object (stdin or a .jsonl file), read on a thread.

    Lines are read as bytes (a text stream's ``buffer`` where it has one) and decoded per
    line, so that no byte sequence can stop the reader: every line becomes an event or a
    counted drop.
    """

    live = False

    def __init__(self, uri: str, stream, featurizers: dict | None = None,
                 live: bool = False):
        self.uri, self.featurizers, self._stream = uri, featurizers or {}, stream
        self.live = bool(live)
        self._q: queue.Queue = queue.Queue(maxsize=10000)
        self._eof = threading.Event()
        self._lines = 0
        self._done = False
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        raw = getattr(stream, "buffer", stream)
        try:
            while True:
                line = raw.readline(MAX_LINE + 1)
                if not line:
                    break
                if len(line) > MAX_LINE and not line.endswith(b"\n" if isinstance(line, bytes)
                                                              else "\n"):
                    while line and not line.endswith(b"\n" if isinstance(line, bytes) else "\n"):
                        line = raw.readline(MAX_LINE)  # skip the rest of the long line
                    self._q.put(Drop("line_too_long", f"over {MAX_LINE} bytes"))
                    continue
                self._q.put(line)
        except (OSError, ValueError) as e:  # a closed or failing stream: end it, counted
            self._q.put(Drop("read_error", f"{type(e).__name__}: {e}"))
        finally:
            self._eof.set()
            self._q.put(_END)  # wakes read() at once

    def _parse(self, line):
        if isinstance(line, Drop):
            return line
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError:
                return Drop("malformed_bytes", repr(line[:80]))
        line = line.strip()
        if not line:
            return None
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):  # JSONDecodeError, int too long, too deep
            return Drop("malformed_json", line[:80])
        if not (isinstance(obj, dict) and isinstance(obj.get("modality"), str)
                and isinstance(obj.get("t"), (int, float)) and not isinstance(obj.get("t"), bool)
                and isinstance(obj.get("x"), list)):
            return Drop("malformed_event", line[:80])
        t = obj["t"]  # an int beyond float range stays an int: the session says bad_timestamp
        return Event(t, obj["modality"], obj["x"])

    def read(self, timeout_s: float = 0.05) -> ReadResult:
        if self._done:
            return ReadResult(Status.EOS)
        try:
            items = [self._q.get(timeout=timeout_s)]
        except queue.Empty:
            return ReadResult(Status.TIMEOUT)
        while len(items) < 1024 and items[-1] is not _END:
            try:
                items.append(self._q.get_nowait())
            except queue.Empty:
                break
        out = ReadResult(Status.OK)
        for line in items:
            if line is _END:
                self._done = True
                out.status = Status.EOS
                continue
            self._lines += 1
            item = self._parse(line)
            if isinstance(item, Drop):
                out.drops.append(item)
            elif item is not None:
                out.events.append(item)
        return out

    def stats(self) -> dict:
        return {"lines": self._lines}

    def close(self) -> None:
        if self._stream is not sys.stdin and self._eof.is_set():
            self._stream.close()


def open_stdin(uri: str, spec: ModelSpec, stream=None, live: bool | None = None,
               **_) -> LinesSource:
    """JSON lines from ``stream`` (default: stdin); ``live`` None: live when it is a pipe,
    a socket or a terminal (see the module docstring)."""
    stream = stream if stream is not None else sys.stdin
    return LinesSource(uri, stream, live=is_live_stream(stream) if live is None else live)


def is_live_stream(stream) -> bool:
    """A pipe, socket or terminal (written as we read); False for a regular file or an
    in-memory stream."""
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return False
    return os.isatty(fd) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)


def open_replay(uri: str, spec: ModelSpec, **_):
    target = uri.split(":", 1)[1] if ":" in uri else ""
    path, _, split = target.partition("#")
    if not path:
        raise InputError(f"{uri}: no file given; use replay:PATH (an .npz or .jsonl)")
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file; give replay: an existing .npz or .jsonl")
    if split and split not in ("train", "valid", "test"):
        raise InputError(f"{uri}: split '{split}' unknown; use #train, #valid or #test")
    if path.endswith(".jsonl"):
        return LinesSource(uri, open(path, "rb"))
    rec, feats = _load_npz(path, split or None)
    return RecordingSource(uri, rec, feats)
