"""TensorRT engine backend (``[tensorrt]`` extra; on a Jetson, JetPack's system packages).

Loads the engine that ``hrlf-export --engine`` built *on this device* for this TensorRT
version, GPU, precision and ONNX (see :mod:`hrlf.runtime.engine_cache`); any other engine
is stale and refused with the command that rebuilds it. Buffers and the stream come from
cuda-python's runtime API (``cudart``), or pycuda where that is what is installed; every
CUDA call is checked, and this object owns (and frees) its device memory.
"""
from __future__ import annotations

import logging

import numpy as np

from ..engine_cache import EngineKey, check_engine, engine_source
from ...errors import BackendUnavailable
from ..spec import SCORE, ModelSpec, input_names

log = logging.getLogger("hrlf.runtime")


class _CudaRt:
    """The few CUDA runtime calls the engine runner needs, every result checked."""

    def __init__(self):
        try:
            from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
        except ImportError:
            try:
                from cuda import cudart  # older cuda-python
            except ImportError:
                raise BackendUnavailable("trt: cuda-python is not installed; pip install "
                                         "cuda-python (or use pycuda)") from None
        self.rt = cudart
        self.stream = self._call(cudart.cudaStreamCreate)

    def _call(self, fn, *args):
        out = fn(*args)
        err, rest = out[0], out[1:]
        if int(err) != 0:
            raise BackendUnavailable(f"trt: {fn.__name__} failed ({getattr(err, 'name', err)}); "
                                     "check the GPU and its driver")
        return None if not rest else rest[0] if len(rest) == 1 else rest

    def gpu_name(self) -> str:
        props = self._call(self.rt.cudaGetDeviceProperties, 0)
        name = props.name
        return (name.decode() if isinstance(name, bytes) else str(name)).rstrip("\x00")

    def alloc(self, nbytes: int) -> int:
        return int(self._call(self.rt.cudaMalloc, max(nbytes, 1)))

    def free(self, ptr: int) -> None:
        self._call(self.rt.cudaFree, ptr)

    def htod(self, dst: int, src: np.ndarray) -> None:
        self._call(self.rt.cudaMemcpyAsync, dst, src.ctypes.data, src.nbytes,
                   self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream)

    def dtoh(self, dst: np.ndarray, src: int) -> None:
        self._call(self.rt.cudaMemcpyAsync, dst.ctypes.data, src, dst.nbytes,
                   self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream)

    def sync(self) -> None:
        self._call(self.rt.cudaStreamSynchronize, self.stream)

    @property
    def handle(self) -> int:
        return int(self.stream)

    def close(self) -> None:
        if self.stream is not None:
            self._call(self.rt.cudaStreamDestroy, self.stream)
            self.stream = None


class _PyCuda:
    """The same calls through pycuda (JetPack images often ship it instead)."""

    def __init__(self):
        import pycuda.autoprimaryctx  # noqa: F401  (primary context, shared with TensorRT)
        import pycuda.driver as cuda

        self.cuda, self.stream, self._owned = cuda, cuda.Stream(), {}

    def gpu_name(self) -> str:
        return self.cuda.Context.get_device().name()

    def alloc(self, nbytes: int) -> int:
        mem = self.cuda.mem_alloc(max(nbytes, 1))
        self._owned[int(mem)] = mem
        return int(mem)

    def free(self, ptr: int) -> None:
        self._owned.pop(ptr).free()

    def htod(self, dst: int, src: np.ndarray) -> None:
        self.cuda.memcpy_htod_async(dst, src, self.stream)

    def dtoh(self, dst: np.ndarray, src: int) -> None:
        self.cuda.memcpy_dtoh_async(dst, src, self.stream)

    def sync(self) -> None:
        self.stream.synchronize()

    @property
    def handle(self) -> int:
        return self.stream.handle

    def close(self) -> None:
        self.stream = None


def _cuda():
    try:
        return _CudaRt()
    except BackendUnavailable as first:
        try:
            return _PyCuda()
        except ImportError:
            raise first from None


