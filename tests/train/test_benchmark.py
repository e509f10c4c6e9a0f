"""The harder synthetic benchmark, loss weights/reduction, the isolating baselines and the
collapse monitor."""
import dataclasses

import numpy as np
import pytest
import torch

from hrlf.runtime.spec import frame_mask_name
from hrlf.runtime.synthetic import SyntheticConfig, burst_keep, generate_recordings, make_synthetic
from hrlf.train import data as D
from hrlf.train import loop as L
from hrlf.train import losses as LS
from hrlf.train.benchmark import HARDER, burst_drop


def test_burst_keep_loses_the_asked_share_in_long_runs():
    keep = burst_keep(np.random.default_rng(0), 200_000, 0.3, 8.0)
    assert 1 - keep.mean() == pytest.approx(0.3, abs=0.02)
    lost = np.flatnonzero(~keep)
    runs = np.split(lost, np.flatnonzero(np.diff(lost) > 1) + 1)
    assert np.mean([len(r) for r in runs]) == pytest.approx(8.0, rel=0.1)
    assert burst_keep(np.random.default_rng(0), 10, 0.0, 8.0).all()


def test_default_generator_is_unchanged_by_the_new_fields():
    base = SyntheticConfig(videos={"train": 1, "valid": 1, "test": 1}, duration_s=8.0)
    assert "drop_fraction" not in base.fingerprint()["config"]
    lossy = dataclasses.replace(base, drop_fraction=0.3, drop_burst_s=1.0)
    assert lossy.fingerprint()["sha256"] != base.fingerprint()["sha256"]
    a, b = generate_recordings(base, "train")[0], generate_recordings(lossy, "train")[0]
    for m in ("text", "audio", "vision"):  # the same recording, with frames lost
        assert len(b.times[m]) < len(a.times[m])
        keep = np.isin(a.times[m], b.times[m])
        np.testing.assert_array_equal(a.frames[m][keep], b.frames[m])


def test_harder_benchmark_has_ragged_low_rate_windows():
    ds = make_synthetic(SyntheticConfig(**{**HARDER, "videos": {"train": 3, "valid": 1,
                                                                 "test": 1}}))
    assert {m: f.frames for m, f in ds.features.items()} == {"text": 4, "audio": 16, "vision": 8}
    b = ds.splits["train"].batch(ds.splits["train"].norm())
    share = np.mean([b[frame_mask_name(m)].mean() for m in ("text", "audio", "vision")])
    assert 0.5 < share < 0.9  # about 30 % of the frames are lost in bursts


def test_burst_drop_removes_one_contiguous_run():
    ds = make_synthetic(SyntheticConfig(videos={"train": 2, "valid": 1, "test": 1}, duration_s=8))
    b = ds.splits["train"].batch(ds.splits["train"].norm())
    out = burst_drop(b, 0.5, np.random.default_rng(0))
    for m in ("text", "audio", "vision"):
        before, after = b[frame_mask_name(m)], out[frame_mask_name(m)]
        gone = (before > 0) & (after == 0)
        t = before.shape[1]
        assert (gone.sum(1) == round(0.5 * t)).all()  # all frames valid in this data
        for row in gone:
            idx = np.flatnonzero(row)
            assert (np.diff(idx) == 1).all()
        assert not np.abs(out[m][after == 0]).any()
    full = burst_drop(b, 1.0, np.random.default_rng(0))
    assert not full[frame_mask_name("audio")].any()


def test_reduce_scales_sum_and_mean():
    t = [torch.tensor(v) for v in (1.0, 3.0, 2.0, 4.0, 6.0)]  # scales {H,Ht} {I1,I3} {I2}
    assert float(LS.reduce_scales(t, "sum")) == 16.0
    assert float(LS.reduce_scales(t, "mean")) == pytest.approx((2.0 + 3.0 + 6.0) / 3)


def _prep():
    ds = D.load_data("synthetic", {"videos": {"train": 2, "valid": 1, "test": 1},
                                   "duration_s": 8.0})
    return L.prepare(ds)


def test_loss_weights_scale_the_terms_of_the_step():
    prep = _prep()
    cfg = L.TrainConfig(model={"layers": 1}, batch_size=8)
    teacher = L.make_teacher_stage(cfg, L._dims(prep)).net.eval()
    torch.manual_seed(0)
    batch = D.to_torch(D.take(prep.train, np.arange(8)))
    y = torch.from_numpy(prep.train_y[:8])
    totals = {}
    for w in (1.0, 0.0):
        c = L.TrainConfig(model={"layers": 1}, w_hmi=w, w_hal=w, w_kd=w)
        st = L.make_student_stage(c, L._dims(prep), teacher, L.frames_of(prep))
        st.net.load_state_dict(L.make_student_stage(
            L.TrainConfig(model={"layers": 1}), L._dims(prep), teacher).net.state_dict())
        with torch.no_grad():
            _, losses = st.obj(batch, y, teacher(batch))
        wts = c.weights()
        totals[w] = float(sum(wts[k] * v for k, v in losses.items()))
        if w == 0.0:
            assert totals[w] == pytest.approx(float(losses["task"] + losses["frf"]), rel=1e-6)
    assert totals[1.0] != totals[0.0]


def test_isolating_baselines_terms_and_teacher():
    assert L.TrainConfig(baseline="msm_only").student_terms() == ("task",)
    assert not L.TrainConfig(baseline="msm_only").needs_teacher
    assert L.TrainConfig(baseline="kd_only").student_terms() == ("task", "kd")
    assert L.TrainConfig(baseline="kd_only").needs_teacher
    prep = _prep()
    teacher = L.make_teacher_stage(L.TrainConfig(model={"layers": 1}), L._dims(prep)).net
    msm = L.make_student_stage(L.TrainConfig(baseline="msm_only", model={"layers": 1}),
                               L._dims(prep), teacher, L.frames_of(prep))
    drop = L.make_student_stage(L.TrainConfig(baseline="dropout", model={"layers": 1}),
                                L._dims(prep), teacher, L.frames_of(prep))
    assert msm.teacher is None and msm.corruption == "msm"  # sequences: the full MSM
    assert drop.corruption == "dropout"
    with pytest.raises(Exception, match="scale_reduce"):
        L.TrainConfig(scale_reduce="max")


def test_collapse_monitor_is_logged_every_epoch():
    prep = _prep()
    cfg = L.TrainConfig(model={"layers": 1}, batch_size=16, epochs=2)
    st = L.make_teacher_stage(cfg, L._dims(prep))
    L.run_stage(st, prep, 2)
    assert len(st.history) == 2
    z = st.history[-1]["z_std"]
    assert set(z) == {"text", "audio", "vision", "Ht"} and all(v > 0 for v in z.values())
    # a constant representation has zero spread
    const = {k: np.zeros_like(v) for k, v in prep.valid.items()}
    assert L.z_spread(st.net.eval(), const)["text"] == pytest.approx(0.0, abs=1e-6)
