"""The ORT optimized-model cache: same scores, verified, atomic, and optional."""
import glob
import logging
import os
import shutil

import numpy as np
import pytest

from hrlf.runtime.backends import ort_cache
from hrlf.runtime.backends.choice import feeds
from hrlf.runtime.backends.base import open_backend
from hrlf.runtime.spec import ModelSpec


@pytest.fixture
def model_dir(tmp_path):
    from hrlf.runtime.assets import demo_model_dir

    d = tmp_path / "model"
    shutil.copytree(demo_model_dir(), d, ignore=shutil.ignore_patterns(ort_cache.CACHE_DIR))
    return str(d)


def cached_files(model_dir):
    """The cache folder's files but the sha256 stamps (runtime/model_cache.py)."""
    return sorted(p for p in glob.glob(os.path.join(ort_cache.cache_dir(model_dir), "*"))
                  if os.path.basename(p) != "sha256")


def test_cache_is_written_once_then_used_with_identical_scores(model_dir, monkeypatch):
    spec = ModelSpec.load(model_dir)
    monkeypatch.setenv(ort_cache.ENV, "0")
    plain = open_backend("ort", model_dir, spec, precision="fp32")
    assert plain.cache == "off" and not os.path.exists(ort_cache.cache_dir(model_dir))
    monkeypatch.delenv(ort_cache.ENV)
    first = open_backend("ort", model_dir, spec, precision="fp32")
    files = cached_files(model_dir)
    assert first.cache == "wrote" and len(files) == 1 and files[0].endswith(".ort")
    second = open_backend("ort", model_dir, spec, precision="fp32")
    assert second.cache == "cache" and cached_files(model_dir) == files
    for b, seed in ((1, 0), (7, 1), (32, 2)):
        f = feeds(spec, b, seed)
        ref = plain.run(f)
        assert np.array_equal(first.run(f), ref) and np.array_equal(second.run(f), ref)


def test_a_corrupt_or_foreign_file_is_never_loaded(model_dir, caplog):
    spec = ModelSpec.load(model_dir)
    open_backend("ort", model_dir, spec, precision="fp32")
    (path,) = cached_files(model_dir)
    with open(path, "r+b") as f:  # same size, other bytes: only the hash can tell
        f.seek(1000)
        f.write(b"\x00" * 64)
    with caplog.at_level(logging.INFO, logger="hrlf.runtime"):
        be = open_backend("ort", model_dir, spec, precision="fp32")
    assert be.cache == "wrote" and "fails its sha256 check" in caplog.text
    (good,) = cached_files(model_dir)
    import onnxruntime

    k = ort_cache.key(spec.artifacts["model.onnx"], onnxruntime.__version__)
    assert ort_cache.find(os.path.join(model_dir, "model.onnx"), k) == good
    # a file of another key (another ORT version) is ignored and replaced
    stale = good.replace("-ort", "-ort0.0.1+")
    shutil.copy(good, stale)
    os.remove(good)
    be = open_backend("ort", model_dir, spec, precision="fp32")
    assert be.cache == "wrote" and not os.path.exists(stale)
    assert not glob.glob(os.path.join(ort_cache.cache_dir(model_dir), ".tmp-*"))


def test_unwritable_folder_falls_back_with_one_log_line(model_dir, caplog):
    spec = ModelSpec.load(model_dir)
    with open(ort_cache.cache_dir(model_dir), "w") as f:  # a file where the folder would go
        f.write("not a folder")
    with caplog.at_level(logging.INFO, logger="hrlf.runtime"):
        be = open_backend("ort", model_dir, spec, precision="fp32")
    assert be.cache == "off"
    lines = [r.message for r in caplog.records if "ort cache" in r.message]
    assert len(lines) == 1 and "is not writable" in lines[0]
    f = feeds(spec, 3, 0)
    assert np.isfinite(be.run(f)).all()
