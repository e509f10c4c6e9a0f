"""The demo recording kept in the model's cache folder (runtime/demo_cache.py)."""
from __future__ import annotations

import dataclasses
import glob
import os
import shutil

import numpy as np

from hrlf.runtime import demo_cache
from hrlf.runtime.assets import demo_model_dir
from hrlf.runtime.spec import ModelSpec
from hrlf.runtime.stream_sources import open_demo
from hrlf.runtime.synthetic import SyntheticConfig, generate_recordings


def _model(tmp_path):
    d = tmp_path / "demo"
    shutil.copytree(demo_model_dir(), d, ignore=shutil.ignore_patterns(".hrlf-cache"))
    return str(d)


def _events(src):
    out = []
    while True:
        r = src.read(0.0)
        out += [(e.modality, e.t, np.asarray(e.x).tobytes()) for e in r.events]
        if r.status.value == "eos":
            return out


def test_a_kept_recording_is_the_generated_one_array_for_array(tmp_path):
    d = _model(tmp_path)
    spec = ModelSpec.load(d)
    fresh = _events(open_demo("demo:3", spec, duration_s=12.0))
    first = _events(open_demo("demo:3", spec, duration_s=12.0, model_dir=d))  # writes it
    assert len(glob.glob(os.path.join(d, ".hrlf-cache", "demo-*.f64"))) == 1
    again = _events(open_demo("demo:3", spec, duration_s=12.0, model_dir=d))  # reads it
    assert fresh == first == again and len(fresh) > 300
    cfg = dataclasses.replace(SyntheticConfig(), duration_s=5.0, seed=1)
    rec = generate_recordings(cfg, "demo", n=1)[0]
    name = demo_cache.key(spec.data["config"], 1, 5.0)
    demo_cache.save(d, name, rec, {"text": "t", "audio": "a", "vision": "v"})
    back, feats = demo_cache.load(d, name)
    assert feats == {"text": "t", "audio": "a", "vision": "v"}
    assert demo_cache.key(spec.data["config"], 2, 5.0) != name != demo_cache.key(
        spec.data["config"], 1, 6.0)
    for m in rec.times:
        assert np.array_equal(back.times[m], rec.times[m])
        assert back.frames[m].dtype == np.float32 and np.array_equal(back.frames[m], rec.frames[m])
    assert np.array_equal(back.knots, rec.knots) and np.array_equal(back.values, rec.values)


def test_a_damaged_or_unwritable_cache_falls_back_to_generating(tmp_path, monkeypatch):
    d = _model(tmp_path)
    spec = ModelSpec.load(d)
    want = _events(open_demo("demo", spec, duration_s=6.0))
    _events(open_demo("demo", spec, duration_s=6.0, model_dir=d))
    (f64,) = glob.glob(os.path.join(d, ".hrlf-cache", "demo-*.f64"))
    with open(f64, "r+b") as f:
        f.truncate(800)  # shorter than its index says
    assert _events(open_demo("demo", spec, duration_s=6.0, model_dir=d)) == want
    ro = tmp_path / "ro"
    os.makedirs(ro)
    (ro / ".hrlf-cache").write_text("a file where the folder would go")  # unwritable, root too
    assert _events(open_demo("demo", spec, duration_s=6.0, model_dir=str(ro))) == want
    monkeypatch.setenv("HRLF_MODEL_CACHE", "0")
    off = tmp_path / "off"
    os.makedirs(off)
    assert _events(open_demo("demo", spec, duration_s=6.0, model_dir=str(off))) == want
    assert not os.listdir(off)


def test_only_the_latest_recordings_are_kept(tmp_path):
    d = _model(tmp_path)
    spec = ModelSpec.load(d)
    for seed in range(demo_cache.KEEP + 3):
        open_demo(f"demo:{seed}", spec, duration_s=3.0, model_dir=d).close()
    assert len(glob.glob(os.path.join(d, ".hrlf-cache", "demo-*.json"))) == demo_cache.KEEP
    assert len(glob.glob(os.path.join(d, ".hrlf-cache", "demo-*.f64"))) == demo_cache.KEEP
