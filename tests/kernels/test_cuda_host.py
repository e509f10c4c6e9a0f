"""Host side of the CUDA path, without a GPU: layout, argument record, launch size, the
device choice, error lines, and a Python emulation of pack.cu's warp algorithm run on the
marshalled bytes (so the pointers, ranges and slot searches are checked against the
numpy reference before any GPU sees them)."""
from __future__ import annotations

import ctypes
import math
from itertools import product
from types import SimpleNamespace

import numpy as np
import pytest

from hrlf.kernels import cuda_driver, cuda_pack, pack, pack_ref
from hrlf.errors import BackendUnavailable, InputError

IN_BASE, OUT_BASE, STATS_BASE = 0x7F0000000000, 0x7F1000000000, 0x7F2000000000


def _params(dims, rates, window_s, pad=0):
    rng = np.random.default_rng(1)
    return [cuda_pack.ModalityParams(d, r, max(1, round(window_s * r)), max(1, round(window_s * r)) + pad,
                                     rng.normal(1, 1, d).astype(np.float32),
                                     rng.uniform(0.5, 2, d).astype(np.float32))
            for d, r in zip(dims, rates)]


def _stats(params):
    """Fake device buffer with mean/std per modality: (host bytes, [(mean_ptr, std_ptr)])."""
    host, ptrs, off = bytearray(), [], 0
    for p in params:
        pair = []
        for a in (p.mean, p.std):
            pair.append(STATS_BASE + off)
            blob = np.asarray(a, np.float32).tobytes().ljust(cuda_pack._aligned(4 * p.dim), b"\0")
            host += blob
            off += len(blob)
        ptrs.append(tuple(pair))
    return np.frombuffer(bytes(host), np.uint8), ptrs


def _fake_memory(bufs):
    """arr(ptr, dtype, count) over fake device buffers {base address: uint8 array}."""
    def arr(ptr, dtype, count):
        base = max(b for b in bufs if b <= int(ptr))
        off = int(ptr) - base
        return bufs[base][off:off + count * np.dtype(dtype).itemsize].view(dtype)

    return arr


def _emulate(args, arr, half):
    """pack.cu's hrlf_pack, one warp (= one Python iteration) per slot; ``arr`` reads and
    writes memory by address."""
    a = args[0]

    def raw_slot(t, t0, rate):
        return math.floor((t - t0) * rate + 1e-6)

    def first_at_least(times, lo, hi, t0, rate, s):
        while lo < hi:
            mid = lo + (hi - lo) // 2
            if raw_slot(times[mid], t0, rate) >= s:
                hi = mid
            else:
                lo = mid + 1
        return lo

    starts = arr(a["starts"], np.float64, a["n_seg"])
    for w in range(a["total_slots"]):
        m = 0
        while m + 1 < a["n_mod"] and w >= a["mod"][m + 1]["slot_begin"]:
            m += 1
        md = a["mod"][m]
        r = w - md["slot_begin"]
        b, s = divmod(int(r), int(md["out_frames"]))
        dim, nf, rate = int(md["dim"]), int(md["n_frames"]), float(md["rate_hz"])
        rng_ = arr(md["range"], np.int32, 2 * a["n_seg"])
        times = arr(md["times"], np.float64, int(rng_.max(initial=0)))
        frames = arr(md["frames"], np.float32, int(rng_.max(initial=0)) * dim).reshape(-1, dim)
        lo, hi = rng_[2 * b], rng_[2 * b + 1]
        e0 = e1 = 0
        if s < nf:
            e0 = lo if s == 0 else first_at_least(times, lo, hi, starts[b], rate, s)
            e1 = hi if s == nf - 1 else first_at_least(times, e0, hi, starts[b], rate, s + 1)
        rows = frames[e0:e1]
        rows = rows[np.isfinite(rows).all(axis=1)]
        x = np.zeros(dim, np.float32)
        if len(rows):
            mean, std = arr(md["mean"], np.float32, dim), arr(md["std"], np.float32, dim)
            x = (rows.sum(0, dtype=np.float32) / np.float32(len(rows)) - mean) / std
        row = b * int(md["out_frames"]) + s
        dt = np.float16 if half else np.float32
        arr(int(md["out"]) + row * dim * np.dtype(dt).itemsize, dt, dim)[:] = x
        arr(int(md["mask"]) + 4 * row, np.float32, 1)[:] = float(len(rows) > 0)


