"""The graph interface, TensorRT profile shapes and engine-cache naming (torch-free).

The exporter (``hrlf.export``) and the runtime's TensorRT backend both need three things
that must never disagree, so they live here, in the torch-free base:

* :func:`graph_io` declares the ONNX graph's inputs and outputs once: names, dtypes and
  axes (a ``str`` axis is dynamic and named, an ``int`` is fixed). It drives the exporter's
  dummy inputs and ``dynamic_shapes``, the post-export interface check, the TensorRT
  optimization profile and the Triton ``config.pbtxt``.
* :func:`profile_shapes` turns a spec into per-input (min, opt, max) shapes.
* :func:`engine_name` / :func:`check_engine`: an engine only runs on the TensorRT version
  and GPU that built it, for the ONNX it was built from, so all of that is in its file
  name, ``model.<trt-version>-<gpu-slug>-<fp16|fp32>-<onnx-sha8>.engine``, and its bytes'
  sha256 is in ``spec.json``. A cached engine whose name or sha does not match is stale:
  rebuild it, never load it.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping, Union

from ..errors import InputError
from .spec import (MODALITIES, MODALITY_MASK, SCORE, ModelSpec, frame_mask_name,
                   sha256_file)

Axis = Union[str, int]
BATCH = "batch"
PRECISIONS = ("fp16", "fp32")
DEFAULT_MAX_BATCH = 32
#: --max-frames default: this many windows' worth of the longest modality.
MAX_FRAMES_WINDOWS = 4
ENGINE_RE = re.compile(r"^model\.(?P<trt>[0-9][0-9a-z.]*)-(?P<gpu>[a-z0-9-]+)-"
                       r"(?P<precision>fp16|fp32)-(?P<sha8>[0-9a-f]{8})\.engine$")


def frames_axis(modality: str) -> str:
    """Name of a modality's dynamic frame axis (``audio`` -> ``audio_frames``)."""
    return f"{modality}_frames"


