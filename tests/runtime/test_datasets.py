import subprocess
import sys

import numpy as np
import pytest

from hrlf.runtime.datasets import (MOSI_SIZES, group_folds, load_mosi, mosi_recording,
                                   pack_recordings)
from hrlf.errors import DataError
from hrlf.runtime.metrics import regression_metrics
from hrlf.runtime.synthetic import SyntheticConfig, generate_recordings, make_synthetic


def test_mosi_loader_reads_shared_file(mosi_path):
    ds = load_mosi(mosi_path)
    assert {s: len(v) for s, v in ds.splits.items()} == MOSI_SIZES == {
        "train": 1252, "valid": 195, "test": 752}
    te = ds.splits["test"]
    assert te.feats["text"].shape == (752, 1, 100)
    assert te.feats["audio"].shape == (752, 1, 73)
    assert te.feats["vision"].shape == (752, 1, 100)
    assert np.abs(te.label).max() <= 3
    # speaker independent: no video in two splits
    vids = {s: set(v.group) for s, v in ds.splits.items()}
    assert not (vids["train"] & vids["test"]) and not (vids["valid"] & vids["test"])
    spec = ds.spec(ds.splits["train"].norm())
    assert spec.data["source"] == "cmu-mosi-utterance" and len(spec.data["sha256"]) == 64


def test_mosi_recording_windows_are_clips(mosi_path):
    ds = load_mosi(mosi_path)
    rec = mosi_recording(mosi_path, "test")
    packed = pack_recordings([rec], ds.features, 1.0, 1.0)
    np.testing.assert_array_equal(packed.label, ds.splits["test"].label)
    for m in ("text", "audio", "vision"):
        np.testing.assert_allclose(packed.feats[m], ds.splits["test"].feats[m], rtol=0, atol=0)


def test_mosi_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("HRLF_DATA", raising=False)
    with pytest.raises(DataError, match="no path given"):
        load_mosi(None)
    with pytest.raises(DataError, match="no such file"):
        load_mosi(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, train_text=np.zeros((3, 99), np.float32))
    with pytest.raises(DataError, match="is missing|expected"):
        load_mosi(bad)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable npz"):
        load_mosi(junk)
    monkeypatch.setenv("HRLF_DATA", str(tmp_path))
    with pytest.raises(DataError, match="mosi_utterance.npz: no such file"):
        load_mosi(None)


def test_group_folds_keep_videos_together():
    groups = np.array(list("aaabbbbccddddde"))
    folds = group_folds(groups, 3)
    for g in set(groups):
        assert len(set(folds[groups == g])) == 1
    assert set(folds) == {0, 1, 2}


def test_synthetic_is_seeded_and_timestamped():
    cfg = SyntheticConfig(videos={"train": 2, "valid": 1, "test": 1}, duration_s=8.0)
    a, b = generate_recordings(cfg, "train"), generate_recordings(cfg, "train")
    for m in ("text", "audio", "vision"):
        np.testing.assert_array_equal(a[0].frames[m], b[0].frames[m])
        assert np.all(np.diff(a[0].times[m]) > 0)
        rate = cfg.rates_hz[m]
        assert len(a[0].times[m]) == int(cfg.duration_s * rate)
        assert a[0].frames[m].shape[1] == cfg.dims[m]
    other = generate_recordings(SyntheticConfig(seed=1, videos=cfg.videos, duration_s=8.0), "train")
    assert not np.array_equal(a[0].frames["text"], other[0].frames["text"])
    assert abs(a[0].label(np.array([0.0]), 2.0)[0]) <= 3


def _pooled(split, mods):
    return np.concatenate([(split.feats[m] * split.masks[m][..., None]).sum(1)
                           / split.masks[m].sum(1, keepdims=True) for m in mods], 1)


def _probe(ds, mods):
    tr, te = ds.splits["train"], ds.splits["test"]
    xtr, xte = _pooled(tr, mods), _pooled(te, mods)
    mu, sd = xtr.mean(0), xtr.std(0)
    xtr = np.c_[(xtr - mu) / sd, np.ones(len(xtr))]
    xte = np.c_[(xte - mu) / sd, np.ones(len(xte))]
    w = np.linalg.solve(xtr.T @ xtr + np.eye(xtr.shape[1]), xtr.T @ tr.label)
    return regression_metrics(xte @ w, te.label)


def test_synthetic_sentiment_recoverable_all_beats_each():
    ds = make_synthetic(SyntheticConfig(videos={"train": 60, "valid": 4, "test": 30}))
    single = {m: _probe(ds, (m,)) for m in ("text", "audio", "vision")}
    both = _probe(ds, ("text", "audio", "vision"))
    for m, r in single.items():
        assert both["mae"] < r["mae"] - 0.05, (m, r, both)
        assert both["corr"] > r["corr"]
        assert r["corr"] < 0.9  # not trivially from one modality
    assert both["corr"] > 0.8


def test_runtime_does_not_import_torch():
    code = ("import sys, hrlf.runtime, hrlf.runtime.datasets, hrlf.runtime.synthetic, "
            "hrlf.runtime.protocol, hrlf.runtime.metrics, hrlf.kernels, hrlf.runtime.cli, "
            "hrlf.runtime.session, hrlf.runtime.runner, hrlf.runtime.stream_sources, "
            "hrlf.runtime.backends.ort, hrlf.runtime.backends.trt, hrlf.runtime.engine_cache, "
            "hrlf.runtime.capture.sources, hrlf.runtime.featurizers; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
