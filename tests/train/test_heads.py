"""The head-count comparison (train/heads.py): jobs, verdicts, files, resume."""
import json

from hrlf.train import heads as H

from .conftest import fake_mosi

CHOSEN = {"w_hmi": 0.01, "w_hal": 0.01, "w_kd": 0.01, "scale_reduce": "mean", "model": {}}


def test_tiny_run_writes_verdicts_and_resumes(tmp_path, capsys):
    data = fake_mosi(tmp_path / "m.npz", n=(24, 9, 30))
    out = tmp_path / "results"
    out.mkdir()
    # the reproduction's frozen choice is read from OUT/mosi.json
    (out / "mosi.json").write_text(json.dumps({"sweep": {"design": {"config": CHOSEN}}}))
    argv = ["--data", data, "--out", str(out), "--seeds", "0,1", "--syn-seeds", "0",
            "--heads", "10,1", "--epochs", "1", "--syn-epochs", "1", "--folds", "2",
            "--protocols", "AB", "--n-boot", "40", "--workers", "2"]
    res = H.main(argv, standalone_mode=False)
    assert res["complete"] and set(res["stats"]) == {"mosi_A", "mosi_B", "synthetic_A"}
    st = res["stats"]["mosi_B"]
    cell = st["paired"]["1 head − 10 heads"]["avg6"]["f1"]
    assert st["seeds"] == [0, 1] and cell["verdict"] in ("better", "worse", "indistinguishable")
    assert len(cell["per_seed"]) == 2 and cell["ci"][0] <= cell["ci"][1]
    assert set(res["stats"]["synthetic_A"]["intra"]) == {"burst", "independent"}
    md = (out / "heads.md").read_text()
    assert "1 head − 10 heads" in md and "Verdict counts" in md
    saved = json.loads((out / "heads.json").read_text())
    assert saved["heads"] == [10, 1] and saved["hrlf_config_mosi"] == CHOSEN
    # every job is cached: a rerun trains nothing and keeps the training run's wall time
    capsys.readouterr()
    again = H.main(argv + ["--summarize"], standalone_mode=False)
    err = capsys.readouterr().err
    assert "heads INFO " in err and "0 to train" in err  # the one log format, on stderr
    assert again["wall_s_this_invocation"] == saved["wall_s_this_invocation"]
    resaved = json.loads((out / "heads.json").read_text())
    assert resaved["stats"] == saved["stats"]  # the same seeded bootstrap


def test_jobs_share_seeds_and_differ_only_in_heads():
    class A:
        data, folds, seeds, syn_seeds, heads = "x.npz", 5, [0, 1], [0], [10, 2, 1]
        protocols, epochs, syn_epochs, synthetic, out = "AB", None, None, True, "."

    jobs = H.mosi_jobs(A, CHOSEN)
    assert len(jobs) == 2 * 3 * (1 + 5)
    for j in jobs:
        assert j["budget"]["model"] == {"heads": j["heads"]} and j["students"] == {"hrlf": CHOSEN}
    syn = H.synthetic_jobs(A)
    assert {j["budget"]["model"]["heads"] for j in syn} == {10, 2, 1}
    assert all(j["budget"]["model"]["layers"] == 2 for j in syn)
