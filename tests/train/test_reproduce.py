import numpy as np
import pytest

from hrlf.runtime import protocol
from hrlf.runtime.datasets import load_mosi
from hrlf.train import data as D
from hrlf.train import reproduce as RP
from hrlf.train import summary as S

from .conftest import fake_mosi


def _result(proto, seed, idx, label, shift):
    scores = {m: {c: label + shift + 0.1 * k for c in protocol.CONDITIONS}
              for k, m in enumerate(RP.MODELS)}
    return {"job": {"proto": proto, "seed": seed, "fold": 0}, "idx": idx, "label": label,
            "scores": scores, "intra": {}, "epochs": {"hrlf": 3}}


def test_cv_pools_held_out_predictions_per_seed():
    label = np.linspace(-2, 2, 10).astype(np.float32)
    a, b = np.arange(0, 4), np.arange(4, 10)
    results = [_result("B", s, i, label[i], 0.0) for s in (0, 1) for i in (a, b)]
    out = RP.collect(results, "B", [0, 1], None)
    assert set(out) == set(RP.MODELS)
    assert set(out["hrlf"]) == set(protocol.CONDITIONS) | {"avg6"}
    assert out["hrlf"]["lav"]["mae"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert out["dropout"]["lav"]["mae"]["mean"] == pytest.approx(0.1, abs=1e-6)
    assert out["hrlf"]["lav"]["f1"]["std"] == 0.0
    g = S.goal(out)
    assert g["holds"] == all(g["hrlf_avg6_f1_beats"].values())
    assert g["ridge_floor_beaten"]["lav"]["mae"] is True  # exact predictions: MAE 0


def test_protocol_b_folds_keep_videos_apart(tmp_path):
    path = fake_mosi(tmp_path / "m.npz", n=(12, 6, 30))
    tr, va, ev, idx = RP._splits(path, {}, "B", 1, 5)
    groups = [set(s.group) for s in (tr, va, ev)]
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2]) and not (groups[1] & groups[2])
    test = load_mosi(path).splits["test"]
    assert len(tr) + len(va) + len(ev) == len(test)
    np.testing.assert_array_equal(test.ids[idx], ev.ids)


def test_epoch_batches_shard_disjointly():
    shards = [np.concatenate(list(D.epoch_batches(50, 8, np.random.default_rng(3), r, 2)))
              for r in (0, 1)]
    assert not set(shards[0]) & set(shards[1])
    # each rank's last batch of one row is dropped (MI negatives need two samples)
    assert len(shards[0]) + len(shards[1]) == 48


def test_inference_cost_counts_flops():
    c = S.inference_cost({"text": 6, "audio": 5, "vision": 4}, {"text": 1, "audio": 2, "vision": 3},
                         {"layers": 1})
    assert c["parameters"] > 0 and c["flops"] > 2 * c["parameters"] * 0.5
