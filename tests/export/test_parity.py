"""Parity of the exported models with PyTorch: 8 masks x batch {1, 7} x frame counts."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from hrlf.export.parity import (BATCHES, FP16_ATOL, FP32_ATOL, MASKS, TorchRunner,
                                check_onnx_parity, compare_outputs, frame_sets, mask_label,
                                onnxrt_runner, parity_cases, run_cases)
from hrlf.errors import AtolError, ShapeError
from hrlf.runtime.spec import SCORE

FRAMES = ("one", "window", "long")
GRID = list(itertools.product(MASKS, BATCHES, FRAMES))


@pytest.fixture(scope="module")
def outputs(exported, student, export_spec):
    """Every case run once on PyTorch, ORT FP32 and ORT FP16 (through polygraphy)."""
    model_dir = exported[1]
    cases = parity_cases(export_spec, seed=1)
    runners = [TorchRunner(student, export_spec),
               onnxrt_runner(model_dir / "model.onnx", "fp32"),
               onnxrt_runner(model_dir / "model.fp16.onnx", "fp16")]
    outs = run_cases(runners, cases)
    return {c.name: (c, *(outs[k][i][SCORE] for k in ("pytorch", "fp32", "fp16")))
            for i, c in enumerate(cases)}


def test_grid_is_complete(export_spec):
    cases = parity_cases(export_spec)
    assert len(cases) == len(GRID) == 8 * 2 * 3
    assert {mask_label(m) for m in MASKS} >= {"---", "lav", "l--", "-a-", "--v"}
    sets = frame_sets(export_spec)
    assert sets["one"]["audio"] == 1 and sets["window"]["audio"] == export_spec.frames("audio")
    assert sets["long"]["audio"] > export_spec.frames("audio")
    assert frame_sets(export_spec, max_frames=41)["long"]["audio"] == 41


@pytest.mark.parametrize("mask,batch,frames", GRID,
                         ids=[f"{mask_label(m)}-b{b}-{f}" for m, b, f in GRID])
def test_parity(outputs, mask, batch, frames):
    case, ref, fp32, fp16 = outputs[f"mask={mask_label(mask)} batch={batch} frames={frames}"]
    assert ref.shape == fp32.shape == fp16.shape == (batch,)
    assert np.isfinite(ref).all() and np.isfinite(fp32).all() and np.isfinite(fp16).all()
    assert np.abs(fp32 - ref).max() <= FP32_ATOL
    assert np.abs(fp16 - ref).max() <= FP16_ATOL
    if batch > 1:  # row 0 has every frame masked: still a defined score
        assert case.feeds["text_mask"][0].sum() == 0


def test_scores_are_not_trivially_equal(outputs):
    """The fixture's scores vary, so the tolerances above mean something."""
    scores = np.concatenate([v[1] for v in outputs.values()])
    assert scores.std() > 0.1


def test_report_figures(exported):
    parity = exported[0]["parity"]
    assert parity["model.onnx"]["cases"] == parity["model.fp16.onnx"]["cases"] == 48
    assert parity["model.onnx"]["max_abs_diff"] <= FP32_ATOL
    assert parity["model.fp16.onnx"]["max_abs_diff"] <= FP16_ATOL


def test_all_failures_are_collected_before_raising(export_spec):
    cases = parity_cases(export_spec, batches=(2,), masks=MASKS[:4])
    ref = [{SCORE: np.zeros(2, np.float32)} for _ in cases]
    out = [{SCORE: np.zeros(2, np.float32)} for _ in cases]
    out[0][SCORE] = np.array([0.0, 0.5], np.float32)      # atol
    out[1][SCORE] = np.array([np.nan, 0.0], np.float32)   # NaN
    res = compare_outputs("m.onnx", ref, out, cases, atol=1e-4)
    assert len(res.failures) == 2 and res.max_abs_diff == float("inf")
    with pytest.raises(AtolError) as e:
        res.raise_if_failed()
    msg = str(e.value)
    assert "2/12 parity cases" in msg and cases[0].name in msg and cases[1].name in msg
    assert "max |diff| 0.5" in msg and "1 NaN/Inf" in msg and "\n" not in msg
    out[2][SCORE] = np.zeros(3, np.float32)                # shape
    res = compare_outputs("m.onnx", ref, out, cases, atol=1e-4)
    with pytest.raises(ShapeError, match="3/12 parity cases") as e:
        res.raise_if_failed()
    assert e.value.result.shape_failures == [cases[2].name]


def test_wrong_weights_fail_parity_with_every_case_named(exported, make_student, export_spec):
    other = make_student(seed=1)
    with pytest.raises(AtolError) as e:
        check_onnx_parity(other, export_spec,
                          {"model.onnx": (exported[1] / "model.onnx", FP32_ATOL)},
                          cases=parity_cases(export_spec, batches=(1,), masks=MASKS[:2]))
    assert "model.onnx: 6/6 parity cases fail" in str(e.value)


def test_logit_floor_changes_no_exported_score(student, export_spec, monkeypatch):
    """The floored softmax (no subnormal exponents in ONNX Runtime's Softmax) against the
    graph exported before it: the same scores, bit for bit, over every parity case, FP32
    and FP16; and the floor is in the graph (a Max before every Softmax)."""
    import onnxruntime as ort

    from hrlf.export.fp16 import to_fp16
    from hrlf.export.graph import clean_graph
    from hrlf.export.onnx import export_onnx
    from hrlf.train import model as M

    new = clean_graph(export_onnx(student, export_spec))[0]
    with monkeypatch.context() as mp:
        mp.setattr(M, "masked_softmax", lambda s, bias: (s + bias).softmax(-1))
        old = clean_graph(export_onnx(student, export_spec))[0]
    producer = {o: n for n in new.graph.node for o in n.output}
    softmax = [n for n in new.graph.node if n.op_type == "Softmax"]
    assert softmax and all(producer[n.input[0]].op_type == "Max" for n in softmax)
    assert not any(n.op_type == "Max" for n in old.graph.node)

    def session(model):
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    for name, a, b in (("fp32", new, old), ("fp16", to_fp16(new), to_fp16(old))):
        sa, sb = session(a), session(b)
        for case in parity_cases(export_spec, seed=3):
            feeds = dict(case.feeds)
            ya, yb = sa.run([SCORE], feeds)[0], sb.run([SCORE], feeds)[0]
            assert np.array_equal(ya, yb), f"{name} {case.name}: {np.abs(ya - yb).max()}"
