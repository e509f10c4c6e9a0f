"""CUDA plumbing for the packing kernel: checked calls, NVRTC compilation, owned buffers.

Two implementations of one small interface (``alloc``/``free``, pinned host buffers,
async copies, ``launch``, ``sync``, ``current()``), as TensorRT's
``samples/python/common_runtime.py`` does with ``cuda_call``/``DeviceMem``:

* :class:`DriverApi` — cuda-python's driver API; ``pack.cu`` is compiled at run time with
  NVRTC through ``cuda.core``'s ``Program`` (a CUBIN for the device's arch, or PTX the driver
  JITs when NVRTC predates it); the driver calls (primary context, module, copies, launch)
  stay on ``cuda.bindings``, as run and checked on an H200 (docs/gpu.md): cuda.core's
  device objects would replace them, but no GPU has been lent since to verify that;
* :class:`PyCudaApi` — pycuda's ``SourceModule`` (which compiles with nvcc), for machines
  where pycuda is what is installed (JetPack images often are).

Both use the device's primary context and keep the loaded module in a per-device cache,
so every packer on a device shares one compiled module. Nothing here runs at import time.
"""
from __future__ import annotations

import contextlib
import functools
import re
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailable

SOURCE_PATH = Path(__file__).with_name("pack.cu")
KERNELS = ("hrlf_pack_f32", "hrlf_pack_f16")
NVRTC_FIX = "pip install nvidia-cuda-nvrtc (CUDA 13 driver) or nvidia-cuda-nvrtc-cu12 (CUDA 12)"


class CudaCallError(BackendUnavailable):
    """A CUDA driver or NVRTC call failed (out of memory, launch failure, compile error)."""


@functools.lru_cache(maxsize=1)
def kernel_source() -> str:
    """The text of ``pack.cu``: the file nvcc compiles in CI is the string NVRTC compiles."""
    return SOURCE_PATH.read_text()


def source_define(name: str) -> int:
    """An integer ``#define`` of ``pack.cu`` (launch constants live in one place)."""
    m = re.search(rf"^#define {name} (\d+)\s*$", kernel_source(), re.M)
    if m is None:
        raise AssertionError(f"pack.cu defines no integer {name}")
    return int(m.group(1))


def _bindings():
    """(driver, nvrtc) from cuda-python, or None when it is not installed."""
    try:
        from cuda.bindings import driver, nvrtc  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cuda as driver, nvrtc  # older cuda-python
        except ImportError:
            return None
    return driver, nvrtc


def cuda_call(fn, *args, fix: str = "check the GPU, its driver and free memory"):
    """Call a cuda-python driver/NVRTC function and check its result code.

    Returns:
        The call's outputs after the result code: None, one value, or a tuple.

    Raises:
        CudaCallError: ``<function>: <CUDA_ERROR_* name>; <fix>``.
    """
    out = fn(*args)
    err, rest = out[0], out[1:]
    if int(err) != 0:
        raise CudaCallError(f"{fn.__name__}: {getattr(err, 'name', err)}; {fix}")
    return None if not rest else rest[0] if len(rest) == 1 else rest


def _driver_reason() -> str | None:
    driver, nvrtc = _bindings()
    try:
        err, = driver.cuInit(0)
    except RuntimeError:  # cuda-pathfinder: libcuda.so not found
        return ("no NVIDIA driver (libcuda) on this machine; pack on the CPU (--pack-device cpu, "
                "device='cpu' in SessionConfig) or use a GPU machine")
    if int(err) != 0:
        return f"cuInit: {err.name}; check the GPU and its driver (nvidia-smi)"
    err, count = driver.cuDeviceGetCount()
    if int(err) != 0 or count == 0:
        return "no CUDA GPU visible; check nvidia-smi and CUDA_VISIBLE_DEVICES"
    try:
        nvrtc.nvrtcVersion()
    except RuntimeError:  # libnvrtc not found
        return f"libnvrtc not found; {NVRTC_FIX}"
    return None