CASES = list(product([np.float32, np.float16], [1, 7], [0, 3], ["random", "grid"]))


@pytest.mark.parametrize("dtype,n_seg,pad,kind", CASES)
def test_marshalled_bytes_pack_like_the_reference(streams, dtype, n_seg, pad, kind):
    rng = np.random.default_rng(n_seg + pad)
    window_s, dims, rates = 2.0, (5, 3, 40), (4.0, 20.0, 10.0)
    params = _params(dims, rates, window_s, pad)
    if kind == "grid":  # frames and starts on slot boundaries; stream 1 absent
        pairs = [streams.grid(d, r, 8.0) for d, r in zip(dims, rates)]
        pairs[1] = (np.zeros((0, dims[1]), np.float32), np.zeros(0))
        starts = np.arange(n_seg) * 0.25
    else:
        pairs = [streams.random(rng, dim=d, rate_hz=r, duration_s=8.0) for d, r in zip(dims, rates)]
        starts = streams.starts(rng, n_seg, 8.0, window_s)
    plan = cuda_pack.plan_batch(params, pairs, starts, window_s, dtype)
    staging = np.zeros(plan.in_nbytes, np.uint8)
    cuda_pack.fill_inputs(plan, pairs, starts, staging)
    stats, stat_ptrs = _stats(params)
    args = cuda_pack.make_args(plan, params, IN_BASE, OUT_BASE, stat_ptrs)
    assert args.dtype == cuda_pack.ARGS_DTYPE and args[0]["n_mod"] == 3
    assert plan.total_slots == n_seg * sum(p.out_frames for p in params)
    out = np.zeros(plan.out_nbytes, np.uint8)
    mem = _fake_memory({IN_BASE: staging, STATS_BASE: stats, OUT_BASE: out})
    _emulate(args, mem, dtype == np.float16)
    got = cuda_pack.read_outputs(plan, params, out, dtype)
    for p, (frames, times), (x, mask) in zip(params, pairs, got):
        rx, rm = pack.pack_segments_numpy(frames, times, starts, window_s=window_s,
                                          rate_hz=p.rate_hz, n_frames=p.n_frames, mean=p.mean,
                                          std=p.std, out_frames=p.out_frames, dtype=dtype)
        assert x.dtype == dtype and x.shape == rx.shape
        np.testing.assert_array_equal(mask, rm)
        tol = 2e-3 if dtype == np.float16 else 2e-5
        np.testing.assert_allclose(x.astype(np.float32), rx.astype(np.float32), rtol=tol, atol=tol)
    masks = np.concatenate([m.ravel() for _, m in got])
    assert masks.min() == 0 and masks.max() == 1  # the case has empty and filled slots


def test_only_the_touched_frames_are_staged(streams):
    rng = np.random.default_rng(0)
    params = _params((4,), (10.0,), 1.0)
    frames, times = streams.random(rng, dim=4, rate_hz=10.0, duration_s=60.0, bad_frac=0)
    plan = cuda_pack.plan_batch(params, [(frames, times)], np.array([30.0]), 1.0, np.float32)
    m = plan.mods[0]
    lo, hi = pack_ref.window_index(times, np.array([30.0]), 1.0)
    assert (m["first"], m["n"]) == (lo[0], hi[0] - lo[0]) and m["n"] < len(times) / 20
    assert m["ranges"].tolist() == [[0, m["n"]]]
    offsets = [plan.starts_off, m["range_off"], m["times_off"], m["frames_off"]]
    assert all(o % cuda_pack.ALIGN == 0 for o in offsets) and offsets == sorted(offsets)
    assert plan.in_nbytes >= m["frames_off"] + 4 * m["n"] * 4


def test_plan_rejects_mismatched_streams():
    params = _params((4,), (10.0,), 1.0)
    with pytest.raises(InputError, match=r"expected \(N, 4\)"):
        cuda_pack.plan_batch(params, [(np.zeros((3, 5)), np.zeros(3))], np.zeros(1), 1.0, np.float32)
    with pytest.raises(InputError, match="one \\(frames, times\\) pair per modality"):
        cuda_pack.plan_batch(params, [], np.zeros(1), 1.0, np.float32)
    with pytest.raises(InputError, match="window_s > 0"):
        cuda_pack.plan_batch(params, [(np.zeros((0, 4)), np.zeros(0))], np.zeros(1), 0.0, np.float32)


