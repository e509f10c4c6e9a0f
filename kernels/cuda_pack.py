"""Fused CUDA window packing: the GPU path behind :func:`hrlf.kernels.pack.pack_segments`.

One :meth:`CudaPacker.pack` call packs B windows of every modality of a spec:

1. host: each window's frame range with the reference's own ``window_index``
   (searchsorted), and the frames the windows touch written into one pinned staging
   buffer (only that slice of each stream travels);
2. one host→device copy, one launch of ``pack.cu`` (a warp per output slot, all
   modalities and segments together), one device→host copy;
3. FP32 or FP16 features and FP32 masks, exactly as ``pack_segments_numpy`` computes them
   (FP32 accumulation instead of FP64: differences are FP32 rounding).

The planning (byte layout, kernel argument record, launch size) is plain numpy, so it is
unit-tested on machines without a GPU; the CUDA calls live in :mod:`cuda_driver`.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .cuda_driver import (CudaCallError, kernel_source, open_api, source_define,
                          unavailable_reason)
from ..errors import InputError

__all__ = ["CudaCallError", "CudaPacker", "ModalityParams", "available", "kernel_source",
           "pack_segments_cuda", "packer_for"]

ALIGN = 256  # byte alignment of every array in the staging and output buffers
MAX_MODALITIES = source_define("HRLF_MAX_MODALITIES")
WARPS_PER_BLOCK = source_define("HRLF_WARPS_PER_BLOCK")

# Host mirrors of pack.cu's HrlfModality / HrlfPackArgs (aligned like the C structs;
# pack.cu static_asserts the sizes/offsets and a test compares both).
MOD_DTYPE = np.dtype([("frames", "<u8"), ("times", "<u8"), ("range", "<u8"), ("mean", "<u8"),
                      ("std", "<u8"), ("out", "<u8"), ("mask", "<u8"), ("rate_hz", "<f8"),
                      ("dim", "<i4"), ("n_frames", "<i4"), ("out_frames", "<i4"),
                      ("slot_begin", "<i4")], align=True)
ARGS_DTYPE = np.dtype([("mod", MOD_DTYPE, (MAX_MODALITIES,)), ("starts", "<u8"),
                       ("n_mod", "<i4"), ("n_seg", "<i4"), ("total_slots", "<i4")], align=True)


def available() -> str | None:
    """None when the fused kernel can run here, else the reason (one line with a fix)."""
    return unavailable_reason()


@dataclass(frozen=True, eq=False)
class ModalityParams:
    """What the kernel needs to know about one modality (from the spec)."""

    dim: int
    rate_hz: float
    n_frames: int
    out_frames: int
    mean: np.ndarray = field(repr=False)
    std: np.ndarray = field(repr=False)

    def key(self) -> tuple:
        return (self.dim, self.rate_hz, self.n_frames, self.out_frames,
                np.asarray(self.mean, np.float32).tobytes(), np.asarray(self.std, np.float32).tobytes())


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass
class Plan:
    """Byte layout of one call: where every array sits in the input and output buffers."""

    n_seg: int
    starts_off: int
    mods: list[dict]
    in_nbytes: int
    out_nbytes: int
    total_slots: int


def plan_batch(params: Sequence[ModalityParams], streams, starts: np.ndarray,
               window_s: float, dtype) -> Plan:
    """Window ranges and the byte layout for packing ``starts`` over every stream.

    Args:
        params: one entry per modality.
        streams: one ``(frames (N, d), times (N,) ascending)`` pair per modality.
        starts: (B,) float64 window starts.
        window_s: window length in seconds.
        dtype: output feature dtype (float32 or float16).

    Raises:
        InputError: streams that do not match ``params``.
    """
    from .pack_ref import window_index

    if not (np.isfinite(window_s) and window_s > 0) or not np.isfinite(starts).all():
        raise InputError(f"CUDA packing: window_s {window_s} and starts must be finite with "
                         "window_s > 0; pass the spec's window_s and real start times")
    if len(streams) != len(params):
        raise InputError(f"CUDA packing: got {len(streams)} streams for {len(params)} "
                         "modalities; pass one (frames, times) pair per modality")
    n_seg, item = len(starts), np.dtype(dtype).itemsize
    off = _aligned(8 * n_seg)  # starts first
    out_off, slot_begin, mods = 0, 0, []
    for i, (p, (frames, times)) in enumerate(zip(params, streams)):
        if frames.ndim != 2 or frames.shape[1] != p.dim or times.shape != (len(frames),):
            raise InputError(f"CUDA packing: stream {i} has frames {frames.shape} and times "
                             f"{times.shape}; expected (N, {p.dim}) and (N,)")
        lo, hi = window_index(times, starts, window_s)
        first = int(lo.min()) if n_seg else 0
        last = max(first, int(hi.max()) if n_seg else 0)
        m = {"first": first, "n": last - first,
             "ranges": np.stack([lo - first, hi - first], axis=1).astype(np.int32),
             "slot_begin": slot_begin}
        m["range_off"] = off
        m["times_off"] = off = off + _aligned(8 * n_seg)
        m["frames_off"] = off = off + _aligned(8 * m["n"])
        off += _aligned(4 * m["n"] * p.dim)
        m["x_off"], m["x_nbytes"] = out_off, n_seg * p.out_frames * p.dim * item
        m["mask_off"] = out_off = out_off + _aligned(m["x_nbytes"])
        out_off += _aligned(4 * n_seg * p.out_frames)
        slot_begin += n_seg * p.out_frames
        mods.append(m)
    if slot_begin >= 2 ** 31:
        raise InputError(f"CUDA packing: {slot_begin} output slots exceed one launch; pack "
                         "fewer segments per call")
    return Plan(n_seg, 0, mods, max(off, ALIGN), max(out_off, ALIGN), slot_begin)


def _view(buf: np.ndarray, off: int, dtype, count: int) -> np.ndarray:
    return buf[off:off + count * np.dtype(dtype).itemsize].view(dtype)


def fill_inputs(plan: Plan, streams, starts: np.ndarray, staging: np.ndarray) -> None:
    """Write starts, ranges, times and frame slices into the uint8 staging buffer."""
    _view(staging, plan.starts_off, np.float64, plan.n_seg)[:] = starts
    for m, (frames, times) in zip(plan.mods, streams):
        _view(staging, m["range_off"], np.int32, 2 * plan.n_seg)[:] = m["ranges"].ravel()
        sl = slice(m["first"], m["first"] + m["n"])
        _view(staging, m["times_off"], np.float64, m["n"])[:] = times[sl]
        if m["n"]:
            _view(staging, m["frames_off"], np.float32, frames[sl].size)[:] = frames[sl].ravel()


def make_args(plan: Plan, params: Sequence[ModalityParams], in_ptr: int, out_ptr: int,
              stats: Sequence[tuple[int, int]]) -> np.ndarray:
    """The kernel's by-value argument record (one ``ARGS_DTYPE`` element).

    Args:
        in_ptr, out_ptr: device addresses of the input and output buffers.
        stats: per modality, device addresses of its (mean, std) arrays.
    """
    args = np.zeros(1, ARGS_DTYPE)
    a = args[0]
    a["starts"], a["n_mod"], a["n_seg"] = in_ptr + plan.starts_off, len(params), plan.n_seg
    a["total_slots"] = plan.total_slots
    for i, (p, m, (mean, std)) in enumerate(zip(params, plan.mods, stats)):
        d = a["mod"][i]
        d["frames"], d["times"] = in_ptr + m["frames_off"], in_ptr + m["times_off"]
        d["range"], d["mean"], d["std"] = in_ptr + m["range_off"], mean, std
        d["out"], d["mask"] = out_ptr + m["x_off"], out_ptr + m["mask_off"]
        d["rate_hz"], d["dim"], d["n_frames"] = p.rate_hz, p.dim, p.n_frames
        d["out_frames"], d["slot_begin"] = p.out_frames, m["slot_begin"]
    return args


def launch_config(total_slots: int, sm_count: int, blocks_per_sm: int = 8) -> tuple[int, int]:
    """(grid, block): a warp per slot, capped at a few waves (the kernel grid-strides)."""
    block = 32 * WARPS_PER_BLOCK
    grid = -(-total_slots // WARPS_PER_BLOCK)
    return max(1, min(grid, blocks_per_sm * max(1, sm_count))), block


def read_outputs(plan: Plan, params: Sequence[ModalityParams], out: np.ndarray,
                 dtype) -> list[tuple[np.ndarray, np.ndarray]]:
    """Copies of each modality's (x (B, out_frames, d), mask (B, out_frames))."""
    res = []
    for p, m in zip(params, plan.mods):
        n = plan.n_seg * p.out_frames
        x = _view(out, m["x_off"], dtype, n * p.dim).reshape(plan.n_seg, p.out_frames, p.dim)
        mask = _view(out, m["mask_off"], np.float32, n).reshape(plan.n_seg, p.out_frames)
        res.append((x.copy(), mask.copy()))
    return res


