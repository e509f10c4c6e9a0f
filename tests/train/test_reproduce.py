import numpy as np
import pytest

from hrlf.runtime import protocol
from hrlf.runtime.datasets import load_mosi
from hrlf.train import data as D
from hrlf.train import reproduce_runs as RP
from hrlf.train import summary as S

from .conftest import fake_mosi


def _result(proto, seed, idx, label, shift, fold=0):
    scores = {m: {c: label + shift + 0.1 * k for c in protocol.CONDITIONS}
              for k, m in enumerate(("hrlf", "dropout", "teacher"))}
    return {"job": {"proto": proto, "seed": seed, "fold": fold, "folds": 2}, "idx": idx,
            "label": label,
            "group": np.array([f"v{i // 2}" for i in idx]), "scores": scores}


def test_cv_pools_held_out_predictions_per_seed():
    label = np.linspace(-2, 2, 10).astype(np.float32)
    a, b = np.arange(0, 4), np.arange(4, 10)
    results = [_result("B", s, i, label[i], 0.0, k) for s in (0, 1)
               for k, i in enumerate((a, b))]
    lab, group, preds, seeds = S.pool(results, "B")
    assert seeds == [0, 1] and list(preds) == ["hrlf", "dropout", "teacher"]
    np.testing.assert_array_equal(lab, label)
    assert list(group[:4]) == ["v0", "v0", "v1", "v1"]
    np.testing.assert_allclose(preds["dropout"][1]["lav"], label + 0.1, atol=1e-6)
    out = S.aggregate_metrics(preds, lab)
    assert out["hrlf"]["lav"]["mae"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert out["dropout"]["lav"]["mae"]["mean"] == pytest.approx(0.1, abs=1e-6)


def test_sweep_choice_is_the_lowest_mean_validation_loss():
    def sweep(seed, family, grid, losses):
        return {"job": {"family": family, "seed": seed},
                "info": {f"{family}#{i}": {"best_valid_loss": v} for i, v in enumerate(losses)}}

    h = [3.0, 2.0, 2.5, 9, 9, 9]
    d = [1.0, 1.2, 1.1, 0.9, 2.0, 2.0]
    res = RP.choose([sweep(0, "hrlf", RP.HRLF_GRID, h), sweep(0, "dropout", RP.DROPOUT_GRID, d),
                     sweep(1, "hrlf", RP.HRLF_GRID, [2.8, 2.4, 1.7, 9, 9, 9]),
                     sweep(1, "dropout", RP.DROPOUT_GRID, d)])
    assert res["hrlf"]["chosen"] == 2  # the mean over seeds decides, not one seed's best
    assert res["hrlf"]["valid_loss_mean"][:3] == pytest.approx([2.9, 2.2, 2.1])
    assert res["dropout"]["chosen"] == 3
    assert res["dropout"]["config"] == RP.DROPOUT_GRID[3]
    # equal tuning budgets: as many trials for the dropout student as for HRLF
    assert len(RP.HRLF_GRID) == len(RP.DROPOUT_GRID) == 6


def test_students_isolate_augmentation_and_distillation():
    st = RP.students({"w_hmi": 0.1, "w_hal": 0.1, "w_kd": 0.1, "scale_reduce": "mean"},
                     {"baseline": "dropout", "lr": 2e-3}, True)
    assert st["kd_only"] == {"baseline": "kd_only", "w_kd": 0.1}
    assert st["msm_only"] == {"baseline": "msm_only"}
    assert st["no_hal"]["ablate"] == "hal" and st["no_hal"]["w_hmi"] == 0.1
    assert set(RP.students({}, {}, False)) == {"hrlf", "dropout", "msm_only", "kd_only"}


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


def test_job_cache_resumes_and_order_keeps_whole_seeds_first(tmp_path):
    cache = RP.JobCache(str(tmp_path))
    job = {"kind": "eval", "proto": "A", "seed": 3, "fold": 0, "budget": {"epochs": 2}}
    assert cache.get(job) is None
    cache.put({"job": job, "scores": {"hrlf": {}}})
    assert cache.get(dict(job))["scores"] == {"hrlf": {}}
    assert cache.get({**job, "budget": {"epochs": 3}}) is None  # another job, another key
    mosi = ([{"proto": "A", "seed": s} for s in (0, 1)]
            + [{"proto": "B", "seed": s, "fold": k} for s in (0, 1) for k in (0, 1)]
            + [{"proto": "A", "seed": s, "part": "ablations"} for s in (0, 1)])
    syn = [{"proto": "A", "seed": 0, "syn": True}]
    order = RP._interleave(mosi, syn)
    assert [(p, j["seed"]) for p, j in order[:4]] == [("mosi", 0)] * 3 + [("synthetic", 0)]
    assert all(j.get("part") == "ablations" for _, j in order[-2:])
    assert len(order) == len(mosi) + len(syn)


def test_design_step_remakes_earlier_choices_on_train_valid_only():
    import argparse

    chosen = {"hrlf": {"config": RP.HRLF_GRID[4], "chosen": 4, "seeds": [100, 101],
                       "valid_loss_per_seed": [[9] * 4 + [1.5, 9], [9] * 4 + [1.7, 9]]},
              "dropout": {"config": RP.DROPOUT_GRID[0]}}
    args = argparse.Namespace(data="m.npz", folds=5, epochs=None, sweep_seeds=[100, 101],
                              seeds=[0], protocols="AB")
    jobs = RP.design_jobs(args, chosen)
    # the train/valid split (kind "sweep" scores valid), never a test-split fold
    assert [(j["kind"], j["proto"], j["seed"]) for j in jobs] == [("sweep", "A", 100),
                                                                  ("sweep", "A", 101)]
    st = jobs[0]["students"]
    assert len(st) == len(RP.DESIGN_GRID) == len(RP.DESIGN_NAMES)
    assert st["design#0"] == {**RP.HRLF_GRID[4], "model": {}}  # adopted, at the chosen weights
    assert st["design#1"] == {**RP.HRLF_GRID[4], "msm": "full", "model": {}}

    def res(seed, losses):
        return {"job": {"seed": seed, "family": "design"},
                "info": {f"design#{i}": {"best_valid_loss": v} for i, v in enumerate(losses)}}

    out = RP.choose_design([res(100, [1.5, 1.2, 1.6, 1.5, 1.5]),
                            res(101, [1.7, 1.6, 1.6, 1.8, 1.7])], chosen)
    assert out["design"]["chosen"] == 1 and out["design"]["config"]["msm"] == "full"
    assert out["design"]["repeat_check"] == [0.0, 0.0]
    # A and B train HRLF with the weights and the design; the isolating baselines share
    # HRLF's corruption, the dropout student keeps its own knobs
    ev = RP.eval_jobs(args, out)
    assert {j["proto"] for j in ev} == {"A", "B"}
    s = ev[0]["students"]
    assert s["hrlf"]["msm"] == "full" and s["hrlf"]["w_hmi"] == RP.HRLF_GRID[4]["w_hmi"]
    assert s["msm_only"]["msm"] == "full" and s["kd_only"]["msm"] == "full"
    assert "msm" not in s["dropout"]
    abl = [j for j in ev if j.get("part") == "ablations"][0]["students"]
    assert all(v["msm"] == "full" for v in abl.values())
    st = RP.students({**RP.HRLF_GRID[0], "model": {"reps_after_dropout": True}}, {}, False)
    assert st["kd_only"]["model"] == {"reps_after_dropout": True}
