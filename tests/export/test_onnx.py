"""The exported graph's interface: names, dtypes and dynamic axes exactly as declared."""
from __future__ import annotations

import copy

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hrlf.export.onnx import (MIN_OPSET, check_interface, check_opset, dummy_inputs,
                              dynamic_shapes, fix_axis_names, max_opset)
from hrlf.runtime.engine_cache import graph_io
from hrlf.errors import ArtifactError, InputError
from hrlf.runtime.spec import input_names


def _axes(vi):
    return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]


@pytest.mark.parametrize("name", ["model.onnx", "model.fp16.onnx"])
def test_interface_is_exactly_the_declaration(exported, export_spec, name):
    model = onnx.load(str(exported[1] / name))
    inputs, outputs = graph_io(export_spec)
    check_interface(model, inputs, outputs, source=name)
    assert [i.name for i in model.graph.input] == input_names()
    assert {_axes(i)[1] for i in model.graph.input if i.name in ("text", "audio", "vision")} == {
        "text_frames", "audio_frames", "vision_frames"}
    assert _axes(model.graph.input[1]) == ["batch", "audio_frames", export_spec.dim("audio")]
    assert _axes(model.graph.output[0]) == ["batch"]
    # FP16 keeps FP32 inputs and outputs
    for vi in list(model.graph.input) + list(model.graph.output):
        assert vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_fix_axis_names_repairs_the_exporter_quirk(onnx_model, export_spec):
    """torch once named audio's frames 'text_frames' and vision's 'audio_frames'."""
    broken = copy.deepcopy(onnx_model)
    swap = {"audio_frames": "text_frames", "vision_frames": "audio_frames", "text_frames": "s9"}
    for vi in [*broken.graph.input, *broken.graph.output, *broken.graph.value_info]:
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param in swap:
                d.dim_param = swap[d.dim_param]
    inputs, outputs = graph_io(export_spec)
    with pytest.raises(ArtifactError, match="'text' has axes"):
        check_interface(broken, inputs, outputs)
    renamed = fix_axis_names(broken, inputs, outputs)
    assert renamed == {"text_frames": "audio_frames", "audio_frames": "vision_frames",
                       "s9": "text_frames"}
    check_interface(broken, inputs, outputs)
    params = {d.dim_param for vi in broken.graph.value_info
              for d in vi.type.tensor_type.shape.dim if d.dim_param}
    assert "s9" not in params


def test_merged_axis_names_are_set_from_the_declaration(onnx_model, export_spec):
    broken = copy.deepcopy(onnx_model)
    for vi in broken.graph.input:
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param.endswith("_frames"):
                d.dim_param = "frames"  # all three axes share one name
    inputs, outputs = graph_io(export_spec)
    fix_axis_names(broken, inputs, outputs)
    check_interface(broken, inputs, outputs)
    assert len(broken.graph.value_info) == 0  # stale intermediate shapes dropped


def test_interface_check_catches_dropped_input_and_baked_axis(onnx_model, export_spec):
    inputs, outputs = graph_io(export_spec)
    dropped = copy.deepcopy(onnx_model)
    del dropped.graph.input[5]
    with pytest.raises(ArtifactError, match="exporter drops unused inputs"):
        check_interface(dropped, inputs, outputs)
    baked = copy.deepcopy(onnx_model)
    baked.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    with pytest.raises(ArtifactError, match="baked in"):
        check_interface(baked, inputs, outputs)
    wrong_type = copy.deepcopy(onnx_model)
    wrong_type.graph.input[6].type.tensor_type.elem_type = onnx.TensorProto.INT64
    with pytest.raises(ArtifactError, match="dtype INT64"):
        check_interface(wrong_type, inputs, outputs)


def test_no_buffer_reuse_warning_across_frame_counts(exported, export_spec, capfd):
    """Distinct axis names: ONNX Runtime never sees two axes sharing a dim_param."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 1  # info and up, to see the buffer-reuse warning if any
    sess = ort.InferenceSession(str(exported[1] / "model.onnx"), opts,
                                providers=["CPUExecutionProvider"])
    capfd.readouterr()
    rng = np.random.default_rng(0)
    for b, frames in ((1, (8, 40, 20)), (3, (2, 9, 5)), (2, (30, 3, 11))):
        feeds = {}
        for m, t in zip(("text", "audio", "vision"), frames):
            feeds[m] = rng.standard_normal((b, t, export_spec.dim(m))).astype(np.float32)
            feeds[f"{m}_mask"] = np.ones((b, t), np.float32)
        feeds["modality_mask"] = np.ones((b, 3), np.float32)
        (score,) = sess.run(None, feeds)
        assert score.shape == (b,) and np.isfinite(score).all()
    assert "Shape mismatch" not in capfd.readouterr().err


def test_opset_range():
    check_opset(MIN_OPSET)
    check_opset(max_opset())
    for bad in (11, MIN_OPSET - 1, max_opset() + 1, "18"):
        with pytest.raises(InputError, match="cannot produce it"):
            check_opset(bad)


def test_dummy_inputs_and_dynamic_shapes_follow_the_declaration(export_spec):
    inputs, _ = graph_io(export_spec)
    dummy = dummy_inputs(export_spec, batch=2)
    dyn = dynamic_shapes(export_spec)
    assert list(dummy) == [d.name for d in inputs] == list(dyn)
    frames = {dummy[m].shape[1] for m in ("text", "audio", "vision")}
    assert len(frames) == 3 and 1 not in frames  # distinct, so torch specializes none
    assert dyn["audio"][1] is dyn["audio_mask"][1]  # one Dim per axis name
    assert dyn["audio"][0] is dyn["modality_mask"][0]
    assert 2 not in dyn["audio"]  # feature dim is static
