"""Backends: selection, ORT loading errors, and the TensorRT runner against a fake tensorrt."""
import logging
import shutil
import sys
import types

import numpy as np
import pytest

from hrlf.runtime.backends import trt as trt_backend
from hrlf.runtime.backends.base import open_backend
from hrlf.runtime.engine_cache import EngineKey
from hrlf.errors import ArtifactError, BackendUnavailable, InputError, SpecError
from hrlf.runtime.protocol import apply_condition
from hrlf.runtime.spec import ModelSpec, input_names, sha256_file


@pytest.fixture(scope="module")
def model_dir(exported):
    return str(exported[1])


@pytest.fixture(scope="module")
def spec(model_dir):
    return ModelSpec.load(model_dir)


def feeds_for(spec, b=3, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for m in spec.modalities:
        t = spec.frames(m)
        out[m] = rng.normal(size=(b, t, spec.dim(m))).astype(np.float32)
        out[m + "_mask"] = np.ones((b, t), np.float32)
    out["modality_mask"] = np.ones((b, 3), np.float32)
    return out


def test_unknown_backend_suggests():
    with pytest.raises(InputError, match="did you mean 'ort'"):
        open_backend("orx", ".", None)


def test_ort_fp32_fp16_agree_and_auto_logs_why(model_dir, spec, caplog):
    f = feeds_for(spec)
    fp32 = open_backend("ort", model_dir, spec, precision="fp32")
    fp16 = open_backend("ort", model_dir, spec, precision="fp16")
    assert fp32.name == "ort-cpu-fp32" and fp16.name == "ort-cpu-fp16"
    a, b = fp32.run(f), fp16.run(f)
    assert a.shape == (3,) and np.abs(a - b).max() < 1e-2
    absent = apply_condition(f, "l")
    absent["text_mask"][:] = 0  # all modalities absent: defined output
    assert np.isfinite(fp16.run(absent)).all()
    with caplog.at_level(logging.INFO, logger="hrlf.runtime"):
        auto = open_backend("auto", model_dir, spec)
    assert auto.name.startswith("ort-")
    assert any("skipped trt" in r.message for r in caplog.records)


def test_torch_backend_needs_run_dir(model_dir, spec, run_dir):
    with pytest.raises(BackendUnavailable, match="runs a RUN_DIR"):
        open_backend("torch", model_dir, spec)
    ref = open_backend("torch", str(run_dir), ModelSpec.load(run_dir))
    f = feeds_for(spec)
    np.testing.assert_allclose(ref.run(f), open_backend("ort", model_dir, spec).run(f), atol=1e-4)


def test_ort_load_errors(tmp_path, model_dir, spec):
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    (bad / "model.onnx").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="sha256 .* does not match spec.json"):
        open_backend("ort", str(bad), spec, precision="fp32")
    loose = spec.replace(artifacts={})
    with pytest.raises(ArtifactError, match="onnxruntime cannot load it"):
        open_backend("ort", str(bad), loose, precision="fp32")
    (bad / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match="no such file; export the model"):
        open_backend("ort", str(bad), loose, precision="fp32")
    feats = dict(spec.features)
    feats["audio"] = type(feats["audio"])(dim=feats["audio"].dim + 1, frame_rate_hz=feats["audio"].frame_rate_hz,
                                          frames=feats["audio"].frames, featurizer=feats["audio"].featurizer)
    norm = dict(spec.norm)
    norm["audio"] = {"mean": (0.0,) * feats["audio"].dim, "std": (1.0,) * feats["audio"].dim}
    wrong = spec.replace(features=feats, norm=norm)
    with pytest.raises(SpecError, match="input 'audio' has feature dim"):
        open_backend("ort", model_dir, wrong, precision="fp32")


