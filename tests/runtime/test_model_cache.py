"""sha256 stamps in the model's cache folder (runtime/model_cache.py)."""
from __future__ import annotations

import os
import shutil

import pytest

from hrlf.errors import ArtifactError
from hrlf.runtime import model_cache
from hrlf.runtime.assets import demo_model_dir
from hrlf.runtime.spec import ModelSpec, check_artifact


def _settled(path, seconds_ago=60):
    t = os.stat(path).st_mtime_ns - seconds_ago * 1_000_000_000
    os.utime(path, ns=(t, t))


def test_a_settled_file_is_hashed_once_then_read_from_its_stamp(tmp_path, monkeypatch):
    f = tmp_path / "model.onnx"
    f.write_bytes(b"x" * 5000)
    _settled(f)
    want = model_cache.sha256_file(f)
    calls = []
    real = model_cache.sha256_file
    monkeypatch.setattr(model_cache, "sha256_file", lambda p: calls.append(p) or real(p))
    assert model_cache.sha256_stamped(f) == want and len(calls) == 1
    assert model_cache.sha256_stamped(f) == want and len(calls) == 1  # the stamp
    assert os.path.isfile(tmp_path / ".hrlf-cache" / "sha256" / "model.onnx")
    f.write_bytes(b"y" * 5000)  # rewritten in place, same size: a new time
    assert model_cache.sha256_stamped(f) == real(f) != want and len(calls) == 2
    _settled(f)
    model_cache.sha256_stamped(f)
    model_cache.forget(f)  # the file goes (ort_cache.discard): its stamp with it
    assert not os.path.exists(tmp_path / ".hrlf-cache" / "sha256" / "model.onnx")


def test_a_fresh_file_is_not_stamped_and_the_switch_turns_stamps_off(tmp_path, monkeypatch):
    f = tmp_path / "model.onnx"
    f.write_bytes(b"fresh")
    model_cache.sha256_stamped(f)
    assert not (tmp_path / ".hrlf-cache").exists()  # modified < 2 s ago: hashed each time
    _settled(f)
    monkeypatch.setenv(model_cache.ENV, "0")
    model_cache.sha256_stamped(f)
    assert not (tmp_path / ".hrlf-cache").exists()


def test_a_model_changed_after_its_stamp_still_fails_its_check(tmp_path):
    d = tmp_path / "demo"
    shutil.copytree(demo_model_dir(), d, ignore=shutil.ignore_patterns(".hrlf-cache"))
    spec = ModelSpec.load(d)
    _settled(d / "model.onnx")
    check_artifact(spec, d / "model.onnx")  # hashed and stamped
    assert os.path.isfile(d / ".hrlf-cache" / "sha256" / "model.onnx")
    data = bytearray((d / "model.onnx").read_bytes())
    data[-1] ^= 1
    (d / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match spec.json"):
        check_artifact(spec, d / "model.onnx")
    (d / "model.onnx").write_bytes(bytes(data[:100]))  # truncated
    with pytest.raises(ArtifactError, match="does not match spec.json"):
        check_artifact(spec, d / "model.onnx")