@functools.lru_cache(maxsize=1)
def _choice() -> tuple[str | None, str | None]:
    """(API name, None) for the first usable API, or (None, why neither can run)."""
    reasons = []
    if _bindings() is not None:
        reason = _driver_reason()
        if reason is None:
            return DriverApi.name, None
        reasons.append(reason)
    if _pycuda() is not None:
        reason = _pycuda_reason()
        if reason is None:
            return PyCudaApi.name, None
        reasons.append(reason)
    reasons.append("neither cuda-python nor pycuda is installed; pip install 'cuda-python>=12' "
                   "or pack on the CPU (--pack-device cpu, device='cpu' in SessionConfig)")
    return None, reasons[0]


def unavailable_reason() -> str | None:
    """Why the CUDA path cannot run here (one line with its fix), or None when it can."""
    return _choice()[1]


def require() -> None:
    """Raise BackendUnavailable (one line) unless the CUDA packing path can run here."""
    reason = unavailable_reason()
    if reason is not None:
        raise BackendUnavailable(f"CUDA packing: {reason}")


def nvrtc_target(cc: int, supported) -> tuple[str, str]:
    """What NVRTC builds for compute capability ``cc`` (e.g. 87 for Orin, 90 for Hopper).

    Returns:
        (arch, kind): ``("sm_<cc>", "cubin")`` when this NVRTC knows the arch, else PTX for
        the newest older arch (``("compute_<a>", "ptx")``), which the driver JIT-compiles.
    """
    supported = sorted(int(a) for a in supported)
    if cc in supported:
        return f"sm_{cc}", "cubin"
    older = [a for a in supported if a <= cc]
    if not older:
        raise BackendUnavailable(f"NVRTC: supports sm_{supported[0]}..sm_{supported[-1]} but "
                                 f"the GPU is sm_{cc}; install an NVRTC for this GPU "
                                 f"({NVRTC_FIX})")
    return f"compute_{older[-1]}", "ptx"


def _supported_archs() -> list[int]:
    b = _bindings()
    if b is None:
        raise BackendUnavailable("NVRTC: cuda-python is not installed; pip install cuda-python")
    try:
        return list(cuda_call(b[1].nvrtcGetSupportedArchs))
    except RuntimeError:
        raise BackendUnavailable(f"NVRTC: libnvrtc not found; {NVRTC_FIX}") from None


def compile_source(source: str, arch: str, kind: str, name: str = SOURCE_PATH.name) -> bytes:
    """``source`` compiled by NVRTC through ``cuda.core.Program`` (``kind``: ``cubin`` or
    ``ptx``); a compile error is one line with the compiler's first error."""
    try:
        from cuda.core import Program, ProgramOptions
    except ImportError:
        raise BackendUnavailable("NVRTC: cuda.core is not installed; pip install cuda-python") \
            from None
    try:
        code = Program(source, "c++", ProgramOptions(name=name, arch=arch, std="c++17")) \
            .compile(kind)
    except Exception as e:  # noqa: BLE001 - cuda.core's NVRTCError and friends carry the log
        if type(e).__name__ == "DynamicLibNotFoundError":  # cuda.pathfinder: no libcuda (PTX
            raise BackendUnavailable(f"NVRTC: {str(e).splitlines()[0]}") from None  # asks it)
        text = str(e)
        first = next((ln.strip() for ln in text.splitlines() if "error" in ln.lower()),
                     text.splitlines()[0] if text else type(e).__name__)
        raise CudaCallError(f"{name}: NVRTC compile failed ({first[:200]}); fix the kernel "
                            "source (nvcc in CI reports the same error)") from None
    return bytes(code.code)


@functools.lru_cache(maxsize=None)
def nvrtc_compile(cc: int) -> tuple[bytes, str]:
    """Compile ``pack.cu`` with NVRTC for compute capability ``cc`` (cached per arch).

    Needs libnvrtc (the ``nvidia-cuda-nvrtc`` wheel) but no GPU. Returns
    (image, 'cubin' | 'ptx').
    """
    arch, kind = nvrtc_target(cc, _supported_archs())
    return compile_source(kernel_source(), arch, kind), kind