def test_trt_without_tensorrt_is_one_line(model_dir, spec, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails as on this machine
    with pytest.raises(BackendUnavailable) as e:
        open_backend("trt", model_dir, spec)
    assert "tensorrt cannot be imported" in str(e.value) and "\n" not in str(e.value)


# ---- the engine runner against a fake tensorrt whose engine runs the ONNX on the host ----
class _FakeCuda:
    """Device memory as host arrays: checks the runner's copies, addresses and shapes."""

    def __init__(self):
        self.mem, self.next, self.freed = {}, 1, []

    def gpu_name(self):
        return "NVIDIA Fake GPU"

    def alloc(self, n):
        ptr, self.next = self.next, self.next + 1
        self.mem[ptr] = bytearray(n)
        return ptr

    def free(self, ptr):
        self.freed.append(ptr)

    def htod(self, dst, src):
        self.mem[dst][:src.nbytes] = src.tobytes()

    def dtoh(self, dst, src):
        dst[...] = np.frombuffer(bytes(self.mem[src][:dst.nbytes]), dst.dtype).reshape(dst.shape)

    def sync(self):
        pass

    handle = 0

    def close(self):
        pass


def _fake_trt(model_dir, spec, cuda):
    import onnxruntime as ort

    sess = ort.InferenceSession(f"{model_dir}/model.onnx")
    shapes = {n: (tuple(lo), tuple(opt), tuple(hi)) for n, (lo, opt, hi) in {
        m: ((1, 1, spec.dim(m)), (1, spec.frames(m), spec.dim(m)), (4, 64, spec.dim(m)))
        for m in spec.modalities}.items()}
    for m in spec.modalities:
        shapes[m + "_mask"] = ((1, 1), (1, spec.frames(m)), (4, 64))
    shapes["modality_mask"] = ((1, 3), (1, 3), (4, 3))

    class Context:
        def __init__(self):
            self.addr, self.shape = {}, {}

        def set_tensor_address(self, n, p):
            self.addr[n] = p

        def set_input_shape(self, n, s):
            self.shape[n] = tuple(s)

        def execute_async_v3(self, stream):
            feeds = {n: np.frombuffer(bytes(cuda.mem[self.addr[n]]), np.float32)[
                :int(np.prod(s))].reshape(s) for n, s in self.shape.items()}
            out = sess.run(["score"], feeds)[0].astype(np.float32)
            cuda.mem[self.addr["score"]][:out.nbytes] = out.tobytes()
            return True

    class Engine:
        def get_tensor_dtype(self, n):
            return "f32"

        def get_tensor_profile_shape(self, n, i):
            return shapes[n]

        def create_execution_context(self):
            return Context()

    mod = types.SimpleNamespace(__version__="10.3.0", nptype=lambda d: np.float32)
    mod.Logger = type("Logger", (), {"WARNING": 1, "__init__": lambda self, lvl: None})
    mod.Runtime = lambda logger: types.SimpleNamespace(deserialize_cuda_engine=lambda b: Engine())
    return mod


def test_trt_runner_data_flow_and_stale_engine(tmp_path, model_dir, spec, monkeypatch):
    md = tmp_path / "md"
    shutil.copytree(model_dir, md)
    cuda = _FakeCuda()
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt(model_dir, spec, cuda))
    monkeypatch.setattr(trt_backend, "_cuda", lambda: cuda)
    with pytest.raises(BackendUnavailable, match="no usable engine .*not built yet"):
        open_backend("trt", str(md), spec)
    key = EngineKey("10.3.0", "NVIDIA Fake GPU", "fp16", spec.artifacts["model.onnx"])
    (md / key.filename).write_bytes(b"plan")
    with pytest.raises(BackendUnavailable, match="not recorded in spec.json"):
        open_backend("trt", str(md), spec)
    fresh = spec.replace(artifacts={**spec.artifacts, key.filename: sha256_file(md / key.filename)})
    be = open_backend("trt", str(md), fresh)
    assert be.max_batch == 4 and be.name == "trt10.3.0-fp16"
    f = feeds_for(spec, b=7)  # more than max_batch: split into engine-sized calls
    ref = open_backend("ort", model_dir, spec, precision="fp32").run(f)
    np.testing.assert_allclose(be.run(f), ref, atol=1e-6)
    be.close()
    assert sorted(cuda.freed) == sorted(cuda.mem)  # every allocation freed
    assert set(input_names()) <= set(be.dtypes)


def test_openvino_matches_onnxruntime_over_masks_and_batches(model_dir, spec):
    """Static-shape OpenVINO equals ONNX Runtime within 1e-5 over all 8 modality masks,
    batch 1, 3 and 9 (bucketed, padded, chunked while a bucket compiles)."""
    import itertools

    pytest.importorskip("openvino", reason="openvino is not installed (pip install 'hrlf[openvino]')")
    ov_be = open_backend("openvino", model_dir, spec, max_batch=4)
    ort_be = open_backend("ort", model_dir, spec, precision="fp32")
    assert ov_be.name == "openvino-cpu-fp32"
    for present, b in itertools.product(itertools.product((0, 1), repeat=3), (1, 3, 9)):
        f = feeds_for(spec, b=b, seed=b)
        f["modality_mask"][:] = np.asarray(present, np.float32)
        f["audio_mask"][:, ::3] = 0
        np.testing.assert_allclose(ov_be.run(f), ort_be.run(f), atol=1e-5, rtol=0)
    with pytest.raises(BackendUnavailable, match="^openvino: runs the FP32 model"):
        open_backend("openvino", model_dir, spec, precision="fp16")
    ov_be.close()
