"""Many streams' frames in one call: :meth:`Hub.push_batch`, what a gateway that receives
the chunks of many calls or cameras at once uses instead of one ``push_many`` per stream.

``hub.push_batch("audio", streams, times, frames)`` pushes ``frames[i]`` (rows at
``times[i]``) to ``streams[i]`` for every i, with exactly the contract and the counts of
``streams[i].push_many(...)`` called in order: each stream validates, refuses and counts
its own frames (``stats()["dropped"]`` by reason), so one stream's bad frame never touches
another's. The batch call never raises for one stream's frames: a stream that is closed or
stopped takes nothing (nothing counted, as ``push`` would raise before counting) and is
flagged in the returned :class:`BatchPushed`; a ``strict`` stream's refusals are counted
and reported there instead of raised. It raises only for a malformed call (nothing is
pushed then): a modality that is not a string, unknown stream names, lengths that differ.

What it saves over per-stream calls: the checks that need numpy (stream times, their
order and range, every frame finite) run once over the whole batch, and the hub's
scheduler is told about all the streams under one lock, so the per-stream part is a few
scalar checks under the stream's lock and the copy into its buffer. Measured
(``bench/streams.py --feed batch|per-stream``, 2,000 streams of 250 ms chunks, rounds
every 5 ms): the feeding costs about what per-stream calls cost (0.22 against 0.21 of a
core): that per-stream part dominates, and a call adds ~50 us of numpy work, paid back
only by calls of tens of streams.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .frames import T_MAX
from .session_config import SessionError


@dataclass(frozen=True)
class BatchPushed:
    """The outcome of :meth:`Hub.push_batch`, per stream (in the order given).

    Attributes:
        accepted: frames accepted (int array).
        refused: frames refused, each counted in that stream's ``stats()["dropped"]``.
        closed: True where the stream was closed or stopped: its frames from there on
            were neither taken nor counted (``accepted + refused`` of them were).
    """

    accepted: np.ndarray
    refused: np.ndarray
    closed: np.ndarray

    @property
    def total(self) -> int:
        """Frames accepted over all streams."""
        return int(self.accepted.sum())


class Pushing:
    """Mixin of :class:`~hrlf.runtime.hub.Hub`: :meth:`push_batch`."""

    def push_batch(self, modality: str, streams, times, frames) -> BatchPushed:
        """Push a chunk of one modality to each of many streams (row j of ``frames[i]`` at
        ``times[i][j]`` to ``streams[i]``); same contract and counts as
        ``streams[i].push_many(modality, times[i], frames[i])`` in order (module docstring).

        Args:
            modality: "text", "audio" or "vision" (another string: every frame refused
                and counted as ``unknown_modality``).
            streams: HubStreams of this hub, or their names; a stream may appear more
                than once (its chunks are pushed in the order given). A closed stream's
                name leaves the hub: pass HubStreams where other threads may close them.
            times: per stream, its frames' timestamps (seconds, increasing).
            frames: per stream, its frames (float32 arrays of shape (n, dim) take the fast
                path; anything ``push`` takes works).

        Raises:
            TypeError: ``modality`` is not a string (nothing is pushed).
            InputError: a stream name that is not in this hub, or ``streams``, ``times``
                and ``frames`` (or one stream's times and frames) of different lengths
                (nothing is pushed).
        """
        if not isinstance(modality, str):
            raise TypeError(f"push_batch: modality must be a str such as 'audio', not "
                            f"{type(modality).__name__}")
        ss = self._resolve_streams(streams)
        sizes = _sizes(ss, times, frames)
        clean = _prepare(modality, ss, times, frames, sizes)
        accepted = np.zeros(len(ss), np.int64)
        refused = np.zeros(len(ss), np.int64)
        closed = np.zeros(len(ss), bool)
        for i, s in enumerate(ss):
            c = clean[i]
            try:
                n = None if c is None else s._store_clean(*c)
                if n is None and c is not None:  # an earlier chunk of this call moved
                    n = s._fast_chunk(modality, times[i], frames[i])  # its origin
            except SessionError:  # closed or stopped: nothing counted
                closed[i] = True
                continue
            if n is None:  # anything unusual: exactly the per-frame path
                n, refused[i], closed[i] = _push_each(s, modality, times[i], frames[i])
            accepted[i] = n
        self._pushed_all(ss)
        return BatchPushed(accepted, refused, closed)

    def _resolve_streams(self, streams) -> list:
        """Streams or names -> this hub's HubStreams (one lock for all the names)."""
        ss = list(streams)
        with self._lock:
            known = self._streams
            for i, s in enumerate(ss):
                if s.__class__ is str:
                    got = known.get(s)
                    if got is None:
                        raise InputError(f"push_batch: no stream named '{s}' in this hub "
                                         f"(streams[{i}]); add it with add_stream first")
                    ss[i] = got
                elif getattr(s, "hub", None) is not self:
                    raise InputError(f"push_batch: streams[{i}] is not a stream of this hub; "
                                     "pass its HubStreams or their names")
        return ss

    def _pushed_all(self, streams: list) -> None:
        """Like ``_pushed`` for many streams: the worker will look at each (one lock)."""
        need = [s for s in streams if not s.cfg.live
                or (not s.in_heap and s._k_next is not None)]
        if not need:
            return
        with self._lock:
            for s in need:
                if s.cfg.live:
                    self._schedule(s)
                else:
                    self._dirty.add(s)
            self._cv.notify()


def _sizes(streams: list, times, frames) -> np.ndarray:
    """Frames per stream; InputError when the lengths do not pair up."""
    if not (len(times) == len(frames) == len(streams)):
        raise InputError(f"push_batch: {len(streams)} streams, {len(times)} time arrays and "
                         f"{len(frames)} frame arrays; pass one of each per stream")
    sizes = np.zeros(len(streams), np.int64)
    for i, (t, x) in enumerate(zip(times, frames)):
        try:
            nt, nx = len(t), len(x)
        except TypeError:
            raise InputError(f"push_batch: stream '{streams[i].name}' (index {i}): times and "
                             "frames must be sequences (arrays) of equal length") from None
        if nt != nx:
            raise InputError(f"push_batch: stream '{streams[i].name}' (index {i}) has {nt} "
                             f"times but {nx} frames; pass one time per frame")
        sizes[i] = nt
    return sizes


def _prepare(modality: str, streams: list, times, frames, sizes) -> list:
    """Per stream, the arguments of its ``_store_clean`` when its chunk passes the checks
    that need numpy (types and shapes, times in range and strictly increasing, frames
    finite), done once over the whole batch; None where it does not."""
    out: list = [None] * len(streams)
    bufs = [s._chunk_buffer(modality, t, x) for s, t, x in zip(streams, times, frames)]
    take = [i for i, b in enumerate(bufs) if b is not None]
    if not take:
        return out
    n = sizes[take]
    ends = np.cumsum(n)
    starts = ends - n
    t = np.concatenate([times[i] for i in take], dtype=np.float64)
    origin = np.fromiter((streams[i].timebase.origin for i in take), np.float64, len(take))
    st = t - np.repeat(origin, n)  # stream times (origins checked again under each lock)
    rise = np.empty(len(st), bool)
    rise[1:] = st[1:] > st[:-1]
    rise[starts] = True
    ok = np.logical_and.reduceat(rise, starts) & (t[starts] >= 0.0) & (t[ends - 1] <= T_MAX)
    ok &= _finite(take, frames, n, starts)
    s0, s1, o, a, b = (st[starts].tolist(), st[ends - 1].tolist(), origin.tolist(),
                       starts.tolist(), ends.tolist())
    for j in np.flatnonzero(ok).tolist():
        i = take[j]
        out[i] = (bufs[i], st[a[j]:b[j]], s0[j], s1[j], frames[i], o[j])
    return out


def _finite(take: list, frames, n: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per chunk of ``take``: every value finite (one pass over all of them)."""
    dims = {frames[i].shape[1] for i in take}
    if len(dims) > 1:  # streams of different models: one check each
        return np.fromiter((np.isfinite(np.add.reduce(frames[i], axis=None)) for i in take),
                           bool, len(take))
    x = np.concatenate([frames[i] for i in take])
    if np.isfinite(np.add.reduce(x, axis=None)):
        return np.ones(len(take), bool)
    return np.logical_and.reduceat(np.isfinite(x).all(axis=1), starts)


def _push_each(s, modality: str, times, frames) -> tuple[int, int, bool]:
    """Frame by frame, as ``push``; a strict stream's refusals are counted, not raised.
    Returns (accepted, refused, closed): a closed or stopped stream counts nothing more."""
    ok = bad = 0
    for t, x in zip(times, frames):
        try:
            if s.push(modality, t, x):
                ok += 1
            else:
                bad += 1
        except InputError:  # strict: refused and counted by push
            bad += 1
        except SessionError:  # closed or stopped: push counts nothing then
            return ok, bad, True
    return ok, bad, False
