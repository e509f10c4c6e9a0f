"""Window packing, the numpy reference: every other path (the fused CUDA kernel in
``pack.cu``, the hub's one-pass packing) computes exactly this. Semantics are in
:mod:`hrlf.kernels.pack`; this module needs numpy only and imports nothing of hrlf, so
every layer may use it.
"""
from __future__ import annotations

import numpy as np

#: Slack so that a frame stamped exactly on a slot boundary lands in the later slot
#: despite float rounding of ``(t - t0) * rate_hz``.
SLOT_EPS = 1e-6


def window_index(times: np.ndarray, starts: np.ndarray, window_s: float):
    """Frame index ranges ``[lo, hi)`` per window, for ascending ``times``."""
    lo = np.searchsorted(times, starts, side="left")
    hi = np.searchsorted(times, starts + window_s, side="left")
    return lo, hi


def pack_segments_numpy(frames: np.ndarray, times: np.ndarray, starts: np.ndarray, *,
                        window_s: float, rate_hz: float, n_frames: int, mean: np.ndarray,
                        std: np.ndarray, out_frames: int | None = None,
                        dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Pack B windows of one modality (numpy reference).

    Args:
        frames: (N, d) raw features, rows in ascending time order.
        times: (N,) timestamps in seconds, ascending.
        starts: (B,) window start times in seconds.
        window_s: window length in seconds.
        rate_hz: the spec's frame rate for this modality.
        n_frames: the spec's frames per window.
        mean, std: (d,) normalization statistics.
        out_frames: padded frame count (>= n_frames); defaults to n_frames.
        dtype: output feature dtype (float32, or float16 for an FP16 engine).

    Returns:
        x: (B, out_frames, d) normalized features in ``dtype``.
        mask: (B, out_frames) float32, 1 for slots holding at least one finite frame.
    """
    frames = np.asarray(frames, dtype=np.float32)
    times = np.asarray(times, dtype=np.float64)
    starts = np.atleast_1d(np.asarray(starts, dtype=np.float64))
    n_seg = len(starts)
    lo, hi = window_index(times, starts, window_s)
    lengths = hi - lo
    if n_seg == 1:  # the streaming case: one contiguous run of frames, no gathering
        fr, t = frames[lo[0]:hi[0]], times[lo[0]:hi[0]]
    else:  # frame index of every (window, frame) pair, window by window
        total = int(lengths.sum())
        idx = np.arange(total) + np.repeat(lo - (np.cumsum(lengths) - lengths), lengths)
        fr, t = frames[idx], times[idx]
    return pack_runs(fr, t, lengths, starts, rate_hz=rate_hz, n_frames=n_frames, mean=mean,
                     std=std, out_frames=out_frames, dtype=dtype)


def pack_runs(fr: np.ndarray, t: np.ndarray, lengths: np.ndarray, starts: np.ndarray, *,
              rate_hz: float, n_frames: int, mean: np.ndarray, std: np.ndarray,
              out_frames: int | None = None, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Pack B windows whose frames are given window after window: the first
    ``lengths[0]`` rows of ``fr`` (times ``t``) belong to window 0, and so on, each inside
    its window ``[starts[i], starts[i] + window_s)`` (as :func:`window_index` selects them).
    What :func:`pack_segments_numpy` computes once it has found each window's frames; a
    caller that cut the windows out of several buffers packs them in one pass.

    Args:
        fr: (N, d) float32 frames; t: (N,) float64 times; lengths: (B,) frames per window;
        starts: (B,) float64 window starts; the rest as :func:`pack_segments_numpy`.
    """
    out_frames = n_frames if out_frames is None else int(out_frames)
    if out_frames < n_frames:
        raise ValueError(f"out_frames {out_frames} < frames per window {n_frames}")
    n_seg, dim = len(starts), fr.shape[1]
    x = np.zeros((n_seg * out_frames, dim), np.float32)
    mask = np.zeros(n_seg * out_frames, np.float32)
    total = len(fr)
    if total:
        seg = np.zeros(total, np.int64) if n_seg == 1 else np.repeat(np.arange(n_seg), lengths)
        slot = np.floor((t - starts[seg]) * rate_hz + SLOT_EPS).astype(np.int64)
        np.minimum(slot, n_frames - 1, out=slot)  # t >= start, so slot >= 0 already
        # a finite float64 sum <=> every value finite; only then skip the per-row check
        with np.errstate(invalid="ignore"):  # inf + -inf = nan is the point here
            total_sum = np.add.reduce(fr, axis=None, dtype=np.float64)
        if not np.isfinite(total_sum):
            ok = np.isfinite(fr).all(axis=1)
            fr, seg, slot = fr[ok], seg[ok], slot[ok]
        flat = seg * out_frames + slot  # non-decreasing: times ascend within each window
        if len(flat):  # a z-score beyond float32 range becomes inf, as on the GPU: the
            # runtime masks such slots (Session: slots_out_of_range), so no warning here
            _pack_slots(x, mask, fr, flat, mean, std)
    return (x.reshape(n_seg, out_frames, dim).astype(dtype, copy=False),
            mask.reshape(n_seg, out_frames))


def _pack_slots(x, mask, fr, flat, mean, std) -> None:
    """Write each slot's mean frame, z-normalized, into ``x`` (flat slot order)."""
    change = flat[1:] != flat[:-1]
    with np.errstate(over="ignore"):
        if change.all():  # one frame per slot, the usual case: no averaging needed
            x[flat] = (fr.astype(np.float64) - mean) / std
            mask[flat] = 1.0
            return
        first = np.flatnonzero(np.concatenate(([True], change)))
        sums = np.add.reduceat(fr.astype(np.float64), first, axis=0)
        counts = np.diff(first, append=len(flat))
        x[flat[first]] = (sums / counts[:, None] - mean) / std
        mask[flat[first]] = 1.0
