"""TensorRT builder: version branches and availability tested here; builds need TensorRT."""
from __future__ import annotations

import numpy as np
import pytest

from hrlf.export import engine
from hrlf.runtime.errors import ArtifactError, BackendUnavailable
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
