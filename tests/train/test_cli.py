import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from hrlf.runtime import protocol
from hrlf.runtime.metrics import METRIC_KEYS
from hrlf.runtime.spec import ModelSpec
from hrlf.train import run as R
from hrlf.train.checkpoint import load_network, load_run
from hrlf.train.cli import eval_main, train_main

from .conftest import fake_mosi
from tests.conftest import one_line_error as _one_line_error


def _train(args):
    return CliRunner().invoke(train_main, args + ["--quiet"])




def test_help_has_examples():
    for cmd in (train_main, eval_main):
        res = CliRunner().invoke(cmd, ["--help"])
        assert res.exit_code == 0 and "Examples:" in res.output


def test_one_epoch_run_is_loadable(tiny_run):
    files = set(os.listdir(tiny_run))
    assert {"student.pt", "teacher.pt", "spec.json", "config.json", "train_log.json"} <= files
    assert "state.pt" not in files and not os.path.exists(tiny_run + ".partial")
    net, spec = load_run(tiny_run)
    assert ModelSpec.load(tiny_run) == spec and spec.data["source"] == "synthetic"
    assert spec.metrics["model"] == "hrlf" and "avg6" in spec.metrics
    cfg = json.load(open(os.path.join(tiny_run, "config.json")))
    assert cfg["epochs"] == 1 and cfg["model"] == {"layers": 1} and cfg["data"] == "synthetic"
    log = json.load(open(os.path.join(tiny_run, "train_log.json")))
    assert len(log["teacher"]["history"]) == 1 and len(log["student"]["history"]) == 1
    assert set(log["student"]["history"][0]["train"]) == {"task", "frf", "hmi", "hal", "kd", "disc"}
    load_network(os.path.join(tiny_run, "teacher.pt"), role="teacher")


def test_eval_json_has_every_condition_and_key(tiny_run, tmp_path):
    out = tmp_path / "ev"
    res = CliRunner().invoke(eval_main, [tiny_run, "--data", "synthetic", "--out", str(out)])
    assert res.exit_code == 0, res.output
    ev = json.load(open(out / "eval.json"))
    for model in ("hrlf", "teacher"):
        assert set(ev["models"][model]) == set(protocol.CONDITIONS) | {"avg6"}
        for cond, m in ev["models"][model].items():
            assert set(METRIC_KEYS) <= set(m) and all(np.isfinite(m[k]) for k in METRIC_KEYS)
        avg = np.mean([ev["models"][model][c]["f1"] for c in protocol.INCOMPLETE])
        assert ev["models"][model]["avg6"]["f1"] == pytest.approx(avg)
    assert [p["ratio"] for p in ev["intra"]["hrlf"]] == list(protocol.INTRA_RATIOS)
    pred = np.load(out / "predictions.npz")
    assert len(pred["label"]) == ev["n"]
    assert np.abs(pred["score_lav"]).max() <= 3.0
    for f in ("eval.md", "intra.png", "conditions.png", "embedding.png"):
        assert (out / f).stat().st_size > 0
    assert "{l,a,v}" in (out / "eval.md").read_text()


def test_eval_scores_match_inference_graph(tiny_run, tmp_path):
    from hrlf.train import data as D
    from hrlf.train.model import InferenceGraph

    res = CliRunner().invoke(eval_main, [tiny_run, "--data", "synthetic", "--out",
                                         str(tmp_path), "--no-plots"])
    assert res.exit_code == 0, res.output
    net, spec = load_run(tiny_run)
    ds = D.load_data("synthetic", json.load(open(os.path.join(tiny_run, "config.json")))["synthetic"])
    b = protocol.apply_condition(ds.splits["test"].batch(spec.norm), "la")
    with torch.no_grad():
        want = InferenceGraph(net)(**D.to_torch(b)).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "predictions.npz")["score_la"], want, atol=1e-6)


