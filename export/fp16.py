"""FP16 ONNX (what strongly typed TensorRT 11 consumes) with FP32 inputs and outputs.

Uses ONNX Runtime's converter: ``onnxconverter_common.float16`` produced a model that ONNX
Runtime refused to load (a Cast's output type no longer matched), see
``shared/design/toolchain-notes.md``. Ops on the converter's block list (e.g. CumSum)
stay FP32 behind Casts. The masks' -1e4 attention bias is finite in FP16 (max 65504).
"""
from __future__ import annotations

import logging
import warnings

import onnx
import onnx_graphsurgeon as gs

from ..errors import ArtifactError

log = logging.getLogger("hrlf.export")


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Convert weights and compute to FP16, keeping FP32 graph inputs and outputs.

    Args:
        model: the cleaned FP32 model (left unchanged).

    Returns:
        The FP16 model, interface identical to the FP32 one.

    Raises:
        ArtifactError: the converter failed.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    src = onnx.ModelProto()
    src.CopyFrom(model)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # it warns about every value it clamps
            out = convert_float_to_float16(src, keep_io_types=True)
    except Exception as e:  # the converter raises bare Exception/ValueError
        raise ArtifactError(f"model.fp16.onnx: FP16 conversion failed ({type(e).__name__}: "
                            f"{str(e)[:160]}); export without --fp16") from e
    _drop_duplicate_nodes(out)
    # the converter appends the input Casts after their consumers: sort again
    graph = gs.import_onnx(out)
    out = gs.export_onnx(graph.cleanup().toposort())
    halves = sum(1 for t in out.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16)
    log.info("fp16: %d of %d initializers in FP16", halves, len(out.graph.initializer))
    return out


def _drop_duplicate_nodes(model: onnx.ModelProto) -> None:
    """Remove exact repeats of a node (same op, inputs, outputs and attributes), in place.

    onnxruntime 1.30's converter inserts one ``<const>_cast_to_fp32`` Cast per consumer of a
    shared FP16 constant, all with the same output name, which breaks SSA (seen on a GPU
    box with onnxruntime 1.30; 1.32 does not). Consumers refer to the value by name, so
    keeping the first copy is exact. Two *different* nodes writing one name stay, and
    ``onnx.checker`` reports them.
    """
    seen: dict[str, bytes] = {}
    keep = []
    for node in model.graph.node:
        blob = node.SerializeToString()
        if node.output and all(seen.get(o) == blob for o in node.output):
            continue
        for o in node.output:
            seen.setdefault(o, blob)
        keep.append(node)
    if len(keep) != len(model.graph.node):
        log.info("fp16: dropped %d duplicate node(s) the converter inserted",
                 len(model.graph.node) - len(keep))
        del model.graph.node[:]
        model.graph.node.extend(keep)
