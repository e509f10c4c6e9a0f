"""Engine naming, profile shapes and cache invalidation: the TensorRT-free part."""
from __future__ import annotations

import subprocess
import sys

import pytest

from hrlf.runtime.engine_cache import (EngineKey, check_engine, check_limits, default_max_frames,
                                       engine_name, engine_source, gpu_slug, graph_io,
                                       parse_engine_name, profile_shapes, timing_cache_path)
from hrlf.errors import InputError
from hrlf.runtime.spec import input_names, sha256_file

SHA = "0123456789abcdef" * 4
SHA2 = "fedcba9876543210" * 4


def test_graph_io_matches_spec_input_order(export_spec):
    inputs, outputs = graph_io(export_spec)
    assert [d.name for d in inputs] == input_names()
    assert inputs[0].axes == ("batch", "text_frames", export_spec.dim("text"))
    assert inputs[4].axes == ("batch", "audio_frames")
    assert inputs[6].axes == ("batch", 3)
    assert [(d.name, d.axes) for d in outputs] == [("score", ("batch",))]


def test_profile_shapes_from_spec(export_spec):
    shapes = profile_shapes(export_spec, max_batch=16, max_frames=100)
    assert list(shapes) == input_names()
    lo, opt, hi = shapes["audio"]
    assert lo == (1, 1, export_spec.dim("audio"))
    assert opt == (1, export_spec.frames("audio"), export_spec.dim("audio"))  # one window
    assert hi == (16, 100, export_spec.dim("audio"))
    assert shapes["vision_mask"] == ((1, 1), (1, export_spec.frames("vision")), (16, 100))
    assert shapes["modality_mask"] == ((1, 3), (1, 3), (16, 3))
    assert profile_shapes(export_spec, max_batch=16, opt_batch=8)["text"][1][0] == 8
    # default max frames: 4 windows of the longest modality (audio, 40 frames)
    assert default_max_frames(export_spec) == 4 * export_spec.frames("audio")
    assert profile_shapes(export_spec)["text"][2][1] == default_max_frames(export_spec)


def test_limits_are_checked(export_spec):
    with pytest.raises(InputError, match=r"--max-frames 10: below audio's 40 frames per window"):
        check_limits(export_spec, 8, 10)
    with pytest.raises(InputError, match="--max-batch 0"):
        profile_shapes(export_spec, max_batch=0)


def test_engine_name_carries_version_gpu_precision_sha():
    name = engine_name("10.3.0", "Orin (nvgpu)", "fp16", SHA)
    assert name == "model.10.3.0-orin-nvgpu-fp16-01234567.engine"
    assert parse_engine_name(name) == {"trt": "10.3.0", "gpu": "orin-nvgpu",
                                       "precision": "fp16", "sha8": "01234567"}
    assert parse_engine_name("model.onnx") is None
    assert gpu_slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"
    assert EngineKey("11.1.0", "NVIDIA H100", "fp32", SHA).filename == \
        "model.11.1.0-nvidia-h100-fp32-01234567.engine"
    with pytest.raises(InputError, match="precision 'int8'"):
        engine_name("10.3", "x", "int8", SHA)
    with pytest.raises(InputError, match="not a sha256"):
        EngineKey("10.3", "x", "fp16", "abc")


def test_engine_source_per_trt_major():
    assert engine_source("fp16", 10) == "model.onnx"        # FP16 builder flag on FP32 graph
    assert engine_source("fp16", 11) == "model.fp16.onnx"   # strongly typed from FP16 graph
    assert engine_source("fp32", 11) == "model.onnx"


def _model_dir(tmp_path, spec, engine_bytes=b"plan"):
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    onnx_sha = sha256_file(tmp_path / "model.onnx")
    key = EngineKey("10.3.0", "Orin", "fp16", onnx_sha)
    (tmp_path / key.filename).write_bytes(engine_bytes)
    spec = spec.replace(artifacts={"model.onnx": onnx_sha,
                                   key.filename: sha256_file(tmp_path / key.filename)})
    return key, spec


def test_fresh_engine_is_loaded(tmp_path, export_spec):
    key, spec = _model_dir(tmp_path, export_spec)
    st = check_engine(tmp_path, spec, key)
    assert st.fresh and st.reason == "" and st.path == str(tmp_path / key.filename)


# ids are not "trt"/"gpu": conftest would read those as the markers of the same name
@pytest.mark.parametrize("change", ["trt_version", "gpu_model", "precision", "onnx", "bytes",
                                    "unrecorded"])
def test_stale_engine_is_rebuilt_not_loaded(tmp_path, export_spec, change):
    key, spec = _model_dir(tmp_path, export_spec)
    if change == "trt_version":
        key = EngineKey("10.4.0", key.gpu_name, key.precision, key.onnx_sha256)
    elif change == "gpu_model":
        key = EngineKey(key.trt_version, "NVIDIA A100", key.precision, key.onnx_sha256)
    elif change == "precision":
        key = EngineKey(key.trt_version, key.gpu_name, "fp32", key.onnx_sha256)
    elif change == "onnx":  # model.onnx re-exported: the old engine's sha8 no longer matches
        key = EngineKey(key.trt_version, key.gpu_name, key.precision, SHA2)
    elif change == "bytes":
        (tmp_path / key.filename).write_bytes(b"truncated")
    else:
        spec = spec.replace(artifacts={"model.onnx": key.onnx_sha256})
    st = check_engine(tmp_path, spec, key)
    assert not st.fresh and st.reason
    if change in ("trt_version", "gpu_model", "precision"):
        assert "not built yet" in st.reason and len(st.stale) == 1


def test_timing_cache_is_per_version_and_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("HRLF_CACHE", str(tmp_path))
    p = timing_cache_path("10.3.0", "Orin")
    assert p == str(tmp_path / "trt-10.3.0-orin.timing-cache")
    assert timing_cache_path("11.0", "Orin") != p


def test_engine_cache_is_torch_free():
    code = ("import sys, hrlf.runtime.engine_cache; "
            "sys.exit(1 if 'torch' in sys.modules or 'tensorrt' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
