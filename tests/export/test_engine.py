"""TensorRT builder: version branches and availability tested here; builds need TensorRT."""
from __future__ import annotations

import numpy as np
import pytest

from hrlf.export import engine
from hrlf.errors import ArtifactError, BackendUnavailable
from hrlf.runtime.spec import sha256_file


def test_trt10_uses_fp16_flag_on_fp32_onnx(exported):
    plan = engine.build_plan(str(exported[1]), "fp16", "10.3.0", "Orin")
    assert plan.source.endswith("/model.onnx") and plan.fp16_flag and not plan.strongly_typed
    assert plan.key.onnx_sha256 == sha256_file(exported[1] / "model.onnx")
    assert plan.key.filename.startswith("model.10.3.0-orin-fp16-")


def test_trt11_is_strongly_typed_from_fp16_onnx(exported):
    plan = engine.build_plan(str(exported[1]), "fp16", "11.1.0", "NVIDIA H100")
    assert plan.source.endswith("/model.fp16.onnx") and plan.strongly_typed
    assert not plan.fp16_flag
    assert plan.key.onnx_sha256 == sha256_file(exported[1] / "model.fp16.onnx")
    fp32 = engine.build_plan(str(exported[1]), "fp32", "11.1.0", "NVIDIA H100")
    assert fp32.source.endswith("/model.onnx") and fp32.strongly_typed


def test_trt11_fp16_needs_the_fp16_onnx(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="export with --fp16"):
        engine.build_plan(str(tmp_path), "fp16", "11.0.0", "x")


def test_unsupported_trt_versions():
    for v in ("8.6.1", "12.0", "abc"):
        with pytest.raises(BackendUnavailable):
            engine.trt_major(v)


def test_missing_tensorrt_is_one_clear_line(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "tensorrt":
            raise ModuleNotFoundError("No module named 'tensorrt'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(BackendUnavailable, match=r"^tensorrt: cannot be imported \(Module"
                                                 r"NotFoundError\); .*--system-site-packages"):
        engine.require_tensorrt()


@pytest.mark.trt
@pytest.mark.gpu
def test_engine_build_and_parity(tmp_path, run_dir):
    """On a GPU with TensorRT: build, compare with PyTorch, reuse on re-export."""
    from hrlf.export.api import export_model

    out = tmp_path / "model"
    rep = export_model(run_dir, out, fp16=True, engine=True, max_batch=8,
                       timing_cache=str(tmp_path / "tc"))
    eng = rep["engine"]
    assert (out / eng["file"]).is_file() and eng["file"] in rep["files"]
    assert rep["parity"]["engine"]["failed"] == 0
    assert np.isfinite(rep["parity"]["engine"]["max_abs_diff"])
    again = export_model(run_dir, out, fp16=True, engine=True, max_batch=8,
                         timing_cache=str(tmp_path / "tc"))
    if again["files"]["model.onnx"] == rep["files"]["model.onnx"]:
        assert again["engine"]["reused"]


class _FakeParser:
    """Stands in for trt.OnnxParser on a graph TensorRT cannot parse."""

    errors = ["node 12 (CumSum): unsupported datatype", "node 40: shape mismatch"]

    def __init__(self, network, logger):
        self.num_errors = 0

    def parse_from_file(self, path):
        self.num_errors = len(self.errors)
        return False

    def get_error(self, i):
        return self.errors[i]


def test_every_parser_error_is_reported(tmp_path, monkeypatch, caplog):
    import types

    import polygraphy.backend.trt as ptrt

    trt = types.SimpleNamespace(__version__="10.3.0", OnnxParser=_FakeParser)
    import polygraphy.backend.trt.util as ptrt_util

    monkeypatch.setattr(ptrt, "CreateNetwork", lambda **k: (lambda: ("builder", "network")))
    monkeypatch.setattr(ptrt_util, "get_trt_logger", lambda: None)
    (tmp_path / "model.onnx").write_bytes(b"x")
    plan = engine.build_plan(str(tmp_path), "fp16", "10.3.0", "Orin")
    with caplog.at_level("ERROR", logger="hrlf.export"), \
            pytest.raises(ArtifactError, match=r"cannot parse it \(2 error\(s\), first: node 12"):
        engine._parse(trt, plan)
    assert [r.getMessage() for r in caplog.records] == [
        f"TensorRT parser: {e}" for e in _FakeParser.errors]


def test_fresh_cached_engine_is_copied_stale_one_is_not(tmp_path, export_spec):
    from hrlf.runtime.engine_cache import EngineKey

    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "model.onnx").write_bytes(b"onnx")
    key = EngineKey("10.3.0", "Orin", "fp16", sha256_file(old / "model.onnx"))
    (old / key.filename).write_bytes(b"plan")
    export_spec.replace(artifacts={"model.onnx": key.onnx_sha256,
                                   key.filename: sha256_file(old / key.filename)}).save(
        old / "spec.json")
    assert engine._reuse(str(old), key, str(new / key.filename))
    assert (new / key.filename).read_bytes() == b"plan"
    other = EngineKey("10.3.0", "Orin", "fp16", "ab" * 32)  # the ONNX changed
    assert not engine._reuse(str(old), other, str(new / other.filename))
    assert not (new / other.filename).exists()
    assert not engine._reuse(None, key, str(new / "x.engine"))
