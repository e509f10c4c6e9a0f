"""Graph cleanup with onnx-graphsurgeon, to a fixed point, then shape inference and checks.

As in TensorRT's ``samples/python/detectron2/create_onnx.py`` (``sanitize``): repeat
cleanup -> toposort -> shape inference -> constant folding until the node count stops
changing, because each pass can expose more constants to the next.
"""
from __future__ import annotations

import logging
import os

import onnx
import onnx_graphsurgeon as gs

from ..errors import ArtifactError

log = logging.getLogger("hrlf.export")
MAX_ROUNDS = 10


def _infer(graph: gs.Graph) -> gs.Graph:
    """Drop intermediate shapes and infer them again (stale shapes survive folding)."""
    keep = {t.name for t in graph.inputs + graph.outputs}
    for node in graph.nodes:
        for t in node.outputs:
            if t.name not in keep:
                t.shape = None
    model = onnx.shape_inference.infer_shapes(gs.export_onnx(graph), data_prop=True)
    return gs.import_onnx(model)


def clean_graph(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[int]]:
    """Fold constants, remove dead nodes and sort, repeated until nothing changes.

    Args:
        model: an exported model (left unchanged).

    Returns:
        The cleaned model (shapes inferred) and the node count after each round, starting
        with the exported count.

    Raises:
        ArtifactError: the graph does not converge within ``MAX_ROUNDS`` rounds.
    """
    graph = gs.import_onnx(model)
    counts = [len(graph.nodes)]
    for _ in range(MAX_ROUNDS):
        graph.cleanup().toposort()
        graph = _infer(graph)
        graph.fold_constants(fold_shapes=True, error_ok=True).cleanup().toposort()
        counts.append(len(graph.nodes))
        if counts[-1] == counts[-2]:
            break
    else:
        raise ArtifactError(f"graph cleanup: node count still changing after {MAX_ROUNDS} "
                            f"rounds ({counts}); report a bug")
    out = onnx.shape_inference.infer_shapes(gs.export_onnx(_infer(graph)), data_prop=True)
    # keep what the exporter recorded about itself
    out.producer_name, out.producer_version = model.producer_name, model.producer_version
    out.ir_version = model.ir_version
    log.info("graph cleanup: nodes %s", " -> ".join(map(str, counts)))
    return out, counts


def check_model(model: onnx.ModelProto | str | os.PathLike, source: str = "model.onnx") -> None:
    """``onnx.checker`` with full shape-inference check, as one typed error.

    Raises:
        ArtifactError: the model is not valid ONNX.
    """
    try:
        onnx.checker.check_model(model if isinstance(model, onnx.ModelProto) else os.fspath(model),
                                 full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise ArtifactError(f"{source}: fails onnx.checker ({first}); report a bug with the "
                            "checkpoint attached") from None


def save_model(model: onnx.ModelProto, path: str | os.PathLike) -> None:
    """Write one self-contained .onnx file (no external data: the models are small)."""
    onnx.save_model(model, os.fspath(path), save_as_external_data=False)
