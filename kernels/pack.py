"""Window packing: timestamped frames of one modality -> the model's input tensor.

This is the single definition of how a window of frames becomes ``(frames, dim)`` features
plus a per-frame mask. Training (synthetic sequences, MOSI clips), offline evaluation and
the streaming runtime all call it, so streaming equals offline by construction. The CUDA
kernel in ``pack.cu`` implements the same semantics for the GPU path.

Semantics, for a window starting at ``t0``:
  * a frame at time ``t`` belongs to the window when ``t0 <= t < t0 + window_s``;
  * its slot is ``min(floor((t - t0) * rate_hz), frames - 1)``;
  * a frame with any NaN/Inf value is ignored (the caller counts it as dropped);
  * a slot's value is the mean of its finite frames, z-normalized with the spec's
    ``mean``/``std``; its mask bit is 1;
  * a slot with no finite frame is 0 with mask bit 0, and so is every padding slot
    beyond ``frames`` (up to ``out_frames``).
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
    out_frames = n_frames if out_frames is None else int(out_frames)
    if out_frames < n_frames:
        raise ValueError(f"out_frames {out_frames} < frames per window {n_frames}")
    n_seg, dim = len(starts), frames.shape[1]
    sums = np.zeros((n_seg * out_frames, dim), np.float64)
    counts = np.zeros(n_seg * out_frames, np.int64)
    lo, hi = window_index(times, starts, window_s)
    lengths = hi - lo
    if lengths.sum():
        seg = np.repeat(np.arange(n_seg), lengths)
        # frame index of every (window, frame) pair, window by window
        idx = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi) if b > a])
        slot = np.floor((times[idx] - starts[seg]) * rate_hz + SLOT_EPS).astype(np.int64)
        slot = np.clip(slot, 0, n_frames - 1)
        ok = np.isfinite(frames[idx]).all(axis=1)
        flat = seg[ok] * out_frames + slot[ok]
        np.add.at(sums, flat, frames[idx[ok]])
        np.add.at(counts, flat, 1)
    filled = counts > 0
    x = np.zeros((n_seg * out_frames, dim), np.float32)
    x[filled] = (sums[filled] / counts[filled, None] - mean) / std
    return (x.reshape(n_seg, out_frames, dim).astype(dtype, copy=False),
            filled.reshape(n_seg, out_frames).astype(np.float32))


def pack_segments(frames, times, starts, *, device: str = "cpu", **kw):
    """Pack windows on the CPU (numpy) or, with ``device='cuda'``, with the fused kernel.

    See :func:`pack_segments_numpy` for arguments and semantics.
    """
    if device == "cpu":
        return pack_segments_numpy(frames, times, starts, **kw)
    from hrlf.kernels import cuda_pack  # lazy: needs cuda-python or pycuda

    return cuda_pack.pack_segments_cuda(frames, times, starts, **kw)