@pytest.mark.parametrize("slots,sms,grid", [(1, 132, 1), (8, 132, 1), (9, 132, 2),
                                            (32 * 72, 16, 128), (10 ** 6, 132, 1056)])
def test_launch_config(slots, sms, grid):
    assert cuda_pack.launch_config(slots, sms) == (grid, 32 * cuda_pack.WARPS_PER_BLOCK)


def test_nvrtc_target_picks_cubin_or_ptx():
    assert cuda_driver.nvrtc_target(87, [75, 80, 87, 90]) == ("sm_87", "cubin")
    assert cuda_driver.nvrtc_target(121, [75, 90, 120]) == ("compute_120", "ptx")
    with pytest.raises(BackendUnavailable, match="NVRTC: supports sm_80..sm_90 but the GPU is sm_75"):
        cuda_driver.nvrtc_target(75, [80, 90])


def test_cuda_call_raises_a_typed_one_line_error():
    class Err(int):
        name = "CUDA_ERROR_OUT_OF_MEMORY"

    def cuMemAlloc(n):  # noqa: N802 - mimics the binding
        return (Err(2), None)

    with pytest.raises(cuda_driver.CudaCallError) as e:
        cuda_driver.cuda_call(cuMemAlloc, 10, fix="free GPU memory")
    assert str(e.value) == "cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY; free GPU memory"
    assert isinstance(e.value, BackendUnavailable)
    assert cuda_driver.cuda_call(lambda: (0, 5, 6)) == (5, 6)
    assert cuda_driver.cuda_call(lambda: (0, 7)) == 7 and cuda_driver.cuda_call(lambda: (0,)) is None


def test_resolve_device(monkeypatch):
    monkeypatch.setattr(pack, "cuda_unavailable_reason", lambda: "no GPU here; use cpu")
    assert pack.resolve_device("auto") == "cpu" and pack.resolve_device("cuda") == "cuda"
    monkeypatch.setattr(pack, "cuda_unavailable_reason", lambda: None)
    assert pack.resolve_device("auto") == "cuda" and pack.resolve_device("cpu") == "cpu"
    with pytest.raises(InputError, match="packing device 'cdua': unknown \\(did you mean 'cuda'\\?\\)"):
        pack.resolve_device("cdua")


@pytest.mark.skipif(cuda_driver.unavailable_reason() is None, reason="a CUDA GPU is usable here")
def test_cuda_without_gpu_is_one_clear_line():
    frames, times = np.ones((4, 2), np.float32), np.arange(4) / 4
    kw = dict(window_s=1.0, rate_hz=4.0, n_frames=4, mean=np.zeros(2), std=np.ones(2))
    with pytest.raises(BackendUnavailable) as e:
        pack.pack_segments(frames, times, np.zeros(1), device="cuda", **kw)
    msg = str(e.value)
    assert msg.startswith("CUDA packing: ") and "\n" not in msg and "; " in msg
    x, m = pack.pack_segments(frames, times, np.zeros(1), device="auto", **kw)  # falls back
    np.testing.assert_array_equal(m, [[1, 1, 1, 1]])