class TrtBackend:
    """Runs a cached TensorRT engine from MODEL_DIR with static-size device buffers."""

    def __init__(self, model_dir: str, spec: ModelSpec, precision: str = "auto", **_):
        import tensorrt as trt

        self.cuda = _cuda()
        major, gpu = int(trt.__version__.split(".")[0]), self.cuda.gpu_name()
        reasons = []
        for precision in (("fp16", "fp32") if precision == "auto" else (precision,)):
            source = engine_source(precision, major)
            if source not in spec.artifacts:
                reasons.append(f"{precision}: {source} not exported")
                continue
            key = EngineKey(trt.__version__, gpu, precision, spec.artifacts[source])
            status = check_engine(model_dir, spec, key)
            if status.fresh:
                break
            reasons.append(f"{precision}: {status.reason}")
        else:
            raise BackendUnavailable(f"trt: no usable engine ({'; '.join(reasons)}); build it on "
                                     "this device: hrlf-export RUN_DIR --out MODEL_DIR --fp16 --engine")
        self._trt = trt
        logger = trt.Logger(trt.Logger.WARNING)
        with open(status.path, "rb") as f:
            self.engine = trt.Runtime(logger).deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise BackendUnavailable(f"trt: {status.path} could not be deserialized; rebuild it "
                                     "with hrlf-export --engine")
        self.context = self.engine.create_execution_context()
        self.dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n)))
                       for n in input_names() + [SCORE]}
        maxes = {n: tuple(self.engine.get_tensor_profile_shape(n, 0)[2]) for n in input_names()}
        self.max_batch = int(maxes[input_names()[0]][0])
        self.buffers = {n: self.cuda.alloc(int(np.prod(s)) * self.dtypes[n].itemsize)
                        for n, s in maxes.items()}
        self.buffers[SCORE] = self.cuda.alloc(self.max_batch * self.dtypes[SCORE].itemsize)
        for n, ptr in self.buffers.items():
            self.context.set_tensor_address(n, ptr)
        self.spec, self.path = spec, status.path
        self.name = f"trt{trt.__version__}-{precision}"
        log.info("trt: loaded %s (max batch %d)", status.path, self.max_batch)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        n = len(feeds[input_names()[0]])
        if n > self.max_batch:  # the session batches up to max_batch; split anything larger
            return np.concatenate([self.run({k: v[i:i + self.max_batch] for k, v in feeds.items()})
                                   for i in range(0, n, self.max_batch)])
        hold = []  # keep host arrays alive until the copies are done
        for name in input_names():
            arr = np.ascontiguousarray(feeds[name], dtype=self.dtypes[name])
            self.context.set_input_shape(name, arr.shape)
            self.cuda.htod(self.buffers[name], arr)
            hold.append(arr)
        out = np.empty(n, self.dtypes[SCORE])
        if not self.context.execute_async_v3(self.cuda.handle):
            raise BackendUnavailable("trt: execute_async_v3 failed; see TensorRT's log above")
        self.cuda.dtoh(out, self.buffers[SCORE])
        self.cuda.sync()
        return out.astype(np.float32)

    def close(self) -> None:
        for ptr in getattr(self, "buffers", {}).values():
            self.cuda.free(ptr)
        self.buffers = {}
        self.context = self.engine = None
        self.cuda.close()


def open_backend(model_dir: str, spec: ModelSpec, **opts) -> TrtBackend:
    try:
        import tensorrt  # noqa: F401
    except (ImportError, OSError) as e:  # OSError: the wheel is there, its libraries are not
        raise BackendUnavailable(f"trt: tensorrt cannot be imported ({e}); install hrlf[tensorrt] "
                                 "or, on a Jetson, use JetPack's python3-libnvinfer in a venv with "
                                 "--system-site-packages") from None
    return TrtBackend(model_dir, spec, precision=opts.get("precision", "auto"))
