import numpy as np
import pytest

from hrlf.errors import InputError
from hrlf.runtime.protocol import (CONDITIONS, apply_condition, condition_label,
                                   condition_modalities, drop_frames, parse_condition,
                                   sample_msm)
from hrlf.runtime.spec import MODALITIES


def batch(b=5, frames=(6, 10, 8), dims=(4, 3, 2), seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for m, t, d in zip(MODALITIES, frames, dims):
        out[m] = rng.normal(size=(b, t, d)).astype(np.float32) + 3.0  # no accidental zeros
        out[m + "_mask"] = np.ones((b, t), np.float32)
    out["modality_mask"] = np.ones((b, 3), np.float32)
    return out


EXPECTED = {"l": {"text"}, "a": {"audio"}, "v": {"vision"}, "la": {"text", "audio"},
            "lv": {"text", "vision"}, "av": {"audio", "vision"},
            "lav": {"text", "audio", "vision"}}


@pytest.mark.parametrize("cond", CONDITIONS)
def test_condition_masks_exactly_its_modalities(cond):
    assert set(condition_modalities(cond)) == EXPECTED[cond]
    b = batch()
    out = apply_condition(b, cond)
    for i, m in enumerate(MODALITIES):
        kept = m in EXPECTED[cond]
        assert (out["modality_mask"][:, i] == float(kept)).all()
        assert (out[m + "_mask"] == float(kept)).all()
        if kept:
            np.testing.assert_array_equal(out[m], b[m])
        else:
            assert not out[m].any()
    assert b["modality_mask"].all()  # input untouched


def test_condition_names():
    assert CONDITIONS == ("l", "a", "v", "la", "lv", "av", "lav")
    assert condition_label("la") == "{l,a}"
    for spelled in ("{l,a}", "l,a", "al", "text+audio", "audio,text"):
        assert parse_condition(spelled) == "la"
    with pytest.raises(InputError, match="condition 'lx'"):
        parse_condition("lx")


@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.25, 0.5, 0.7, 1.0])
def test_intra_drops_round_r_times_t(ratio):
    b = batch()
    out = drop_frames(b, ratio, np.random.default_rng(7))
    for m in MODALITIES:
        t = b[m].shape[1]
        n_drop = int(np.floor(ratio * t + 0.5))
        dropped = (out[m + "_mask"] == 0).sum(axis=1)
        assert (dropped == n_drop).all(), (m, ratio, dropped, n_drop)
        zero_rows = ~out[m].any(axis=2)
        np.testing.assert_array_equal(zero_rows, out[m + "_mask"] == 0)
    again = drop_frames(b, ratio, np.random.default_rng(7))
    for k in out:
        np.testing.assert_array_equal(out[k], again[k])


def test_intra_counts_only_valid_frames():
    b = batch()
    b["audio_mask"][:, 5:] = 0  # 5 valid of 10
    out = drop_frames(b, 0.4, np.random.default_rng(0))
    assert ((out["audio_mask"][:, :5] == 0).sum(1) == 2).all()
    assert not out["audio_mask"][:, 5:].any()
    with pytest.raises(InputError):
        drop_frames(b, 1.5, np.random.default_rng(0))


def test_msm_draws_both_kinds_reproducibly():
    b = batch(b=400)
    out, drawn = sample_msm(b, np.random.default_rng(3))
    assert set(np.unique(drawn)) == set(range(7))
    for i, m in enumerate(MODALITIES):
        absent = out["modality_mask"][:, i] == 0
        assert not out[m + "_mask"][absent].any()
    # intra drops happen inside kept modalities too
    kept_text = out["modality_mask"][:, 0] == 1
    assert 0 < out["text_mask"][kept_text].mean() < 1
    out2, drawn2 = sample_msm(b, np.random.default_rng(3))
    np.testing.assert_array_equal(drawn, drawn2)
    np.testing.assert_array_equal(out["audio"], out2["audio"])
