"""Graph cleanup reaches a fixed point; every written model passes onnx.checker and ORT."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from hrlf.export.graph import check_model, clean_graph
from hrlf.errors import ArtifactError


def _foldable_model() -> onnx.ModelProto:
    """y = x + (a * b) + 0 * unused, where a * b is a constant subgraph to fold."""
    a = numpy_helper.from_array(np.full((3,), 2.0, np.float32), "a")
    b = numpy_helper.from_array(np.full((3,), 3.0, np.float32), "b")
    nodes = [helper.make_node("Mul", ["a", "b"], ["ab"]),
             helper.make_node("Identity", ["ab"], ["ab2"]),
             helper.make_node("Add", ["x", "ab2"], ["y"]),
             helper.make_node("Neg", ["x"], ["dead"])]  # feeds nothing: removed
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=[a, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_cleanup_folds_constants_and_stops_at_a_fixed_point():
    model = _foldable_model()
    cleaned, counts = clean_graph(model)
    assert counts[0] == 4 and counts[-1] == counts[-2] == 1  # only the Add is left
    check_model(cleaned)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    sess = ort.InferenceSession(cleaned.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], x + 6.0)
    again, counts2 = clean_graph(cleaned)
    assert counts2 == [1, 1]


def test_exported_graph_is_at_a_fixed_point(exported, onnx_model):
    report = exported[0]
    rounds = report["nodes"]["rounds"]
    assert rounds[-1] == rounds[-2] == report["nodes"]["cleaned"] == len(onnx_model.graph.node)
    _, counts = clean_graph(onnx_model)
    assert counts[0] == counts[-1]


@pytest.mark.parametrize("name", ["model.onnx", "model.fp16.onnx"])
def test_every_written_model_passes_checker_and_runs(exported, name):
    path = exported[1] / name
    check_model(path, name)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.ones([d if isinstance(d, int) else 2 for d in i.shape], np.float32)
             for i in sess.get_inputs()}
    (score,) = sess.run(None, feeds)
    assert score.shape == (2,) and score.dtype == np.float32 and np.isfinite(score).all()


def test_fp16_model_holds_fp16_weights(exported):
    model = onnx.load(str(exported[1] / "model.fp16.onnx"))
    halves = [t for t in model.graph.initializer if t.data_type == TensorProto.FLOAT16]
    assert len(halves) > len(model.graph.initializer) / 2
    sizes = {n: (exported[1] / n).stat().st_size for n in ("model.onnx", "model.fp16.onnx")}
    assert sizes["model.fp16.onnx"] < sizes["model.onnx"]


def test_checker_failure_is_one_typed_line():
    model = _foldable_model()
    model.graph.node[2].input[1] = "nowhere"
    with pytest.raises(ArtifactError, match=r"^broken\.onnx: fails onnx\.checker") as e:
        check_model(model, "broken.onnx")
    assert "\n" not in str(e.value)
