"""PyTorch -> ONNX with torch's dynamo exporter, dynamic batch and frames.

The interface is declared once (:func:`hrlf.runtime.engine_cache.graph_io`); this module
derives the dummy inputs and ``dynamic_shapes`` from it, exports, repairs the dynamic axis
names and then asserts the exported graph matches the declaration exactly.

Why dynamo: the TorchScript exporter bakes the example's batch size into a Reshape of
self-attention (see ``shared/design/toolchain-notes.md``).
Why the renaming: torch's ``create_rename_mapping`` can attach a declared axis name to the
wrong axis (audio's frames named ``text_frames``, vision's ``audio_frames``). Two different
axes then share one ``dim_param`` and ONNX Runtime warns "Shape mismatch attempting to
re-use buffer". Exporters also silently drop unused inputs, hence the exact check.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import warnings

import onnx
import torch

from ..runtime.engine_cache import TensorDecl, graph_io
from ..errors import ArtifactError, InputError
from ..runtime.spec import ModelSpec
from ..train.model import HRLFNet, InferenceGraph

log = logging.getLogger("hrlf.export")

#: Lowest opset the dynamo exporter produces faithfully here (below it, it silently
#: falls back to 18); the highest is what the installed onnx knows.
MIN_OPSET = 17
DEFAULT_OPSET = 18
_ONNX_DTYPES = {"float32": onnx.TensorProto.FLOAT}
_DIM_LIMIT = 1 << 16


def _no_torchvision_noise(record: logging.LogRecord) -> bool:
    """torch warns once per optional torchvision op it cannot register: not our concern."""
    return "torchvision is not installed" not in record.getMessage()


def max_opset() -> int:
    """Highest opset the installed onnx package defines."""
    return onnx.defs.onnx_opset_version()


def check_opset(opset: int) -> None:
    """Raise InputError for an opset the exporter cannot produce."""
    if isinstance(opset, bool) or not isinstance(opset, int) or not (
            MIN_OPSET <= opset <= max_opset()):
        raise InputError(f"--opset {opset!r}: torch's dynamo exporter cannot produce it here; "
                         f"use {MIN_OPSET}..{max_opset()} (default {DEFAULT_OPSET})")


def dummy_inputs(spec: ModelSpec, batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """Example inputs for tracing: distinct sizes per dynamic axis so none is specialized."""
    inputs, _ = graph_io(spec)
    # Distinct, non-trivial sizes (not 0/1, not equal to each other) keep torch.export from
    # specializing or unifying axes.
    sizes = {"batch": batch}
    axes = sorted({a for d in inputs for a in d.axes if isinstance(a, str)} - {"batch"})
    for k, name in enumerate(axes):
        sizes[name] = 3 + k
    g = torch.Generator().manual_seed(seed)
    out = {}
    for d in inputs:
        shape = d.shape(sizes)
        out[d.name] = (torch.randn(*shape, generator=g) if len(shape) == 3
                       else torch.ones(*shape))
    return out


def dynamic_shapes(spec: ModelSpec) -> dict[str, dict[int, object]]:
    """``dynamic_shapes`` for ``torch.onnx.export``: one ``torch.export.Dim`` per axis name."""
    inputs, _ = graph_io(spec)
    dims: dict[str, object] = {}
    for d in inputs:
        for name in d.dynamic_axes.values():
            dims.setdefault(name, torch.export.Dim(name, min=1, max=_DIM_LIMIT))
    return {d.name: {i: dims[a] for i, a in d.dynamic_axes.items()} for d in inputs}


def export_onnx(net: HRLFNet, spec: ModelSpec, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Export the student's inference graph and check its interface.

    Args:
        net: the student network (put in eval mode).
        spec: its spec (feature dims).
        opset: ONNX opset, ``MIN_OPSET..max_opset()``.

    Returns:
        The exported model with declared names, dtypes and dynamic axes.

    Raises:
        InputError: an opset the exporter cannot produce.
        ArtifactError: the exporter failed or the graph's interface differs from the
            declaration.
    """
    check_opset(opset)
    inputs, outputs = graph_io(spec)
    graph = InferenceGraph(net).eval()
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    if _no_torchvision_noise not in registration.filters:
        registration.addFilter(_no_torchvision_noise)
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        # torch prints progress to stdout (ours carries JSON) and warns about its renaming.
        warnings.filterwarnings("ignore", message=r".*axis name.*will not be used.*")
        warnings.filterwarnings("ignore", category=FutureWarning)
        try:
            prog = torch.onnx.export(graph, (), kwargs=dummy_inputs(spec), dynamo=True,
                                     dynamic_shapes=dynamic_shapes(spec),
                                     input_names=[d.name for d in inputs],
                                     output_names=[d.name for d in outputs],
                                     opset_version=opset, external_data=False, verbose=False)
        except Exception as e:  # the exporter raises many types; keep the first line
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise ArtifactError(f"torch.onnx.export: failed ({type(e).__name__}: {first}); "
                                "check the checkpoint or report a bug") from e
    model = prog.model_proto
    got = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if got != opset:
        raise InputError(f"--opset {opset}: the exporter produced opset {got} instead; use "
                         f"{MIN_OPSET}..{max_opset()} (default {DEFAULT_OPSET})")
    fix_axis_names(model, inputs, outputs)
    check_interface(model, inputs, outputs)
    return model


