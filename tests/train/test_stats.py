"""The paired video-level bootstrap: weighted metrics agree with sklearn/numpy on
repeated clips, intervals and verdicts behave as stated."""
import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from hrlf.runtime.metrics import regression_metrics
from hrlf.train import stats as S


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = np.round(rng.uniform(-3, 3, n) * 2) / 2  # some exact zeros and ties
    x = np.clip(0.6 * y + rng.normal(0, 1, n), -3, 3)
    x[:10] = 1.0  # tied scores
    groups = np.repeat(np.arange(n // 6), 6)
    return x, y, groups


def test_unit_weights_match_the_tables_metrics():
    x, y, _ = _data()
    m = S.weighted_metrics(x, y, np.ones((1, len(y))))
    ref = regression_metrics(x, y)
    for k in ("f1", "acc2", "mae", "corr"):
        assert m[k][0] == pytest.approx(ref[k], abs=1e-12)
    nz = y != 0
    assert m["auc"][0] == pytest.approx(roc_auc_score(y[nz] > 0, x[nz]), abs=1e-12)


def test_replicate_weights_equal_repeating_the_clips():
    x, y, g = _data()
    w = S.video_weights(g, 5, np.random.default_rng(3))
    assert w.shape == (5, len(y))
    # a clip's weight is its video's draw count, the same for every clip of that video
    for row in w:
        for v in np.unique(g):
            assert len(set(row[g == v])) == 1
        assert row.sum() == len(y)
    m = S.weighted_metrics(x, y, w)
    for r, row in enumerate(w):
        idx = np.repeat(np.arange(len(y)), row.astype(int))
        xr, yr = x[idx], y[idx]
        nz = yr != 0
        assert m["f1"][r] == pytest.approx(
            f1_score(yr[nz] > 0, xr[nz] > 0, average="weighted"), abs=1e-12)
        assert m["mae"][r] == pytest.approx(np.mean(np.abs(xr - yr)), abs=1e-12)
        assert m["corr"][r] == pytest.approx(np.corrcoef(xr, yr)[0, 1], abs=1e-10)
        assert m["auc"][r] == pytest.approx(roc_auc_score(yr[nz] > 0, xr[nz]), abs=1e-12)


def test_constant_predictions_have_zero_corr_and_half_auc():
    _, y, _ = _data()
    m = S.weighted_metrics(np.full(len(y), 0.3), y, np.ones((1, len(y))))
    assert m["corr"][0] == 0.0
    assert m["auc"][0] == 0.5
    # "always positive": F1 equals sklearn's for that constant prediction
    nz = y != 0
    assert m["f1"][0] == pytest.approx(
        f1_score(y[nz] > 0, np.ones(nz.sum(), bool), average="weighted"))


def test_verdict_labels():
    assert S.verdict([0.01, 0.05]) == "better"
    assert S.verdict([-0.05, -0.01]) == "worse"
    assert S.verdict([-0.01, 0.02]) == "indistinguishable"
    assert S.verdict([-0.05, -0.01], higher_is_better=False) == "better"  # lower MAE
    assert S.verdict([0.01, 0.05], higher_is_better=False) == "worse"


def test_interval_is_a_percentile_interval():
    s = np.arange(1001, dtype=float)
    assert S.interval(s) == pytest.approx([25.0, 975.0])


def _preds(shift, seeds=4, n=120, noise=0.0, seed=0):
    x, y, g = _data(n)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(seeds):
        p = np.clip(x + shift + noise * rng.normal(size=n), -3, 3)
        out.append({c: p for c in ("l", "a", "v", "la", "lv", "av", "lav")})
    return out, y, g


def test_paired_report_finds_a_real_gap_and_not_a_fake_one():
    conds = ("l", "a", "v", "la", "lv", "av", "lav")
    good, y, g = _preds(0.0)
    # 'bad': predictions pushed towards the wrong sign by a lot -> clearly worse
    bad = [{c: np.clip(-0.8 * p[c], -3, 3) for c in conds} for p in good]
    same = [{c: p[c].copy() for c in conds} for p in good]
    tab = S.boot_table({"hrlf": good, "bad": bad, "same": same}, y, g, conds, n_boot=300)
    assert tab["hrlf"]["avg6"]["f1"]["boot"].shape == (4, 300)
    rep = S.paired_report(tab, "hrlf")
    assert rep["paired"]["bad"]["avg6"]["f1"]["verdict"] == "better"
    assert rep["paired"]["bad"]["avg6"]["mae"]["verdict"] == "better"
    same_f1 = rep["paired"]["same"]["avg6"]["f1"]
    assert same_f1["verdict"] == "indistinguishable"
    assert same_f1["mean_diff"] == 0.0 and same_f1["ci"] == [0.0, 0.0]
    assert len(rep["paired"]["bad"]["lav"]["auc"]["per_seed"]) == 4
    s = rep["models"]["hrlf"]["avg6"]["corr"]
    assert s["ci"][0] <= s["mean"] <= s["ci"][1]


def test_two_level_interval_is_wider_than_the_seed_fixed_one_when_seeds_disagree():
    rng = np.random.default_rng(0)
    ours = rng.normal(0, 1, (10, 500)) * 0.01 + np.linspace(-0.05, 0.05, 10)[:, None]
    other = np.zeros((10, 500))
    c = S.compare(ours, other, ours.mean(1), np.zeros(10), np.random.default_rng(1))
    w2 = c["ci"][1] - c["ci"][0]
    w1 = c["ci_videos"][1] - c["ci_videos"][0]
    assert w2 > w1
    assert c["verdict"] == "indistinguishable"
