"""The one-call API (hrlf.stream), what push() says when it refuses a frame, explicit models
for Session/Hub.load, and why a result lacks a modality (Result.absent)."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import hrlf
from hrlf.runtime import Hub, InputError, Result, Session, SessionConfig, stream
from hrlf.runtime.model_dir import suggest_model_dir
from hrlf.runtime.assets import demo_model_dir
from hrlf.runtime.refusals import Refusal
from hrlf.runtime.spec import ModelSpec, SpecError


def test_stream_yields_results_with_reasons_for_what_is_absent():
    seen = []
    with hrlf.stream("demo", "demo", pace="fast", duration_s=26) as results:
        for r in results:
            assert isinstance(r, Result)
            seen.append(r)
    st = results.stats()
    assert [r.segment for r in seen] == list(range(25))
    assert st["accounting_ok"] and st["pending"] == 0 and st["segments"] == 25
    by_seg = {r.segment: r for r in seen}
    # the demo's scripted outages: audio 8-14 s, vision 12-18 s, text 20-24 s
    assert by_seg[10].absent == {"audio": "demo_outage"}
    assert by_seg[15].absent == {"vision": "demo_outage"}
    assert by_seg[21].absent == {"text": "demo_outage"}
    assert by_seg[3].absent == {} and "absent" not in by_seg[3].to_dict()
    assert by_seg[10].to_dict()["absent"] == {"audio": "demo_outage"}


def test_stream_condition_and_drop_say_why():
    with stream("demo", "demo", pace="fast", duration_s=8, condition="la",
                drop=["text:0-5"]) as results:
        out = list(results)
    assert out[0].absent == {"text": "drop_schedule", "vision": "condition"}
    assert out[-1].absent == {"vision": "condition"}
    st = results.stats()
    assert st["dropped"]["condition"] > 0 and st["dropped"]["drop_schedule"] > 0


def test_leaving_early_closes_everything_and_keeps_the_accounts():
    results = stream("demo", "demo", pace="fast", duration_s=20)
    first = [next(results) for _ in range(3)]
    st = results.close()
    assert [r.segment for r in first] == [0, 1, 2]
    assert st["accounting_ok"] and st["pending"] == 0
    assert results.close() == st  # idempotent
    assert list(results) == []


def test_stream_arguments_are_checked_at_the_call():
    with pytest.raises(InputError, match="no model given; pass a MODEL_DIR made by hrlf-export, "
                                         "or 'demo'"):
        stream(None, "demo")
    with pytest.raises(TypeError, match="unknown option 'windw_s' \\(did you mean 'window_s'"):
        stream("demo", "demo", windw_s=2.0)
    with pytest.raises(InputError, match="unknown kind \\(did you mean 'camera0'"):
        stream("demo", "cam0")
    with pytest.raises(InputError, match="backend 'onnx': unknown \\(did you mean 'ort'"):
        stream("demo", "demo", backend="onnx")


def test_load_needs_an_explicit_model():
    for load in (Session.load, Hub.load):
        with pytest.raises(InputError) as e:
            load()
        assert "no model given" in str(e.value) and "'demo'" in str(e.value)
    s = Session.load("demo", backend="ort", config=SessionConfig())
    assert s.spec.dim("audio") == 24
    s.close()


def test_a_run_dir_is_refused_with_the_export_that_fixes_it(tmp_path):
    run = tmp_path / "runs" / "mine"
    run.mkdir(parents=True)
    shutil.copy(os.path.join(demo_model_dir(), "spec.json"), run / "spec.json")
    shutil.copy(os.path.join(demo_model_dir(), "student.pt"), run / "student.pt")
    with pytest.raises(InputError) as e:
        stream(str(run), "demo")
    want = f"hrlf-export {run} --out {tmp_path / 'models' / 'mine'}"
    assert want in str(e.value) and "\n" not in str(e.value)
    assert suggest_model_dir("runs/mine") == os.path.join("models", "mine")
    assert suggest_model_dir("/data/x") == "/data/x-model"


def test_push_says_why_it_refused(make_session):
    s, _ = make_session()
    r = s.push("Audio", 0.5, np.zeros(24, np.float32))
    assert not r and r.reason is Refusal.UNKNOWN_MODALITY and r.reason == "unknown_modality"
    assert r.message == ("push: modality 'Audio' is unknown (did you mean 'audio'?); use "
                         "'text', 'audio' or 'vision'")
    r = s.push("audio", 0.5, np.zeros(23, np.float32))
    assert r.reason == "wrong_dim" and "has shape (23,), the model expects (24,)" in r.message
    ok = s.push("audio", 0.5, np.zeros(24, np.float32))
    assert ok and ok.accepted and ok.reason is None and ok.message == ""
    assert ok == True and r == False  # noqa: E712 (compares as the bool push returned before)
    assert s.push("audio", 0.5, np.zeros(24, np.float32)).reason == "duplicate"
    assert s.stats()["dropped"] == {"unknown_modality": 1, "wrong_dim": 1, "duplicate": 1}


def test_strict_mode_raises_for_the_callers_mistakes_only(make_session):
    s, _ = make_session(strict=True)
    with pytest.raises(InputError, match="push: audio frame has shape \\(23,\\)"):
        s.push("audio", 0.5, [0.0] * 23)
    with pytest.raises(InputError, match="timestamp nan"):
        s.push("audio", float("nan"), np.zeros(24, np.float32))
    assert s.push("audio", 0.5, np.zeros(24, np.float32))
    assert s.push("audio", 0.4, np.zeros(24, np.float32)).reason == "out_of_order"  # timing
    st = s.stats()
    assert st["dropped"] == {"wrong_dim": 1, "bad_timestamp": 1, "out_of_order": 1}
    assert st["accounting_ok"]


def test_modalities_off_are_dropped_and_reported_not_trained(small_dataset, make_session):
    from tests.runtime.conftest import FakeBackend

    spec = small_dataset.spec(small_dataset.splits["train"].norm(), modalities_off=("vision",))
    again = ModelSpec.from_dict(spec.to_dict())
    assert again.modalities_off == ("vision",) and again == spec
    old = {k: v for k, v in spec.to_dict().items() if k != "modalities_off"}
    assert ModelSpec.from_dict(old).modalities_off == ()  # spec.json of older runs
    for bad in (["smell"], ["text", "audio", "vision"], ["audio", "audio"], "audio"):
        with pytest.raises(SpecError, match="modalities_off"):
            ModelSpec.from_dict({**spec.to_dict(), "modalities_off": bad})
    s = Session(FakeBackend(spec), spec, SessionConfig())
    assert s.push("vision", 0.5, np.zeros(spec.dim("vision"), np.float32)).reason == "not_trained"
    assert s.push("text", 0.5, np.zeros(spec.dim("text"), np.float32))
    out = s.close()
    assert [r.modalities for r in out] == [["text"]]
    assert out[0].absent == {"audio": "no_frames", "vision": "not_trained"}
    assert s.stats()["dropped"] == {"not_trained": 1}


def test_importing_hrlf_stays_light():
    code = ("import sys, hrlf, hrlf.runtime; f = hrlf.stream; from hrlf.runtime import Session;"
            "assert 'torch' not in sys.modules, 'torch imported'")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([sys.executable, "-c", "import sys, hrlf.runtime; assert 'onnxruntime' "
                        "not in sys.modules and 'hrlf.runtime.session' not in sys.modules"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_the_package_is_typed():
    import hrlf as pkg

    assert os.path.isfile(os.path.join(os.path.dirname(pkg.__file__), "py.typed"))