class FakeDriver:
    """cuda-python's driver module as DriverApi uses it, on host memory: 'device'
    pointers are real addresses, cuLaunchKernel reads its void** like the driver does and
    runs the Python emulation of pack.cu. It records launches and live allocations."""

    CUstream_flags = SimpleNamespace(CU_STREAM_NON_BLOCKING=1)
    CUdevice_attribute = SimpleNamespace(**{
        f"CU_DEVICE_ATTRIBUTE_{k}": SimpleNamespace(name=f"CU_DEVICE_ATTRIBUTE_{k}")
        for k in ("COMPUTE_CAPABILITY_MAJOR", "COMPUTE_CAPABILITY_MINOR", "MULTIPROCESSOR_COUNT")})

    def __init__(self):
        self.live: dict[int, np.ndarray] = {}
        self.launches: list[tuple] = []

    def _new(self, n):
        buf = np.full(n, 0xAB, np.uint8)  # garbage, as fresh device memory would be
        self.live[buf.ctypes.data] = buf
        return (0, buf.ctypes.data)

    def cuDeviceGet(self, i): return (0, i)
    def cuDeviceGetAttribute(self, attr, dev):
        return (0, {"MAJOR": 8, "MINOR": 7, "COUNT": 16}[attr.name.split("_")[-1]])
    def cuDevicePrimaryCtxRetain(self, dev): return (0, "ctx")
    def cuCtxPushCurrent(self, ctx): return (0,)
    def cuCtxPopCurrent(self): return (0, "ctx")
    def cuModuleLoadData(self, image): return (0, "module")
    def cuModuleGetFunction(self, mod, name): return (0, name.decode())
    def cuStreamCreate(self, flags): return (0, "stream")
    def cuStreamDestroy(self, s): return (0,)
    def cuStreamSynchronize(self, s): return (0,)
    def cuMemAlloc(self, n): return self._new(n)
    def cuMemHostAlloc(self, n, flags): return self._new(n)
    def cuMemFree(self, p): return (0,) if self.live.pop(int(p), None) is not None else (1,)
    cuMemFreeHost = cuMemFree

    def cuMemcpyHtoDAsync(self, dst, src, n, stream):
        ctypes.memmove(dst, src, n)
        return (0,)

    def cuMemcpyDtoHAsync(self, dst, src, n, stream):
        ctypes.memmove(dst, src, n)
        return (0,)

    def cuLaunchKernel(self, f, gx, gy, gz, bx, by, bz, shmem, stream, params, extra):
        struct_ptr = ctypes.c_uint64.from_address(params).value  # kernelParams[0]
        raw = (ctypes.c_uint8 * cuda_pack.ARGS_DTYPE.itemsize).from_address(struct_ptr)
        args = np.frombuffer(bytes(raw), cuda_pack.ARGS_DTYPE)
        self.launches.append((f, gx, bx))

        def arr(ptr, dtype, count):
            return np.ctypeslib.as_array(
                (ctypes.c_uint8 * (count * np.dtype(dtype).itemsize)).from_address(int(ptr))).view(dtype)

        _emulate(args, arr, f == "hrlf_pack_f16")
        return (0,)


@pytest.fixture
def fake_driver(monkeypatch):
    fake = FakeDriver()
    monkeypatch.setattr(cuda_driver, "_bindings", lambda: (fake, None))
    monkeypatch.setattr(cuda_driver, "_choice", lambda: ("cuda-python", None))
    monkeypatch.setattr(cuda_driver, "nvrtc_compile", lambda cc: (b"\x7fELF fake", "cubin"))
    cuda_driver._device.cache_clear()
    cuda_pack._PACKERS.clear()
    yield fake
    for p in list(cuda_pack._PACKERS.values()):
        p.close()
    cuda_pack._PACKERS.clear()
    cuda_driver._device.cache_clear()


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_host_path_end_to_end_on_a_fake_driver(streams, fake_driver, dtype):
    from hrlf.runtime.spec import ModelSpec
    from hrlf.runtime.synthetic import SyntheticConfig

    cfg = SyntheticConfig()
    feats, rng = cfg.features(), np.random.default_rng(7)
    norm = {m: {"mean": tuple(rng.normal(0, 1, f.dim)), "std": tuple(rng.uniform(1, 2, f.dim))}
            for m, f in feats.items()}
    spec = ModelSpec(features=feats, window_s=2.0, hop_s=1.0, norm=norm,
                     data={"source": "test", "sha256": "0" * 64})
    pairs = {m: streams.random(rng, dim=f.dim, rate_hz=f.frame_rate_hz, duration_s=20.0)
             for m, f in feats.items()}
    for n_seg in (1, 32, 2):  # buffers grow, then are reused
        starts = streams.starts(rng, n_seg, 20.0, 2.0)
        got = pack.pack_windows(spec, pairs, starts, dtype=dtype, device="cuda")
        ref = pack.pack_windows(spec, pairs, starts, dtype=dtype, device="cpu")
        for k in ref:
            assert got[k].dtype == ref[k].dtype and got[k].shape == ref[k].shape
            np.testing.assert_allclose(got[k].astype(np.float32), ref[k].astype(np.float32),
                                       rtol=2e-3, atol=2e-3 if dtype == np.float16 else 2e-5)
    kernel = "hrlf_pack_f16" if dtype == np.float16 else "hrlf_pack_f32"
    assert [f for f, _, _ in fake_driver.launches] == [kernel] * 3  # one launch per call
    assert all(b == 32 * cuda_pack.WARPS_PER_BLOCK for _, _, b in fake_driver.launches)
    assert len(cuda_pack._PACKERS) == 1  # one cached packer for the spec
    cuda_pack._PACKERS.popitem()[1].close()
    assert not fake_driver.live  # every owner freed its memory
