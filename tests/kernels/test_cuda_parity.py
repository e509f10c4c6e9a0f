"""The fused kernel against the numpy reference, on a GPU (skipped with a reason elsewhere);
plus pack_windows, the all-modality entry point, on the CPU."""
from __future__ import annotations

from itertools import product

import numpy as np
import pytest

from hrlf.kernels import pack
from hrlf.runtime.spec import MODALITIES, ModelSpec, input_names
from hrlf.runtime.synthetic import SyntheticConfig

TOL = {np.float32: 2e-5, np.float16: 2e-3}  # FP32 vs FP64 sums; one FP16 rounding step


def _spec(window_s=2.0, dims=None) -> ModelSpec:
    cfg = SyntheticConfig(window_s=window_s, dims=dims or SyntheticConfig().dims)
    rng = np.random.default_rng(0)
    feats = cfg.features()
    norm = {m: {"mean": tuple(rng.normal(1, 1, f.dim)), "std": tuple(rng.uniform(0.5, 2, f.dim))}
            for m, f in feats.items()}
    return ModelSpec(features=feats, window_s=window_s, hop_s=1.0, norm=norm,
                     data={"source": "test", "sha256": "0" * 64})


def _assert_close(x, mask, rx, rmask, dtype):
    assert x.dtype == rx.dtype and x.shape == rx.shape and mask.dtype == np.float32
    np.testing.assert_array_equal(mask, rmask)
    np.testing.assert_allclose(x.astype(np.float32), rx.astype(np.float32),
                               rtol=TOL[dtype], atol=TOL[dtype])


def test_pack_windows_cpu_matches_per_modality_reference(streams):
    spec, rng = _spec(), np.random.default_rng(3)
    pairs = {m: streams.random(rng, dim=spec.dim(m), rate_hz=spec.features[m].frame_rate_hz,
                               duration_s=10.0) for m in ("text", "vision")}  # audio absent
    starts = streams.starts(rng, 5, 10.0, spec.window_s)
    out = pack.pack_windows(spec, pairs, starts, out_frames={"audio": 48}, dtype=np.float16)
    assert sorted(out) == sorted(n for n in input_names() if n != "modality_mask")
    for m in ("text", "vision"):
        rx, rm = pack.pack_segments_numpy(*pairs[m], starts, window_s=spec.window_s,
                                          rate_hz=spec.features[m].frame_rate_hz,
                                          n_frames=spec.frames(m), mean=spec.norm[m]["mean"],
                                          std=spec.norm[m]["std"], dtype=np.float16)
        _assert_close(out[m], out[f"{m}_mask"], rx, rm, np.float16)
    assert out["audio"].shape == (5, 48, spec.dim("audio")) and not out["audio"].any()
    assert not out["audio_mask"].any()


CASES = list(product([np.float32, np.float16], [1, 7, 32], [(32, 24, 32), (300, 5, 1)], [0, 4]))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype,n_seg,dims,pad", CASES)
def test_kernel_matches_reference(streams, dtype, n_seg, dims, pad):
    # dim 300 takes two column passes (256 per pass); dim 1 leaves 31 lanes idle
    spec = _spec(dims=dict(zip(MODALITIES, dims)))
    rng = np.random.default_rng(n_seg * 10 + pad)
    pairs = {m: streams.random(rng, dim=spec.dim(m), rate_hz=spec.features[m].frame_rate_hz,
                               duration_s=12.0) for m in MODALITIES}
    starts = streams.starts(rng, n_seg, 12.0, spec.window_s)
    out_frames = {m: spec.frames(m) + pad for m in MODALITIES}
    got = pack.pack_windows(spec, pairs, starts, out_frames=out_frames, dtype=dtype, device="cuda")
    ref = pack.pack_windows(spec, pairs, starts, out_frames=out_frames, dtype=dtype, device="cpu")
    for m in MODALITIES:
        _assert_close(got[m], got[f"{m}_mask"], ref[m], ref[f"{m}_mask"], dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_kernel_boundaries_duplicates_and_nonfinite(streams, dtype):
    frames, times = streams.grid(3, 4.0, 6.0)  # frames exactly on slot boundaries
    frames[5] = np.nan
    frames[6, 1] = np.inf
    frames = np.concatenate([frames, frames[:4] + 1])  # duplicate stamps: 2 frames per slot
    times = np.concatenate([times, times[:4]])
    order = np.argsort(times, kind="stable")
    kw = dict(window_s=1.0, rate_hz=4.0, n_frames=4, mean=np.full(3, 0.5), std=np.full(3, 2.0),
              out_frames=6, dtype=dtype)
    starts = np.arange(-1.0, 6.5, 0.25)
    x, m = pack.pack_segments(frames[order], times[order], starts, device="cuda", **kw)
    rx, rm = pack.pack_segments_numpy(frames[order], times[order], starts, **kw)
    _assert_close(x, m, rx, rm, dtype)
    assert rm.any() and not rm.all()


@pytest.mark.gpu
def test_packer_reuse_grows_and_shrinks(streams):
    from hrlf.kernels.cuda_pack import CudaPacker, ModalityParams

    rng = np.random.default_rng(5)
    frames, times = streams.random(rng, dim=8, rate_hz=20.0, duration_s=30.0)
    p = ModalityParams(8, 20.0, 40, 40, np.zeros(8, np.float32), np.ones(8, np.float32))
    with CudaPacker([p]) as packer:
        for n in (1, 64, 3, 0, 64):
            starts = streams.starts(rng, n, 30.0, 2.0)
            (x, m), = packer.pack([(frames, times)], starts, 2.0)
            rx, rm = pack.pack_segments_numpy(frames, times, starts, window_s=2.0, rate_hz=20.0,
                                              n_frames=40, mean=p.mean, std=p.std)
            _assert_close(x, m, rx, rm, np.float32)
        buffers = [packer._in, packer._out, packer._stage, packer._back]
    assert all(b.ptr == 0 for b in buffers)  # close() freed every owner


@pytest.mark.gpu
def test_all_nonfinite_stream_gives_empty_mask():
    frames = np.full((50, 4), np.nan, np.float32)
    times = np.arange(50) / 10.0
    x, m = pack.pack_segments(frames, times, np.array([0.0, 1.0]), device="cuda", window_s=2.0,
                              rate_hz=10.0, n_frames=20, mean=np.zeros(4), std=np.ones(4))
    assert not m.any() and not x.any() and np.isfinite(x).all()
