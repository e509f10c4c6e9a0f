"""Triton repository: config.pbtxt inputs/outputs match the ONNX graph."""
from __future__ import annotations

import re

import onnx
import onnxruntime as ort

from hrlf.export.triton import config_pbtxt
from hrlf.runtime.spec import sha256_file
from tests.conftest import zero_feeds

_TYPES = {"TYPE_FP32": onnx.TensorProto.FLOAT}


def _parse(text: str, section: str) -> list[dict]:
    """The tensors of an ``input [...]`` / ``output [...]`` block (enough of pbtxt for this)."""
    block = re.search(rf"^{section} \[\n(.*?)\n\]", text, re.S | re.M).group(1)
    out = []
    for body in re.findall(r"\{(.*?)\n  \}", block, re.S):
        dims = re.search(r"dims: \[([^\]]*)\]", body).group(1)
        out.append({"name": re.search(r'name: "([^"]+)"', body).group(1),
                    "data_type": re.search(r"data_type: (\w+)", body).group(1),
                    "dims": [int(x) for x in dims.replace(",", " ").split()],
                    "reshape": "reshape: { shape: [ ] }" in body})
    return out


def test_onnx_model_folder(exported):
    report, model_dir, repo = exported
    # no engine here: no hrlf_trt; hrlf_python runs the same ONNX in Triton's Python backend
    assert report["triton"]["models"] == ["hrlf_onnx", "hrlf_python"]
    plan = repo / "hrlf_onnx" / "1" / "model.onnx"
    assert sha256_file(plan) == report["files"]["model.onnx"]
    assert sha256_file(repo / "hrlf_python" / "1" / "model.onnx") == report["files"]["model.onnx"]
    assert "class TritonPythonModel" in (repo / "hrlf_python" / "1" / "model.py").read_text()
    assert not any(p.name.startswith(".") for p in repo.iterdir())  # no temp leftovers
    sess = ort.InferenceSession(str(plan), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()][-1] == "modality_mask"


def test_config_matches_onnx_graph(exported):
    report, _, repo = exported
    text = (repo / "hrlf_onnx" / "config.pbtxt").read_text()
    model = onnx.load(str(repo / "hrlf_onnx" / "1" / "model.onnx"))
    assert 'name: "hrlf_onnx"' in text and 'platform: "onnxruntime_onnx"' in text
    assert "max_batch_size: 8" in text and "dynamic_batching {" in text
    for section, graph_side in (("input", model.graph.input), ("output", model.graph.output)):
        cfg = _parse(text, section)
        assert [c["name"] for c in cfg] == [vi.name for vi in graph_side]
        for c, vi in zip(cfg, graph_side):
            assert _TYPES[c["data_type"]] == vi.type.tensor_type.elem_type
            dims = vi.type.tensor_type.shape.dim
            assert dims[0].dim_param == "batch"  # Triton's implicit batch axis
            want = [d.dim_value if d.HasField("dim_value") else -1 for d in dims[1:]]
            assert c["dims"] == (want or [1]) and c["reshape"] == (not want)


def test_trt_config_when_an_engine_exists(export_spec):
    text = config_pbtxt(export_spec, "hrlf_trt", "tensorrt_plan", max_batch=4)
    assert 'platform: "tensorrt_plan"' in text and "preferred_batch_size: [ 1, 2, 4 ]" in text
    audio = next(t for t in _parse(text, "input") if t["name"] == "audio")
    assert audio["dims"] == [-1, export_spec.dim("audio")]


def test_triton_model_runs_a_batch_like_triton_sends_it(exported, export_spec):
    """Triton stacks requests along the batch axis: the model takes (n, frames, dim)."""
    repo = exported[2]
    sess = ort.InferenceSession(str(repo / "hrlf_onnx" / "1" / "model.onnx"),
                                providers=["CPUExecutionProvider"])
    n = 5
    feeds = zero_feeds(export_spec, n)
    assert sess.run(None, feeds)[0].shape == (n,)
