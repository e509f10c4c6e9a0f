"""FP16 conversion: duplicate nodes some converter versions insert are dropped exactly."""
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from hrlf.export.fp16 import _drop_duplicate_nodes


def _model_with_repeated_cast() -> onnx.ModelProto:
    # what onnxruntime 1.30's converter writes: one Cast per consumer, same output name
    const = helper.make_tensor("c16", TensorProto.FLOAT16, [], np.array([2.0], np.float16))
    cast = helper.make_node("Cast", ["c16"], ["c32"], name="c16_cast", to=TensorProto.FLOAT)
    nodes = [cast, helper.make_node("Mul", ["x", "c32"], ["y1"]),
             helper.make_node("Cast", ["c16"], ["c32"], name="c16_cast", to=TensorProto.FLOAT),
             helper.make_node("Add", ["y1", "c32"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])], [const])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_identical_repeats_are_dropped_and_the_model_runs():
    m = _model_with_repeated_cast()
    assert len(m.graph.node) == 4
    _drop_duplicate_nodes(m)
    assert [n.op_type for n in m.graph.node] == ["Cast", "Mul", "Add"]
    onnx.checker.check_model(m, full_check=True)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"x": np.array([1, 2, 3], np.float32)})[0]
    np.testing.assert_allclose(y, [4, 6, 8])


def test_different_nodes_with_one_name_are_kept_for_the_checker():
    m = _model_with_repeated_cast()
    m.graph.node[2].attribute[0].i = TensorProto.DOUBLE  # not a repeat: same name, other op
    _drop_duplicate_nodes(m)
    assert len(m.graph.node) == 4
