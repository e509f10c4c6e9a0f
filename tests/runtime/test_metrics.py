import numpy as np
import pytest

from hrlf.runtime.metrics import pearson, regression_metrics, weighted_f1


def test_hand_computed():
    y = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0])
    p = np.array([-1.6, 0.4, -0.2, 1.2, -0.5, 2.6])
    r = regression_metrics(p, y)
    # MAE: |0.4|+|1.4|+|0.2|+|0.2|+|2.5|+|0.4| = 5.1 / 6
    assert r["mae"] == pytest.approx(5.1 / 6)
    # non-zero: y sign -,-,+,+,+ ; p sign -,+,+,-,+ -> 3/5 correct
    assert r["acc2"] == pytest.approx(3 / 5)
    # classes neg (true 2): tp=1 fp=1 fn=1 -> f1 0.5 ; pos (true 3): tp=2 fp=1 fn=1 -> 2/3
    assert r["f1"] == pytest.approx((2 * 0.5 + 3 * (2 / 3)) / 5)
    # has-0: y>=0: F,F,T,T,T,T ; p>=0: F,T,F,T,F,T -> correct 1,0,0,1,0,1 = 3/6
    assert r["acc2_has0"] == pytest.approx(0.5)
    # neg (2): tp=1 fp=2 fn=1 -> 2/5 ; nonneg (4): tp=2 fp=1 fn=2 -> 4/7
    assert r["f1_has0"] == pytest.approx((2 * 0.4 + 4 * 4 / 7) / 6)
    # acc7: round(clip): p -> -2,0,-0,1,-0(-0.5 rounds to -0),3 ; y -> -2,-1,0,1,2,3
    assert r["acc7"] == pytest.approx(4 / 6)
    assert r["corr"] == pytest.approx(np.corrcoef(p, y)[0, 1])
    assert r["n"] == 6


def test_acc7_clips_both_sides():
    r = regression_metrics(np.array([5.0, -4.2]), np.array([3.0, -3.0]))
    assert r["acc7"] == 1.0 and r["acc5"] == 1.0
    assert r["mae"] == pytest.approx((2.0 + 1.2) / 2)  # MAE is not clipped


def test_weighted_f1_matches_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    assert weighted_f1(t, p) == pytest.approx(sk.f1_score(t, p, average="weighted"))


def test_degenerate_inputs():
    assert pearson(np.ones(4), np.arange(4)) == 0.0
    with pytest.raises(ValueError):
        regression_metrics(np.array([np.nan]), np.array([1.0]))
    with pytest.raises(ValueError):
        regression_metrics(np.array([1.0, 2.0]), np.array([1.0]))
