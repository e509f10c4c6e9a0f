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

from .pack_ref import pack_segments_numpy

_log = logging.getLogger("hrlf.kernels")
DEVICES = ("cpu", "cuda", "auto")


def cuda_unavailable_reason() -> str | None:
    """None when the fused CUDA kernel can run here, else why not (one line with a fix)."""
    try:
        from .cuda_pack import available
    except ImportError as e:  # a broken install, not a missing GPU
        return f"hrlf.kernels.cuda_pack cannot be imported ({e}); reinstall hrlf"
    return available()


def resolve_device(device: str) -> str:
    """The packing device for a request: 'cpu' or 'cuda' as given; 'auto' picks.

    Raises:
        InputError: an unknown device name.
    """
    if device not in DEVICES:
        from ..errors import InputError, suggest

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
    from . import cuda_pack  # lazy: needs cuda-python (or pycuda) and a GPU

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
        from . import cuda_pack

        mods = [cuda_pack.ModalityParams(dim=spec.features[m].dim, **p)
                for m, p in zip(spec.modalities, params)]
        packed = cuda_pack.packer_for(mods, dtype).pack(pairs, starts, spec.window_s)
    out = {}
    for m, (x, mask) in zip(spec.modalities, packed):
        out[m], out[f"{m}_mask"] = x, mask  # names as hrlf.runtime.spec.frame_mask_name
    return out