class _Owned:
    """Device or pinned host memory that frees itself (``free()`` or garbage collection)."""

    def __init__(self, api, nbytes: int, host: bool):
        self.api, self.nbytes, self.host = api, nbytes, host
        with api.current():
            if host:
                self.ptr, self.array = api.alloc_host(nbytes)
            else:
                self.ptr, self.array = api.alloc(nbytes), None

    def free(self) -> None:
        if self.ptr:
            ptr, self.ptr, self.array = self.ptr, 0, None
            with self.api.current():
                (self.api.free_host if self.host else self.api.free)(ptr)

    def __del__(self):
        try:
            self.free()
        except Exception:  # interpreter shutdown: the driver may already be gone
            pass


class CudaPacker:
    """Packs B windows of up to ``MAX_MODALITIES`` modalities with one kernel launch.

    Buffers grow to the largest call and are reused; one packer serves one thread at a
    time (calls are serialized by a lock). ``close()`` (or ``with``) frees everything.

    Raises:
        BackendUnavailable: no usable GPU, driver, cuda-python/pycuda or NVRTC here.
    """

    def __init__(self, params: Sequence[ModalityParams], *, dtype=np.float32, device: int = 0):
        self.params, self.dtype = list(params), np.dtype(dtype)
        if not 1 <= len(self.params) <= MAX_MODALITIES:
            raise InputError(f"CUDA packing: {len(self.params)} modalities; the kernel packs "
                             f"1..{MAX_MODALITIES} per launch")
        if self.dtype not in (np.float32, np.float16):
            raise InputError(f"CUDA packing: dtype {self.dtype} is not supported; use "
                             "float32 or float16")
        for p in self.params:
            if p.dim <= 0 or p.n_frames <= 0 or p.out_frames < p.n_frames or p.rate_hz <= 0:
                raise InputError(f"CUDA packing: invalid modality {p}; need dim, frames, "
                                 "rate > 0 and out_frames >= frames")
        self._kernel = "hrlf_pack_f16" if self.dtype == np.float16 else "hrlf_pack_f32"
        self._lock = threading.Lock()
        self.api = open_api(device)
        self._in = self._out = self._stage = self._back = None
        stats = [np.asarray(a, np.float32).ravel() for p in self.params for a in (p.mean, p.std)]
        offs = np.cumsum([0] + [_aligned(4 * s.size) for s in stats])
        host = np.zeros(int(offs[-1]), np.uint8)
        for o, s in zip(offs, stats):
            _view(host, int(o), np.float32, s.size)[:] = s
        self._stats = _Owned(self.api, host.size, host=False)
        with self.api.current():
            self.api.htod(self._stats.ptr, host, host.size)
            self.api.sync()
        ptrs = [self._stats.ptr + int(o) for o in offs[:-1]]
        self._stat_ptrs = list(zip(ptrs[0::2], ptrs[1::2]))

    def _reserve(self, plan: Plan) -> None:
        def grow(buf, nbytes, host):
            if buf is not None and buf.nbytes >= nbytes:
                return buf
            if buf is not None:
                buf.free()
            return _Owned(self.api, max(nbytes, 2 * (buf.nbytes if buf else 0)), host)

        self._in = grow(self._in, plan.in_nbytes, False)
        self._stage = grow(self._stage, plan.in_nbytes, True)
        self._out = grow(self._out, plan.out_nbytes, False)
        self._back = grow(self._back, plan.out_nbytes, True)

    def pack(self, streams, starts, window_s: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Pack every modality's windows in one launch.

        Args:
            streams: per modality, ``(frames (N, d), times (N,) ascending)``.
            starts: (B,) window start times in seconds.
            window_s: window length in seconds.

        Returns:
            Per modality, ``(x (B, out_frames, d) in dtype, mask (B, out_frames) float32)``.
        """
        streams = [(np.asarray(f, np.float32), np.asarray(t, np.float64)) for f, t in streams]
        starts = np.atleast_1d(np.asarray(starts, np.float64))
        plan = plan_batch(self.params, streams, starts, float(window_s), self.dtype)
        if plan.total_slots == 0:  # no segment: nothing to launch
            return [(np.zeros((0, p.out_frames, p.dim), self.dtype),
                     np.zeros((0, p.out_frames), np.float32)) for p in self.params]
        with self._lock:
            self._reserve(plan)
            fill_inputs(plan, streams, starts, self._stage.array)
            args = make_args(plan, self.params, self._in.ptr, self._out.ptr, self._stat_ptrs)
            grid, block = launch_config(plan.total_slots, self.api.sm_count)
            with self.api.current():
                self.api.htod(self._in.ptr, self._stage.array, plan.in_nbytes)
                self.api.launch(self._kernel, grid, block, args)
                self.api.dtoh(self._back.array, self._out.ptr, plan.out_nbytes)
                self.api.sync()
            return read_outputs(plan, self.params, self._back.array, self.dtype)

    def close(self) -> None:
        for buf in (self._in, self._out, self._stage, self._back, self._stats):
            if buf is not None:
                buf.free()
        self.api.close()

    def __enter__(self) -> "CudaPacker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_PACKERS: "OrderedDict[tuple, CudaPacker]" = OrderedDict()
_PACKERS_LOCK = threading.Lock()


def packer_for(params: Sequence[ModalityParams], dtype=np.float32, device: int = 0,
               keep: int = 8) -> CudaPacker:
    """A cached packer for these modalities (the ``keep`` most recently used stay open)."""
    key = (tuple(p.key() for p in params), np.dtype(dtype).str, device)
    with _PACKERS_LOCK:
        if key in _PACKERS:
            _PACKERS.move_to_end(key)
            return _PACKERS[key]
        packer = _PACKERS[key] = CudaPacker(params, dtype=dtype, device=device)
        while len(_PACKERS) > keep:
            _PACKERS.popitem(last=False)[1].close()
        return packer


def pack_segments_cuda(frames, times, starts, *, window_s: float, rate_hz: float,
                       n_frames: int, mean, std, out_frames: int | None = None,
                       dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """:func:`hrlf.kernels.pack_ref.pack_segments_numpy` on the GPU (one modality, one launch)."""
    frames = np.asarray(frames, np.float32)
    out_frames = n_frames if out_frames is None else int(out_frames)
    if out_frames < n_frames:
        raise ValueError(f"out_frames {out_frames} < frames per window {n_frames}")
    p = ModalityParams(frames.shape[1], float(rate_hz), int(n_frames), out_frames,
                       np.asarray(mean, np.float32), np.asarray(std, np.float32))
    return packer_for([p], dtype).pack([(frames, times)], starts, window_s)[0]
