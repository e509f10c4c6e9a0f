import numpy as np
import pytest

from hrlf.kernels.pack import pack_segments, pack_segments_numpy


def test_slots_means_norm_and_padding():
    # 4 Hz, window 1 s -> 4 slots; two frames share slot 1, slot 3 is empty
    times = np.array([0.1, 0.3, 0.4, 0.6, 1.2])
    frames = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 9.0]], np.float32)
    mean, std = np.array([1.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32)
    x, m = pack_segments_numpy(frames, times, np.array([0.0]), window_s=1.0, rate_hz=4.0,
                               n_frames=4, mean=mean, std=std, out_frames=6)
    assert x.shape == (1, 6, 2) and m.shape == (1, 6)
    np.testing.assert_array_equal(m[0], [1, 1, 1, 0, 0, 0])
    np.testing.assert_allclose(x[0, 0], [0.0, 2.0])             # (1-1)/2, (2-0)/1
    np.testing.assert_allclose(x[0, 1], [(4.0 - 1) / 2, 5.0])   # mean of frames 2 and 3
    np.testing.assert_allclose(x[0, 2], [3.0, 8.0])
    assert not x[0, 3:].any()


def test_nonfinite_frames_are_ignored_and_batches_overlap():
    times = np.arange(8) * 0.25 + 0.125
    frames = np.arange(16, dtype=np.float32).reshape(8, 2)
    frames[2, 1] = np.nan
    x, m = pack_segments(frames, times, np.array([0.0, 0.5, 1.0]), window_s=1.0, rate_hz=4.0,
                         n_frames=4, mean=np.zeros(2, np.float32), std=np.ones(2, np.float32),
                         dtype=np.float16)
    assert x.dtype == np.float16 and np.isfinite(x).all()
    np.testing.assert_array_equal(m, [[1, 1, 0, 1], [0, 1, 1, 1], [1, 1, 1, 1]])
    np.testing.assert_array_equal(x[1, 1], frames[3])  # window 0.5 s: slot 1 is frame 3
    assert not x[0, 2].any() and not x[1, 0].any()


def test_frame_on_boundary_and_outside():
    times = np.array([0.5, 0.9999999, 1.0])
    frames = np.ones((3, 1), np.float32)
    _, m = pack_segments_numpy(frames, times, np.array([0.0]), window_s=1.0, rate_hz=2.0,
                               n_frames=2, mean=np.zeros(1), std=np.ones(1))
    np.testing.assert_array_equal(m, [[0, 1]])  # 1.0 is outside [0, 1)
    with pytest.raises(ValueError):
        pack_segments_numpy(frames, times, np.array([0.0]), window_s=1.0, rate_hz=2.0,
                            n_frames=2, mean=np.zeros(1), std=np.ones(1), out_frames=1)