def _dims(vi: onnx.ValueInfoProto):
    return vi.type.tensor_type.shape.dim


def fix_axis_names(model: onnx.ModelProto, inputs: list[TensorDecl],
                   outputs: list[TensorDecl]) -> dict[str, str]:
    """Give every dynamic axis its declared name, in place, everywhere in the graph.

    The exporter's names are mapped to the declared ones through the inputs. When that
    mapping is one-to-one it is applied to every shape in the graph; otherwise (the
    exporter merged two axes' names) the inputs and outputs are set directly and the
    intermediate shapes are dropped, to be inferred again from the fixed inputs.

    Returns:
        exporter name -> declared name, for the axes that were renamed.
    """
    mapping: dict[str, set[str]] = {}
    by_name = {vi.name: vi for vi in model.graph.input}
    for decl in inputs:
        vi = by_name.get(decl.name)
        if vi is None or len(_dims(vi)) != len(decl.axes):
            continue  # check_interface reports it
        for dim, want in zip(_dims(vi), decl.axes):
            if isinstance(want, str) and dim.HasField("dim_param"):
                mapping.setdefault(dim.dim_param, set()).add(want)
    one_to_one = all(len(v) == 1 for v in mapping.values()) and len(
        {next(iter(v)) for v in mapping.values()}) == len(mapping)
    renamed = {k: next(iter(v)) for k, v in mapping.items()
               if one_to_one and next(iter(v)) != k}
    if one_to_one:
        for vi in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
            for dim in _dims(vi):
                if dim.HasField("dim_param") and dim.dim_param in renamed:
                    dim.dim_param = renamed[dim.dim_param]
    else:
        log.info("exporter merged dynamic axis names %s; setting them from the declaration",
                 {k: sorted(v) for k, v in mapping.items() if len(v) > 1})
        del model.graph.value_info[:]
    by_name.update({vi.name: vi for vi in model.graph.output})
    for decl in inputs + outputs:
        vi = by_name.get(decl.name)
        if vi is not None and len(_dims(vi)) == len(decl.axes):
            for dim, want in zip(_dims(vi), decl.axes):
                if isinstance(want, str) and not dim.HasField("dim_value"):
                    dim.dim_param = want
    if renamed:
        log.info("renamed exporter axes %s", renamed)
    return renamed


def check_interface(model: onnx.ModelProto, inputs: list[TensorDecl],
                    outputs: list[TensorDecl], source: str = "model.onnx") -> None:
    """Assert names, order, dtypes and axes of the graph's I/O are exactly as declared.

    Raises:
        ArtifactError: the first difference, e.g. a dropped input or a baked-in axis.
    """
    for kind, got, want in (("inputs", model.graph.input, inputs),
                            ("outputs", model.graph.output, outputs)):
        names = [vi.name for vi in got]
        if names != [d.name for d in want]:
            raise ArtifactError(f"{source}: {kind} are {names}, expected "
                                f"{[d.name for d in want]} (the exporter drops unused inputs); "
                                "check that the network uses every input")
        for vi, decl in zip(got, want):
            dtype = vi.type.tensor_type.elem_type
            if dtype != _ONNX_DTYPES[decl.dtype]:
                raise ArtifactError(f"{source}: '{decl.name}' has ONNX dtype "
                                    f"{onnx.TensorProto.DataType.Name(dtype)}, expected "
                                    f"{decl.dtype}; re-export with hrlf-export")
            axes = tuple(d.dim_param if d.HasField("dim_param") else
                         (d.dim_value if d.HasField("dim_value") else None) for d in _dims(vi))
            if axes != decl.axes:
                raise ArtifactError(f"{source}: '{decl.name}' has axes {list(axes)}, expected "
                                    f"{list(decl.axes)} (a fixed size means the exporter baked "
                                    "in the example's shape); re-export with hrlf-export")