class DriverApi:
    """cuda-python driver API on one device (primary context, one stream per instance)."""

    name = "cuda-python"

    def __init__(self, ordinal: int = 0):
        require()
        self._driver = _bindings()[0]
        self._dev = _device(ordinal)
        self.cc, self.sm_count = self._dev["cc"], self._dev["sm_count"]
        d = self._driver
        with self.current():
            self._stream = cuda_call(d.cuStreamCreate, int(d.CUstream_flags.CU_STREAM_NON_BLOCKING))

    @contextlib.contextmanager
    def current(self):
        """Make the device's primary context current for the calls inside."""
        cuda_call(self._driver.cuCtxPushCurrent, self._dev["ctx"])
        try:
            yield
        finally:
            cuda_call(self._driver.cuCtxPopCurrent)

    def alloc(self, nbytes: int) -> int:
        return int(cuda_call(self._driver.cuMemAlloc, nbytes,
                             fix="free GPU memory or pack fewer segments per call"))

    def free(self, ptr: int) -> None:
        cuda_call(self._driver.cuMemFree, ptr)

    def alloc_host(self, nbytes: int) -> tuple[int, np.ndarray]:
        """Page-locked host memory (so async copies really are async) and a uint8 view."""
        ptr = int(cuda_call(self._driver.cuMemHostAlloc, nbytes, 0))
        return ptr, host_view(ptr, nbytes)

    def free_host(self, ptr: int) -> None:
        cuda_call(self._driver.cuMemFreeHost, ptr)

    def htod(self, dst: int, src: np.ndarray, nbytes: int) -> None:
        cuda_call(self._driver.cuMemcpyHtoDAsync, dst, src.ctypes.data, nbytes, self._stream)

    def dtoh(self, dst: np.ndarray, src: int, nbytes: int) -> None:
        cuda_call(self._driver.cuMemcpyDtoHAsync, dst.ctypes.data, src, nbytes, self._stream)

    def launch(self, kernel: str, grid: int, block: int, args: np.ndarray) -> None:
        """Launch with one by-value struct parameter whose bytes are ``args`` (1 record)."""
        params = np.array([args.ctypes.data], dtype=np.uint64)  # void*[1] -> the struct
        cuda_call(self._driver.cuLaunchKernel, self._dev["functions"][kernel], grid, 1, 1,
                  block, 1, 1, 0, self._stream, params.ctypes.data, 0)

    def sync(self) -> None:
        cuda_call(self._driver.cuStreamSynchronize, self._stream)

    def close(self) -> None:
        if self._stream is not None:
            with self.current():
                cuda_call(self._driver.cuStreamDestroy, self._stream)
            self._stream = None


@functools.lru_cache(maxsize=None)
def _device(ordinal: int) -> dict:
    """Primary context, arch and loaded kernels of one device (cached per device: the
    retained primary context keeps the module alive for the whole process)."""
    d = _bindings()[0]
    attr = d.CUdevice_attribute
    dev = cuda_call(d.cuDeviceGet, ordinal, fix="pass an existing device ordinal")
    major = cuda_call(d.cuDeviceGetAttribute, attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev)
    minor = cuda_call(d.cuDeviceGetAttribute, attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev)
    sms = cuda_call(d.cuDeviceGetAttribute, attr.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev)
    ctx = cuda_call(d.cuDevicePrimaryCtxRetain, dev)
    cc = 10 * major + minor
    image, _ = nvrtc_compile(cc)
    cuda_call(d.cuCtxPushCurrent, ctx)
    try:
        module = cuda_call(d.cuModuleLoadData, image)
        functions = {k: cuda_call(d.cuModuleGetFunction, module, k.encode()) for k in KERNELS}
    finally:
        cuda_call(d.cuCtxPopCurrent)
    return {"ctx": ctx, "cc": cc, "sm_count": sms, "module": module, "functions": functions}


