"""TensorRT engines through polygraphy, TensorRT 10.x and 11.x in one place.

Behind the ``[tensorrt]`` extra; ``tensorrt`` is imported lazily, so everything else in
``hrlf.export`` works without it. On a Jetson, JetPack installs TensorRT as a system
package: use a virtual environment made with ``--system-site-packages``. An engine only
runs on the GPU model and TensorRT version that built it, so it is built on the device.

Two explicit, version-checked branches (see :func:`build_plan`):

* TensorRT 10.x (JetPack 6): weakly typed network from the FP32 ``model.onnx``; FP16 via
  the builder flag (``BuilderFlag.FP16``, deprecated in 10.12, removed in 11).
* TensorRT 11.x: every network is strongly typed and the precision flags are gone; an
  FP16 engine is built from ``model.fp16.onnx`` (FP16 weights and compute, FP32 I/O).

The naming, profile shapes and cache check are torch-free and live in
:mod:`hrlf.runtime.engine_cache`, shared with the runtime's TensorRT backend.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass

from ..runtime.engine_cache import (EngineKey, check_engine, engine_source,
                                    profile_shapes, timing_cache_path)
from ..errors import ArtifactError, BackendUnavailable
from ..runtime.spec import ModelSpec, sha256_file

log = logging.getLogger("hrlf.export")
_JETSON_HINT = ("install hrlf[tensorrt] on a machine with an NVIDIA GPU, or on a Jetson use "
                "JetPack's TensorRT from a venv made with --system-site-packages")


def require_tensorrt():
    """Import tensorrt, or raise BackendUnavailable with one line saying how to get it."""
    try:
        import tensorrt as trt
    except Exception as e:  # ImportError, or OSError from a missing libnvinfer
        raise BackendUnavailable(f"tensorrt: cannot be imported ({type(e).__name__}); "
                                 f"{_JETSON_HINT}") from None
    trt_major(trt.__version__)
    return trt


def trt_major(version: str) -> int:
    """Major version, refusing what this code has no branch for."""
    try:
        major = int(str(version).split(".")[0])
    except ValueError:
        raise BackendUnavailable(f"tensorrt {version!r}: unreadable version; reinstall "
                                 "tensorrt") from None
    if major not in (10, 11):
        raise BackendUnavailable(f"tensorrt {version}: unsupported (hrlf builds with 10.x or "
                                 "11.x); install TensorRT 10 or 11")
    return major


def gpu_name(device: int = 0) -> str:
    """Name of a CUDA device via cuda-python (``NVIDIA H100 80GB HBM3``, ``Orin``)."""
    try:
        from cuda.bindings import driver
    except ImportError:
        try:
            from cuda import cuda as driver
        except ImportError:
            raise BackendUnavailable("cuda-python: not installed; pip install "
                                     "'hrlf[tensorrt]'") from None
    try:
        _check(driver.cuInit(0))
        dev = _check(driver.cuDeviceGet(device))
        raw = _check(driver.cuDeviceGetName(256, dev))
    except Exception as e:  # a missing libcuda raises from inside the binding
        raise BackendUnavailable(f"CUDA GPU {device}: not available ({type(e).__name__}: "
                                 f"{str(e)[:120]}); build engines on the target GPU") from None
    return bytes(raw).split(b"\0", 1)[0].decode(errors="replace").strip()


def _check(ret):
    err, *rest = ret if isinstance(ret, tuple) else (ret,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else rest


@dataclass(frozen=True)
class EnginePlan:
    """What to build: the key (name), the source ONNX and the network/builder settings."""

    key: EngineKey
    source: str
    strongly_typed: bool
    fp16_flag: bool


def build_plan(model_dir: str, precision: str, trt_version: str, gpu: str) -> EnginePlan:
    """Pick the source ONNX and flags for this TensorRT version (the 10/11 branches)."""
    major = trt_major(trt_version)
    source = os.path.join(model_dir, engine_source(precision, major))
    if not os.path.isfile(source):
        raise ArtifactError(f"{source}: missing; export with --fp16 to build an FP16 engine "
                            f"with TensorRT {trt_version}")
    key = EngineKey(trt_version, gpu, precision, sha256_file(source))
    if major == 10:
        # TensorRT 10 (JetPack 6): weak typing, FP16 kernels enabled by the builder flag on
        # the FP32 graph; explicit batch is the default (EXPLICIT_BATCH is deprecated).
        return EnginePlan(key, source, strongly_typed=False, fp16_flag=precision == "fp16")
    # TensorRT 11: strong typing is the only mode and BuilderFlag.FP16 is gone; precision
    # comes from the graph's own types (model.fp16.onnx for fp16).
    return EnginePlan(key, source, strongly_typed=True, fp16_flag=False)


def _parse(trt, plan: EnginePlan):
    """Builder, network and parser for the plan; every parser error reported."""
    from polygraphy.backend.trt import CreateNetwork
    from polygraphy.backend.trt.util import get_trt_logger

    builder, network = CreateNetwork(strongly_typed=plan.strongly_typed or None)()
    # polygraphy's process-wide logger: it outlives the parser (a temporary would not)
    parser = trt.OnnxParser(network, get_trt_logger())
    if not parser.parse_from_file(plan.source):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        for e in errors:
            log.error("TensorRT parser: %s", e)
        raise ArtifactError(f"{plan.source}: TensorRT {trt.__version__} cannot parse it "
                            f"({len(errors)} error(s), first: {errors[0][:160] if errors else '?'})"
                            "; try another --opset or report the errors logged above")
    for kind, n, get in (("input", network.num_inputs, network.get_input),
                         ("output", network.num_outputs, network.get_output)):
        for i in range(n):
            t = get(i)
            log.info("TensorRT %s %s: shape %s dtype %s", kind, t.name, tuple(t.shape), t.dtype)
    return builder, network, parser


def build_engine(model_dir: str, spec: ModelSpec, precision: str, max_batch: int,
                 max_frames: int | None = None, timing_cache: str | None = None,
                 reuse_from: str | None = None) -> dict:
    """Build ``model.<trt>-<gpu>-<precision>-<sha8>.engine`` in ``model_dir``.

    Args:
        model_dir: folder holding ``model.onnx`` (and ``model.fp16.onnx``); the engine is
            written there.
        spec: the model spec (optimization profile).
        precision: ``fp16`` or ``fp32``.
        max_batch, max_frames: the profile's upper bounds.
        timing_cache: timing-cache file, read if present and updated
            (default :func:`~hrlf.runtime.engine_cache.timing_cache_path`).
        reuse_from: a previous model dir; its engine is copied instead of rebuilt when
            :func:`~hrlf.runtime.engine_cache.check_engine` finds it fresh for this key.

    Returns:
        Report: engine file name, TensorRT version, GPU, precision, source, build seconds.

    Raises:
        BackendUnavailable: no tensorrt or no GPU.
        ArtifactError: parse or build failure.
    """
    trt = require_tensorrt()
    from polygraphy.backend.trt import CreateConfig, Profile, engine_bytes_from_network
    from polygraphy.exception import PolygraphyException

    gpu = gpu_name()
    plan = build_plan(model_dir, precision, trt.__version__, gpu)
    path = os.path.join(model_dir, plan.key.filename)
    report = {"file": plan.key.filename, "trt_version": trt.__version__, "gpu": gpu,
              "precision": precision, "source": os.path.basename(plan.source),
              "strongly_typed": plan.strongly_typed, "reused": False}
    if _reuse(reuse_from, plan.key, path):
        return {**report, "reused": True, "build_s": 0.0}
    timing_cache = timing_cache or timing_cache_path(trt.__version__, gpu)
    os.makedirs(os.path.dirname(timing_cache), exist_ok=True)
    profile = Profile()
    for name, (lo, opt, hi) in profile_shapes(spec, max_batch, max_frames).items():
        profile.add(name, min=lo, opt=opt, max=hi)
        log.info("profile %s: min %s opt %s max %s", name, lo, opt, hi)
    t0 = time.perf_counter()
    network = _parse(trt, plan)
    config = CreateConfig(fp16=plan.fp16_flag or None, profiles=[profile],
                          load_timing_cache=timing_cache if os.path.exists(timing_cache) else None)
    try:
        blob = engine_bytes_from_network(network, config=config, save_timing_cache=timing_cache)
    except PolygraphyException as e:
        raise ArtifactError(f"{plan.source}: TensorRT {trt.__version__} engine build failed "
                            f"({str(e)[:160]}); see the TensorRT log above") from None
    if blob is None:
        raise ArtifactError(f"{plan.source}: TensorRT {trt.__version__} returned no engine; "
                            "see the TensorRT log above")
    with open(path, "wb") as f:
        f.write(blob)
    report.update(build_s=time.perf_counter() - t0, timing_cache=timing_cache)
    log.info("engine %s built in %.1f s", plan.key.filename, report["build_s"])
    return report


def _reuse(reuse_from: str | None, key: EngineKey, path: str) -> bool:
    """Copy a fresh cached engine from a previous model dir; False when there is none."""
    if not reuse_from or not os.path.isfile(os.path.join(reuse_from, "spec.json")):
        return False
    status = check_engine(reuse_from, ModelSpec.load(reuse_from), key)
    if not status.fresh:
        log.info("engine cache: %s; building", status.reason)
        return False
    shutil.copyfile(status.path, path)
    log.info("engine %s reused from %s", key.filename, reuse_from)
    return True


def trt_runner(engine_path: str, name: str = "tensorrt"):
    """A polygraphy TensorRT runner for an engine file."""
    require_tensorrt()
    from polygraphy.backend.trt import EngineFromPath, TrtRunner

    return TrtRunner(EngineFromPath(engine_path), name=name)
