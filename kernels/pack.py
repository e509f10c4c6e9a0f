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

Entry points: :func:`pack_segments` (one modality) and :func:`pack_windows` (every
modality of a spec; on the GPU in one kernel launch). ``device='auto'`` picks the CUDA
kernel when it can run here and numpy otherwise (:func:`resolve_device` is the one place
that chooses, and it logs why it did not pick CUDA).
"""
from __future__ import annotations

import logging
from typing import Mapping

import numpy as np

_log = logging.getLogger("hrlf.kernels")
DEVICES = ("cpu", "cuda", "auto")

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

def cuda_unavailable_reason() -> str | None:
    """None when the fused CUDA kernel can run here, else why not (one line with a fix)."""
    try:
        from hrlf.kernels.cuda_pack import available
    except ImportError as e:  # a broken install, not a missing GPU
        return f"hrlf.kernels.cuda_pack cannot be imported ({e}); reinstall hrlf"
    return available()


def resolve_device(device: str) -> str:
    """The packing device for a request: 'cpu' or 'cuda' as given; 'auto' picks.

    Raises:
        InputError: an unknown device name.
    """
    if device not in DEVICES:
        from hrlf.runtime.errors import InputError, suggest

        raise InputError(f"packing device '{device}': unknown{suggest(device, DEVICES)}; "
                         f"use one of {list(DEVICES)}")
    if device != "auto":
        return device
    reason = cuda_unavailable_reason()
    if reason is not None:
        _log.info("packing with numpy on the CPU: %s", reason)
        return "cpu"
    return "cuda"


def pack_segments(frames, times, starts, *, device: str = "cpu", **kw):
    """Pack windows of one modality on the CPU (numpy) or with the fused CUDA kernel.

    Args:
        device: 'cpu', 'cuda' or 'auto' (CUDA when it can run here, else numpy).
        **kw: see :func:`pack_segments_numpy` for arguments and semantics.

    Raises:
        BackendUnavailable: ``device='cuda'`` on a machine where the kernel cannot run.
    """
    if resolve_device(device) == "cpu":
        return pack_segments_numpy(frames, times, starts, **kw)
    from hrlf.kernels import cuda_pack  # lazy: needs cuda-python (or pycuda) and a GPU

    return cuda_pack.pack_segments_cuda(frames, times, starts, **kw)


def pack_windows(spec, streams: Mapping[str, tuple], starts, *,
                 out_frames: Mapping[str, int] | None = None, dtype=np.float32,
                 device: str = "cpu") -> dict[str, np.ndarray]:
    """Pack B windows of every modality of a spec into the model's named inputs.

    On the GPU all modalities and segments are packed by one kernel launch.

    Args:
        spec: a :class:`hrlf.runtime.spec.ModelSpec` (modalities, features, window_s, norm).
        streams: modality -> ``(frames (N, d), times (N,) ascending)``; a modality that is
            absent from the mapping packs as all-zero features with mask 0.
        starts: (B,) window start times in seconds.
        out_frames: modality -> padded frame count (default: the spec's frames).
        dtype: feature dtype (float32, or float16 for an FP16 engine).
        device: 'cpu', 'cuda' or 'auto'.

    Returns:
        ``{m: (B, out_frames, d) dtype, f"{m}_mask": (B, out_frames) float32}`` for every
        modality, named like the ONNX inputs.
    """
    out_frames = dict(out_frames or {})
    params, pairs = [], []
    for m in spec.modalities:
        f = spec.features[m]
        frames, times = streams.get(m, (np.zeros((0, f.dim), np.float32), np.zeros(0)))
        pairs.append((np.asarray(frames, np.float32), np.asarray(times, np.float64)))
        params.append(dict(rate_hz=float(f.frame_rate_hz), n_frames=int(f.frames),
                           out_frames=int(out_frames.get(m, f.frames)),
                           mean=np.asarray(spec.norm[m]["mean"], np.float32),
                           std=np.asarray(spec.norm[m]["std"], np.float32)))
    if resolve_device(device) == "cpu":
        packed = [pack_segments_numpy(fr, t, starts, window_s=spec.window_s, dtype=dtype, **p)
                  for (fr, t), p in zip(pairs, params)]
    else:
        from hrlf.kernels import cuda_pack

        mods = [cuda_pack.ModalityParams(dim=spec.features[m].dim, **p)
                for m, p in zip(spec.modalities, params)]
        packed = cuda_pack.packer_for(mods, dtype).pack(pairs, starts, spec.window_s)
    out = {}
    for m, (x, mask) in zip(spec.modalities, packed):
        out[m], out[f"{m}_mask"] = x, mask  # names as hrlf.runtime.spec.frame_mask_name
    return out
