"""hrlf-export: exit codes, one-line messages, nothing half-written."""
from __future__ import annotations

import copy
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from hrlf.export.cli import main
from hrlf.export.graph import check_model
from hrlf.errors import AtolError
from hrlf.runtime.spec import ModelSpec, sha256_file
from tests.conftest import is_error_line


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _assert_one_line_error(res, pattern):
    assert res.exit_code == 1, res.output
    lines = [ln for ln in res.stderr.splitlines() if is_error_line(ln, "hrlf-export")]
    assert len(lines) == 1 and pattern in lines[0], res.stderr
    assert res.stdout == ""


def _nothing_written(parent, name="model"):
    assert not (parent / name).exists()
    assert not [p for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def test_help_has_examples():
    res = _run("--help")
    assert res.exit_code == 0
    for text in ("RUN_DIR", "--fp16", "--engine", "--triton", "--opset", "--max-batch",
                 "--max-frames", "Examples:", "hrlf-export runs/mosi --out models/mosi"):
        assert text in res.output


def test_export_replaces_an_old_model_dir(tmp_path, run_dir):
    out = tmp_path / "model"
    out.mkdir()
    (out / "spec.json").write_text("{}")              # an older export
    (out / "model.9.0-x-fp16-deadbeef.engine").write_bytes(b"stale")
    res = _run(run_dir, "--out", out, "--fp16", "--triton", tmp_path / "repo", "--opset", 18)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert sorted(p.name for p in out.iterdir()) == ["model.fp16.onnx", "model.onnx", "spec.json"]
    spec = ModelSpec.load(out)
    assert spec.artifacts == report["files"]
    for name, digest in spec.artifacts.items():
        assert sha256_file(out / name) == digest
        check_model(out / name, name)
        sess = ort.InferenceSession(str(out / name), providers=["CPUExecutionProvider"])
        feeds = {i.name: np.ones([d if isinstance(d, int) else 3 for d in i.shape], np.float32)
                 for i in sess.get_inputs()}
        assert np.isfinite(sess.run(None, feeds)[0]).all()
    assert report["opset"] == 18 and report["parity"]["model.onnx"]["failed"] == 0
    assert (tmp_path / "repo" / "hrlf_onnx" / "config.pbtxt").is_file()
    assert "parity model.fp16.onnx: 48 cases" in res.stderr
    _nothing_written(tmp_path, "model.tmp")  # no temp folders left


def test_corrupt_checkpoint(tmp_path, run_dir, export_spec):
    run = tmp_path / "run"
    run.mkdir()
    (run / "student.pt").write_bytes(b"\x00not a checkpoint")
    export_spec.save(run / "spec.json")
    res = _run(run, "--out", tmp_path / "model")
    _assert_one_line_error(res, "not a readable hrlf checkpoint")
    _nothing_written(tmp_path)


def test_foreign_checkpoint(tmp_path, export_spec):
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"model": {"w": torch.zeros(2)}}, run / "student.pt")
    export_spec.save(run / "spec.json")
    _assert_one_line_error(_run(run, "--out", tmp_path / "model"),
                           "not an hrlf network checkpoint")
    _nothing_written(tmp_path)


def test_spec_weights_mismatch(tmp_path, write_run, make_student, export_spec):
    run = write_run(tmp_path / "run", make_student(0, {"text": 9, "audio": 6, "vision": 5}),
                    export_spec)
    _assert_one_line_error(_run(run, "--out", tmp_path / "model"),
                           "spec.json says text has 8 features but student.pt was trained on 9")
    _nothing_written(tmp_path)


def test_missing_run_dir(tmp_path):
    _assert_one_line_error(_run(tmp_path / "nope", "--out", tmp_path / "model"),
                           "no such directory")


@pytest.mark.parametrize("opset", [11, 99])
def test_opset_the_exporter_cannot_do(tmp_path, run_dir, opset):
    _assert_one_line_error(_run(run_dir, "--out", tmp_path / "model", "--opset", opset),
                           f"--opset {opset}: torch's dynamo exporter cannot produce it")
    _nothing_written(tmp_path)


def test_unwritable_model_dir(tmp_path, run_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where a parent folder should be (works as root too)
    _assert_one_line_error(_run(run_dir, "--out", blocker / "model"), "cannot write here")
    _assert_one_line_error(_run(run_dir, "--out", blocker), "exists and is not a folder")
    assert blocker.read_text() == "x"


def test_refuses_to_replace_a_folder_that_is_not_a_model_dir(tmp_path, run_dir):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("keep me")
    _assert_one_line_error(_run(run_dir, "--out", tmp_path / "docs"), "not a model dir")
    assert (tmp_path / "docs" / "notes.txt").read_text() == "keep me"
    _assert_one_line_error(_run(run_dir, "--out", run_dir), "is the RUN_DIR itself")


def test_bad_limits(tmp_path, run_dir):
    _assert_one_line_error(_run(run_dir, "--out", tmp_path / "model", "--max-frames", 10),
                           "--max-frames 10: below audio's 40 frames per window")
    res = _run(run_dir, "--out", tmp_path / "model", "--max-batch", 0)  # out of range: usage
    assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.output
    assert is_error_line(res.stderr, "hrlf-export") and "'--max-batch': 0 is not in" in res.stderr
    _nothing_written(tmp_path)


def test_engine_without_tensorrt(tmp_path, run_dir):
    try:
        import tensorrt  # noqa: F401
    except Exception:
        pass
    else:
        pytest.skip("tensorrt is importable here; this covers machines without it")
    res = _run(run_dir, "--out", tmp_path / "model", "--fp16", "--engine",
               "--triton", tmp_path / "repo")
    _assert_one_line_error(res, "tensorrt: cannot be imported")
    assert "--system-site-packages" in res.stderr
    _nothing_written(tmp_path)
    assert not (tmp_path / "repo").exists()


def test_late_failure_leaves_nothing(tmp_path, run_dir, onnx_model, monkeypatch):
    """Parity fails after the files were written to the temp dir: none of them survive."""
    import hrlf.export.api as api

    monkeypatch.setattr(api, "export_onnx", lambda net, spec, opset: copy.deepcopy(onnx_model))

    def fail(*a, **k):
        raise AtolError("model.onnx: 1/48 parity cases fail against PyTorch (atol 0.0001) "
                        "[mask=--- batch=7 frames=long: max |diff| 0.2]; do not deploy it")
    monkeypatch.setattr(api, "check_onnx_parity", fail)
    res = _run(run_dir, "--out", tmp_path / "model", "--fp16", "--triton", tmp_path / "repo")
    _assert_one_line_error(res, "1/48 parity cases fail")
    _nothing_written(tmp_path)
    assert not (tmp_path / "repo").exists() or not any((tmp_path / "repo").iterdir())


def test_unwritable_triton_repo_leaves_nothing(tmp_path, run_dir, onnx_model, monkeypatch):
    import hrlf.export.api as api

    monkeypatch.setattr(api, "export_onnx", lambda net, spec, opset: copy.deepcopy(onnx_model))
    (tmp_path / "repo").write_text("a file, not a folder")
    # (a REPO that is itself a file fails before the export: test_input_errors.py)
    res = _run(run_dir, "--out", tmp_path / "model", "--triton", tmp_path / "repo" / "sub")
    _assert_one_line_error(res, "cannot write the Triton repository")
    _nothing_written(tmp_path)
