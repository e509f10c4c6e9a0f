"""ONNX Runtime backend: CPU by default, the CUDA execution provider where present."""
from __future__ import annotations

import os

import numpy as np

from hrlf.runtime.backends import ort_cache
from hrlf.runtime.errors import ArtifactError, BackendUnavailable, InputError, import_optional
from hrlf.runtime.spec import SCORE, ModelSpec, check_artifact

FILES = {"fp32": "model.onnx", "fp16": "model.fp16.onnx"}
PROVIDERS = ("auto", "cpu", "cuda", "tensorrt")
_EP = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


def model_file(model_dir: str, precision: str) -> str:
    """Path of the ONNX file for ``precision`` (fp32/fp16), checked to exist."""
    path = os.path.join(model_dir, FILES[precision])
    if not os.path.isfile(path):
        hint = " --fp16" if precision == "fp16" else ""
        raise ArtifactError(f"{path}: no such file; export the model with "
                            f"hrlf-export RUN_DIR --out {model_dir}{hint}")
    return path


class OrtBackend:
    """Runs ``model.onnx`` / ``model.fp16.onnx`` with onnxruntime."""

    #: ``InferenceSession.run`` is thread-safe and releases the GIL: a hub runs calls on
    #: several threads at once, each on its own core (intra-op threads stay 1)
    concurrent_runs = True

    def __init__(self, model_dir: str, spec: ModelSpec, precision: str = "auto",
                 provider: str = "auto", threads: int | None = None, max_batch: int = 64):
        import onnxruntime as ort

        if provider not in PROVIDERS:
            raise InputError(f"provider '{provider}': unknown; choose one of {PROVIDERS}")
        available = ort.get_available_providers()
        if provider in _EP and _EP[provider] not in available:
            raise BackendUnavailable(f"ort: the {_EP[provider]} is not available (have "
                                     f"{available}); install onnxruntime-gpu (and TensorRT for "
                                     "the TensorRT provider)")
        has_cuda = _EP["cuda"] in available
        use_cuda = provider in _EP or (provider == "auto" and has_cuda)
        if precision == "auto":  # FP16 pays off on a GPU; on a CPU FP32 is faster
            fp16_file = os.path.join(model_dir, FILES["fp16"])
            precision = "fp16" if use_cuda and os.path.isfile(fp16_file) else "fp32"
        if precision not in FILES:
            raise InputError(f"precision '{precision}': unknown; choose auto, fp32 or fp16")
        path = model_file(model_dir, precision)
        check_artifact(spec, path)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ([_EP["tensorrt"]] if provider == "tensorrt" else []) + (
            [_EP["cuda"]] if use_cuda and has_cuda else []) + ["CPUExecutionProvider"]
        try:
            self.session, self.cache = ort_cache.open_session(
                ort, path, opts, providers, spec.artifacts.get(os.path.basename(path)))
        except Exception as e:  # onnxruntime raises its own pybind types for bad files
            first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise ArtifactError(f"{path}: onnxruntime cannot load it ({first}); re-export the "
                                "model with hrlf-export") from None
        spec.check_inputs({i.name: tuple(i.shape) for i in self.session.get_inputs()}, path)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.spec, self.max_batch, self.path = spec, max_batch, path
        ep = provider if provider in _EP else "cuda" if use_cuda else "cpu"
        self.name = f"ort-{ep}-{precision}"

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        out = self.session.run([SCORE], {k: feeds[k] for k in self.input_names})[0]
        return np.asarray(out, np.float32).reshape(-1)

    def close(self) -> None:
        self.session = None


def open_backend(model_dir: str, spec: ModelSpec, **opts) -> OrtBackend:
    import_optional("onnxruntime", "ort: onnxruntime", "pip install onnxruntime")
    return OrtBackend(model_dir, spec, **{k: v for k, v in opts.items()
                                          if k in ("precision", "provider", "threads", "max_batch")})
