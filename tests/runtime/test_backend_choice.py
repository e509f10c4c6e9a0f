"""``--backend auto``: OpenVINO instead of ONNX Runtime only where it measures faster."""
import glob
import json
import logging
import os
import shutil

import pytest

from hrlf.runtime.backends import choice, ort_cache
from hrlf.runtime.backends.base import open_backend
from hrlf.runtime.spec import ModelSpec


@pytest.fixture
def model_dir(tmp_path):
    from hrlf.runtime.assets import demo_model_dir

    d = tmp_path / "model"
    shutil.copytree(demo_model_dir(), d, ignore=shutil.ignore_patterns(ort_cache.CACHE_DIR))
    return str(d)


def test_batches_and_verdict():
    assert choice.batches_in_use(1) == (1,) and choice.batches_in_use(32) == (1, 32)
    ms = {"ort": {1: 1.0, 32: 0.5}, "openvino": {1: 0.8, 32: 0.4}}
    assert choice.verdict(ms) == "openvino"
    ms["openvino"][1] = 1.5  # slower for single windows: not picked
    assert choice.verdict(ms) == "ort"
    ms["openvino"][1] = 0.95  # faster, but within the margin
    assert choice.verdict(ms) == "ort"


def _auto(model_dir, caplog, max_batch=4):
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hrlf.runtime"):
        be = open_backend("auto", model_dir, ModelSpec.load(model_dir), max_batch=max_batch)
    lines = [r.message for r in caplog.records if "openvino" in r.message]
    return be, lines


def test_measured_once_then_read_and_openvino_where_faster(model_dir, caplog, monkeypatch):
    pytest.importorskip("openvino", reason="openvino is not installed (pip install 'hrlf[openvino]')")
    be, lines = _auto(model_dir, caplog)  # measured in a child process
    assert be.name.startswith(("ort-", "openvino-")) and any("measured in" in x for x in lines)
    (kept,) = glob.glob(os.path.join(ort_cache.cache_dir(model_dir), "auto.*-b1_4.json"))
    assert "batch 1: ort" in lines[0] and "batch 4: ort" in lines[0]
    be.close()
    monkeypatch.setattr(choice, "_measure_and_keep", lambda *a: pytest.fail("measured again"))
    be, lines = _auto(model_dir, caplog)
    assert any("measured once" in x for x in lines)
    be.close()
    # a kept verdict for OpenVINO (faster at every batch size in use): auto opens it
    with open(kept, "w") as f:
        json.dump({"choice": "openvino", "batches": [1, 4], "ms_per_segment": {
            "ort": {"1": 1.0, "4": 1.0}, "openvino": {"1": 0.5, "4": 0.5}}}, f)
    be, lines = _auto(model_dir, caplog)
    try:
        assert be.name == "openvino-cpu-fp32"
        assert be.run(choice.feeds(ModelSpec.load(model_dir), 3)).shape == (3,)
    finally:
        be.close()


def test_a_failed_measurement_is_kept_as_ort(model_dir, caplog, monkeypatch):
    monkeypatch.setattr(choice, "openvino_version", lambda: "2099.0")  # as if installed
    monkeypatch.setattr(choice, "CHILD_TIMEOUT_S", 0.001)  # the child cannot finish
    be, lines = _auto(model_dir, caplog)
    assert be.name == "ort-cpu-fp32" and "its measurement failed (timed out" in lines[0]
    monkeypatch.setattr(choice, "_measure_and_keep", lambda *a: pytest.fail("measured again"))
    be, lines = _auto(model_dir, caplog)
    assert be.name == "ort-cpu-fp32" and "its measurement failed (timed out" in lines[0]


def test_no_measurement_it_cannot_keep(model_dir, caplog, monkeypatch):
    monkeypatch.setattr(choice, "openvino_version", lambda: "2099.0")  # as if installed
    import subprocess

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("should not measure"))
    monkeypatch.setenv(ort_cache.ENV, "0")
    be, lines = _auto(model_dir, caplog)
    assert be.name == "ort-cpu-fp32" and "HRLF_MODEL_CACHE=0" in lines[0]
    monkeypatch.delenv(ort_cache.ENV)
    with open(ort_cache.cache_dir(model_dir), "w") as f:  # the cache folder cannot exist
        f.write("x")
    be, lines = _auto(model_dir, caplog)
    assert be.name == "ort-cpu-fp32" and any("cannot keep the result" in x for x in lines)
    monkeypatch.setattr(choice, "openvino_version", lambda: None)
    be, lines = _auto(model_dir, caplog)
    assert be.name == "ort-cpu-fp32" and "openvino is not installed" in lines[0]