def test_resume_continues_interrupted_run(tmp_path, tiny_config, monkeypatch):
    out = tmp_path / "run"
    def boom(*a, **k):
        raise RuntimeError("interrupted")
    monkeypatch.setattr(R, "_finish", boom)
    res = _train(["--data", "synthetic", "--out", str(out), "--epochs", "1", "--config", tiny_config])
    # a bug: its traceback is logged, exit status 70 (not a user error's 1)
    assert res.exit_code == 70 and "RuntimeError: interrupted" in res.output and not out.exists()
    partial = tmp_path / "run.partial"
    assert (partial / "state.pt").exists() and (partial / "teacher.pt").exists()
    first = torch.load(partial / "state.pt", weights_only=True)["stage"]["history"][0]
    monkeypatch.undo()
    res = _train(["--out", str(out), "--resume", "--epochs", "2"])
    assert res.exit_code == 0, res.output
    log = json.load(open(out / "train_log.json"))
    hist = log["student"]["history"]
    assert len(hist) == 2 and hist[0]["valid_loss"] == pytest.approx(first["valid_loss"])
    assert len(log["teacher"]["history"]) == 1  # the finished teacher is not retrained
    load_run(out)


def test_resume_refuses_other_version(tmp_path, tiny_config, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(R, "_finish", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("x")))
    _train(["--data", "synthetic", "--out", str(out), "--epochs", "1", "--config", tiny_config])
    monkeypatch.undo()
    state = tmp_path / "run.partial" / "state.pt"
    blob = torch.load(state, weights_only=True)
    blob["hrlf_version"] = "0.0.1"
    torch.save(blob, state)
    _one_line_error(_train(["--out", str(out), "--resume"]), "state.pt", "0.0.1")
    _one_line_error(_train(["--out", str(out), "--resume", "--seed", "7"]), "--seed 7")
    _one_line_error(_train(["--out", str(tmp_path / "none"), "--resume"]), "no interrupted run")


def test_bad_inputs_are_one_line_and_write_nothing(tmp_path, tiny_config):
    out = tmp_path / "run"
    cases = [
        (["--data", str(tmp_path / "missing.npz")], ["missing.npz", "no such file"]),
        (["--data", fake_mosi(tmp_path / "nan.npz", bad="valid_audio")], ["valid_audio", "NaN"]),
        (["--data", str(tmp_path / "junk.npz")], ["junk.npz", "not a readable npz"]),
    ]
    (tmp_path / "junk.npz").write_bytes(b"junk")
    for args, needles in cases:
        _one_line_error(_train(args + ["--out", str(out)]), *needles)
        assert not out.exists() and not (tmp_path / "run.partial").exists()
    dims = tmp_path / "dims.json"
    dims.write_text(json.dumps({**json.load(open(tiny_config)), "model": {"dims": {"audio": 74}}}))
    _one_line_error(_train(["--data", "synthetic", "--out", str(out), "--config", str(dims)]),
                    "model.dims.audio", "74")
    bad_field = tmp_path / "field.json"
    bad_field.write_text(json.dumps({"epoch": 3}))
    _one_line_error(_train(["--data", "synthetic", "--out", str(out), "--config", str(bad_field)]),
                    "unknown field 'epoch'", "epochs")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _one_line_error(_train(["--data", "synthetic", "--out", str(blocker / "run"), "--config",
                            tiny_config]), "cannot write")
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_absent_is_one_line(tmp_path, tiny_config):
    _one_line_error(_train(["--data", "synthetic", "--out", str(tmp_path / "r"), "--device",
                            "cuda", "--config", tiny_config]), "--device cuda")


def test_eval_errors(tiny_run, tmp_path):
    res = CliRunner().invoke(eval_main, [str(tmp_path / "nope"), "--data", "synthetic"])
    _one_line_error(res, "nope")
    mosi = fake_mosi(tmp_path / "m.npz")
    res = CliRunner().invoke(eval_main, [tiny_run, "--data", mosi, "--out", str(tmp_path / "e")])
    _one_line_error(res, "spec.json", "text")


def test_data_sources_dispatch(tmp_path, monkeypatch, tiny_synthetic):
    from hrlf.train import clips
    from hrlf.train import data as D

    seen = []
    monkeypatch.setattr(clips, "load_clips", lambda p, **k: seen.append(p) or tiny_synthetic)
    assert D.load_data(str(tmp_path / "list.csv")) is tiny_synthetic and seen
    mosi = fake_mosi(tmp_path / "mosi_utterance.npz")
    monkeypatch.setenv("HRLF_DATA", str(tmp_path))  # a folder holding the npz
    ds = D.load_data(None)
    assert ds.name == "mosi" and len(ds.splits["test"]) == 8
    assert D.load_data(mosi).fingerprint["sha256"] == ds.fingerprint["sha256"]
    monkeypatch.delenv("HRLF_DATA")
    assert D.load_data(None).name == "synthetic"