def host_view(ptr: int, nbytes: int) -> np.ndarray:
    """A uint8 numpy view of ``nbytes`` of host memory at address ``ptr``."""
    import ctypes

    return np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(ptr))


# ---- pycuda alternative ----------------------------------------------------------------

def _pycuda():
    try:
        import pycuda.driver as cuda
    except ImportError:
        return None
    return cuda


def _pycuda_reason() -> str | None:
    cuda = _pycuda()
    try:
        cuda.init()
        return None if cuda.Device.count() > 0 else "no CUDA GPU visible (pycuda); check nvidia-smi"
    except cuda.Error as e:
        return f"pycuda cannot initialize CUDA ({str(e).splitlines()[0]}); check the driver"


class PyCudaApi:
    """pycuda on one device: SourceModule compiles ``pack.cu`` with nvcc (cached per device)."""

    name = "pycuda"

    def __init__(self, ordinal: int = 0):
        require()
        self._cuda = cuda = _pycuda()
        self._dev = _pycuda_device(ordinal)
        self.cc, self.sm_count = self._dev["cc"], self._dev["sm_count"]
        with self.current():
            self._stream = cuda.Stream()
        self._owned: dict[int, object] = {}  # ptr -> pycuda allocation (its owner)

    @contextlib.contextmanager
    def current(self):
        self._dev["ctx"].push()
        try:
            yield
        finally:
            self._cuda.Context.pop()

    def alloc(self, nbytes: int) -> int:
        mem = self._cuda.mem_alloc(nbytes)
        self._owned[int(mem)] = mem
        return int(mem)

    def free(self, ptr: int) -> None:
        self._owned.pop(ptr).free()

    def alloc_host(self, nbytes: int) -> tuple[int, np.ndarray]:
        arr = self._cuda.pagelocked_empty(nbytes, np.uint8)
        self._owned[arr.ctypes.data] = arr
        return arr.ctypes.data, arr

    def free_host(self, ptr: int) -> None:
        self._owned.pop(ptr).base.free()

    def htod(self, dst: int, src: np.ndarray, nbytes: int) -> None:
        self._cuda.memcpy_htod_async(dst, src.reshape(-1).view(np.uint8)[:nbytes], self._stream)

    def dtoh(self, dst: np.ndarray, src: int, nbytes: int) -> None:
        self._cuda.memcpy_dtoh_async(dst.reshape(-1).view(np.uint8)[:nbytes], src, self._stream)

    def launch(self, kernel: str, grid: int, block: int, args: np.ndarray) -> None:
        # a structured numpy scalar is passed by value as its raw bytes
        self._dev["functions"][kernel](args[0], block=(block, 1, 1), grid=(grid, 1),
                                       stream=self._stream)

    def sync(self) -> None:
        self._stream.synchronize()

    def close(self) -> None:
        self._stream = None


@functools.lru_cache(maxsize=None)
def _pycuda_device(ordinal: int) -> dict:
    cuda = _pycuda()
    from pycuda.compiler import SourceModule

    dev = cuda.Device(ordinal)
    ctx = dev.retain_primary_context()
    major, minor = dev.compute_capability()
    ctx.push()
    try:
        mod = SourceModule(kernel_source(), no_extern_c=True, options=["-std=c++17"],
                           arch=f"sm_{major}{minor}")
        functions = {k: mod.get_function(k) for k in KERNELS}
    finally:
        cuda.Context.pop()
    return {"ctx": ctx, "cc": 10 * major + minor, "module": mod, "functions": functions,
            "sm_count": dev.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT)}


def open_api(ordinal: int = 0):
    """The CUDA API available here: cuda-python first, pycuda when that is what is installed.

    Raises:
        BackendUnavailable: neither can run (one line with the reason and the fix).
    """
    require()
    return DriverApi(ordinal) if _choice()[0] == DriverApi.name else PyCudaApi(ordinal)