@dataclass(frozen=True)
class TensorDecl:
    """One graph input or output.

    Attributes:
        name: tensor name in the ONNX graph (and TensorRT engine, and Triton config).
        axes: per axis, a dynamic axis name (str) or a fixed size (int).
        dtype: numpy dtype name.
    """

    name: str
    axes: tuple[Axis, ...]
    dtype: str = "float32"

    def shape(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        """Concrete shape with each dynamic axis taken from ``sizes``."""
        return tuple(sizes[a] if isinstance(a, str) else a for a in self.axes)

    @property
    def dynamic_axes(self) -> dict[int, str]:
        """Axis index -> name, for the dynamic axes only."""
        return {i: a for i, a in enumerate(self.axes) if isinstance(a, str)}


def graph_io(spec: ModelSpec) -> tuple[list[TensorDecl], list[TensorDecl]]:
    """The graph's inputs and outputs, in their fixed order (see ``spec.input_names()``).

    Inputs: one float tensor per modality ``(batch, <m>_frames, dim)``, a per-frame mask
    ``(batch, <m>_frames)`` per modality, and ``modality_mask (batch, 3)``.
    Output: ``score (batch,)``.
    """
    feats = [TensorDecl(m, (BATCH, frames_axis(m), spec.dim(m))) for m in MODALITIES]
    masks = [TensorDecl(frame_mask_name(m), (BATCH, frames_axis(m))) for m in MODALITIES]
    inputs = feats + masks + [TensorDecl(MODALITY_MASK, (BATCH, len(MODALITIES)))]
    return inputs, [TensorDecl(SCORE, (BATCH,))]


def default_max_frames(spec: ModelSpec) -> int:
    """Default upper bound on any modality's frame count (4 windows of the longest)."""
    return MAX_FRAMES_WINDOWS * max(spec.frames(m) for m in MODALITIES)


def check_limits(spec: ModelSpec, max_batch: int, max_frames: int) -> None:
    """Validate --max-batch / --max-frames against the spec.

    Raises:
        InputError: a non-positive batch, or a frame bound below a modality's window.
    """
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise InputError(f"--max-batch {max_batch!r}: must be an integer >= 1; pass e.g. "
                         f"--max-batch {DEFAULT_MAX_BATCH}")
    need = max(spec.frames(m) for m in MODALITIES)
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < need:
        longest = max(MODALITIES, key=spec.frames)
        raise InputError(f"--max-frames {max_frames!r}: below {longest}'s {need} frames per "
                         f"window; pass at least {need} (default {default_max_frames(spec)})")


def profile_shapes(spec: ModelSpec, max_batch: int = DEFAULT_MAX_BATCH,
                   max_frames: int | None = None, opt_batch: int = 1
                   ) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """TensorRT optimization-profile shapes for every input.

    min is batch 1 and 1 frame; opt is ``opt_batch`` and the spec's frames per window
    (what a live stream sends); max is ``max_batch`` and ``max_frames``.

    Args:
        spec: the model spec.
        max_batch: largest batch the engine accepts.
        max_frames: largest frame count of any modality (default :func:`default_max_frames`).
        opt_batch: batch size TensorRT tunes for (clipped to ``max_batch``).

    Returns:
        input name -> (min, opt, max) shapes.

    Raises:
        InputError: limits below what the spec needs.
    """
    max_frames = default_max_frames(spec) if max_frames is None else max_frames
    check_limits(spec, max_batch, max_frames)
    lo = {BATCH: 1, **{frames_axis(m): 1 for m in MODALITIES}}
    opt = {BATCH: max(1, min(opt_batch, max_batch)),
           **{frames_axis(m): spec.frames(m) for m in MODALITIES}}
    hi = {BATCH: max_batch, **{frames_axis(m): max_frames for m in MODALITIES}}
    inputs, _ = graph_io(spec)
    return {t.name: (t.shape(lo), t.shape(opt), t.shape(hi)) for t in inputs}


def gpu_slug(gpu_name: str) -> str:
    """File-name-safe GPU name: ``NVIDIA H100 80GB HBM3`` -> ``nvidia-h100-80gb-hbm3``."""
    slug = re.sub(r"[^a-z0-9]+", "-", gpu_name.lower()).strip("-")
    return slug or "unknown-gpu"


def _trt_tag(trt_version: str) -> str:
    tag = re.sub(r"[^0-9a-z.]+", "", str(trt_version).lower())
    if not tag or not tag[0].isdigit():
        raise InputError(f"TensorRT version {trt_version!r}: not a version number; "
                         "check the tensorrt installation")
    return tag


@dataclass(frozen=True)
class EngineKey:
    """What an engine is bound to: TensorRT version, GPU, precision, source ONNX sha256."""

    trt_version: str
    gpu_name: str
    precision: str
    onnx_sha256: str

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(f"engine precision {self.precision!r}: unknown; use one of "
                             f"{list(PRECISIONS)}")
        if not re.fullmatch(r"[0-9a-f]{64}", self.onnx_sha256 or ""):
            raise InputError(f"onnx sha256 {self.onnx_sha256!r}: not a sha256 hex digest; "
                             "pass sha256_file(model.onnx)")

    @property
    def filename(self) -> str:
        """``model.<trt>-<gpu>-<precision>-<sha8>.engine``."""
        return engine_name(self.trt_version, self.gpu_name, self.precision, self.onnx_sha256)


def engine_name(trt_version: str, gpu_name: str, precision: str, onnx_sha256: str) -> str:
    """File name of an engine built by ``trt_version`` on ``gpu_name`` from that ONNX."""
    if precision not in PRECISIONS:
        raise InputError(f"engine precision {precision!r}: unknown; use one of "
                         f"{list(PRECISIONS)}")
    return (f"model.{_trt_tag(trt_version)}-{gpu_slug(gpu_name)}-{precision}-"
            f"{onnx_sha256[:8]}.engine")


def parse_engine_name(name: str) -> dict[str, str] | None:
    """``{trt, gpu, precision, sha8}`` of an engine file name, or None if it is not one."""
    m = ENGINE_RE.match(os.path.basename(name))
    return m.groupdict() if m else None


def engine_source(precision: str, trt_major: int) -> str:
    """Which ONNX file an engine is built from.

    TensorRT 11 is strongly typed only: an FP16 engine comes from ``model.fp16.onnx``.
    TensorRT 10 builds FP16 with the builder flag from the FP32 ``model.onnx``.
    """
    return "model.fp16.onnx" if precision == "fp16" and trt_major >= 11 else "model.onnx"


@dataclass(frozen=True)
class EngineStatus:
    """Result of :func:`check_engine`.

    Attributes:
        path: where the engine for this key lives (or would live) in the model dir.
        fresh: True when that file exists and may be loaded.
        reason: why it may not be loaded ("" when fresh).
        stale: other engine files in the model dir (other TensorRT/GPU/ONNX): never load.
    """

    path: str
    fresh: bool
    reason: str
    stale: tuple[str, ...] = ()


def check_engine(model_dir: str | os.PathLike, spec: ModelSpec, key: EngineKey) -> EngineStatus:
    """Decide whether the cached engine for ``key`` in ``model_dir`` may be loaded.

    Fresh means: the file named for ``key`` exists, the ONNX it names is the one in this
    model dir (``key.onnx_sha256`` matches ``spec.artifacts``), and its bytes match the
    sha256 recorded in ``spec.artifacts``. Anything else is stale and must be rebuilt.
    """
    model_dir = os.fspath(model_dir)
    path = os.path.join(model_dir, key.filename)
    others = tuple(sorted(os.path.join(model_dir, f) for f in _listdir(model_dir)
                          if parse_engine_name(f) and f != key.filename))
    source = [n for n, d in spec.artifacts.items() if d == key.onnx_sha256 and n.endswith(".onnx")]

    def stale(reason: str) -> EngineStatus:
        return EngineStatus(path, False, reason, others)

    if not source:
        return stale(f"no ONNX in spec.json has sha256 {key.onnx_sha256[:8]}…")
    if not os.path.isfile(path):
        why = f"{key.filename} not built yet"
        if others:
            why += f" (found {', '.join(os.path.basename(o) for o in others)}: other "
            why += "TensorRT/GPU/precision/ONNX)"
        return stale(why)
    want = spec.artifacts.get(key.filename)
    if want is None:
        return stale(f"{key.filename} is not recorded in spec.json")
    if sha256_file(path) != want:
        return stale(f"{key.filename} differs from the sha256 in spec.json")
    return EngineStatus(path, True, "", others)


def timing_cache_path(trt_version: str, gpu_name: str, root: str | None = None) -> str:
    """Per-TensorRT-version, per-GPU timing cache (``$HRLF_CACHE`` or ``~/.cache/hrlf``)."""
    root = root or os.environ.get("HRLF_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "hrlf")
    return os.path.join(root, f"trt-{_trt_tag(trt_version)}-{gpu_slug(gpu_name)}.timing-cache")


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []
