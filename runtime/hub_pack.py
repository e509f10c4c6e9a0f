"""Packing a hub's batch in one pass: windows are cut out of their streams' buffers when
they come due, and the whole batch is packed at once when it is scored.

A lone Session packs its windows where they lie (windows.py, one numpy pass per
modality per call). A hub scores one window of each of many streams per call, and packing
them stream by stream costs ~25 small numpy operations per window and modality, most of
it per-call overhead: at 2,000 streams that was a third of the hub's Python time. So a
hub stream only *cuts* a due window (copies its frames of each modality, two binary
searches and a copy: the buffers move on as frames arrive), and
:func:`pack_batch` packs the cut windows of every stream of the call with the same code
that packs a Session's (``kernels.pack_ref.pack_runs``): identical features and masks, one
pass per modality for the whole batch.
"""
from __future__ import annotations

import copy
import time

import numpy as np

from ..kernels.pack_ref import pack_runs, window_index
from .buffers import Accounting
from .spec import MODALITIES, MODALITY_MASK, frame_mask_name
from .windows import Z_LIMIT


class Cut:
    """One window's frames per modality, copied out of a stream's buffers.

    Attributes:
        start: the window's start (stream seconds).
        parts: modality -> (frames (n, d) float32, times (n,) float64), inside the window.
    """

    __slots__ = ("start", "parts")

    def __init__(self, start: float, parts: dict):
        self.start, self.parts = start, parts


class _Part:
    """A cut modality as ``Packer.pack`` reads a buffer (``frames()``, ``times()``)."""

    __slots__ = ("x", "t")

    def __init__(self, x, t):
        self.x, self.t = x, t

    def frames(self):
        return self.x

    def times(self):
        return self.t


def cut_windows(buffers: dict, starts: list[float], window_s: float) -> list[Cut]:
    """Copy the frames of windows starting at ``starts`` out of ``buffers`` (the stream's
    lock held): the frames :func:`~hrlf.kernels.pack_ref.window_index` selects."""
    at = np.asarray(starts, np.float64)
    spans = {}
    for m in MODALITIES:
        b = buffers[m]
        t = b.t[b.lo:b.hi]
        spans[m] = (b.x[b.lo:b.hi], t, *window_index(t, at, window_s))
    return [Cut(start, {m: (x[lo[i]:hi[i]].copy(), t[lo[i]:hi[i]].copy())
                        for m, (x, t, lo, hi) in spans.items()})
            for i, start in enumerate(starts)]


def pack_batch(rows: list[tuple]) -> tuple[dict, np.ndarray, float]:
    """Feeds for a batch of cut windows, in order.

    Args:
        rows: ``(cut, packer)`` per window (``packer``: its stream's ``Packer``; every
            one with the same frames per window).

    Returns:
        (feeds, slots masked per row for absurd z-scores, seconds spent).
    """
    t0 = time.perf_counter()
    packer = rows[0][1]
    if any(p.device != "cpu" for _, p in rows):  # the GPU packs window by window
        return _pack_each(rows, t0)
    n = len(rows)
    starts = np.fromiter((c.start for c, _ in rows), np.float64, n)
    feeds: dict = {}
    present = np.zeros((n, len(MODALITIES)), np.float32)
    bad_rows = np.zeros(n, np.int64)
    for i, m in enumerate(MODALITIES):
        xs = [c.parts[m][0] for c, _ in rows]
        ts = [c.parts[m][1] for c, _ in rows]
        lengths = np.fromiter((len(t) for t in ts), np.int64, n)
        fr = np.concatenate(xs) if n > 1 else xs[0]
        t = np.concatenate(ts) if n > 1 else ts[0]
        mean, std = packer.norm[m]
        x, mask = pack_runs(fr, t, lengths, starts,
                            rate_hz=packer.spec.features[m].frame_rate_hz,
                            n_frames=packer.n_frames[m], mean=mean, std=std)
        if not (np.minimum.reduce(x, axis=None, initial=0.0) >= -Z_LIMIT
                and np.maximum.reduce(x, axis=None, initial=0.0) <= Z_LIMIT):
            bad = ~(np.abs(x) <= Z_LIMIT).all(axis=-1)  # as Packer._mask_out_of_range
            x[bad] = 0.0
            mask[bad] = 0.0
            bad_rows += bad.sum(axis=1)
        present[:, i] = mask.any(axis=1)
        feeds[m], feeds[frame_mask_name(m)] = x, mask
    feeds[MODALITY_MASK] = present
    return feeds, bad_rows, time.perf_counter() - t0


def _pack_each(rows: list[tuple], t0: float) -> tuple[dict, np.ndarray, float]:
    """Each window packed by its stream's Packer (any device), then stacked; masked slots
    are counted in a scratch Accounting and returned per row, as :func:`pack_batch`."""
    parts, bad_rows = [], []
    for cut, packer in rows:
        scratch = copy.copy(packer)
        scratch.acct = Accounting()
        feeds, _, _ = scratch.pack({m: _Part(*cut.parts[m]) for m in MODALITIES},
                                   [cut.start], time.monotonic)
        parts.append(feeds)
        bad_rows.append(scratch.acct.slots_out_of_range)
    feeds = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return feeds, np.asarray(bad_rows, np.int64), time.perf_counter() - t0
