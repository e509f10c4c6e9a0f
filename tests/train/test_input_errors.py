"""hrlf-train / hrlf-eval on bad user files: one ERROR line, exit 1, nothing written."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from hrlf.train import clips
from hrlf.train.cli import eval_main, train_main

from .conftest import fake_mosi
from tests.conftest import is_error_line
from tests.conftest import one_line_error as _one_line_error




def _mutated_mosi(tmp_path, name, change):
    arrays = dict(np.load(fake_mosi(tmp_path / "ok.npz")))
    change(arrays)
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def _empty_train(a):
    for k in [k for k in a if k.startswith("train_")]:
        a[k] = a[k][:0]


def _set(key, fn):
    def change(a):
        a[key] = fn(a[key])
    return change


BAD_NPZ = [
    ("str.npz", _set("train_text", lambda x: x.astype(str)), "'train_text' has dtype <U"),
    ("bool.npz", _set("train_label", lambda x: x > 0), "'train_label' has dtype bool"),
    ("cplx.npz", _set("valid_audio", lambda x: x.astype(np.complex64)), "complex64"),
    ("obj.npz", _set("test_video", lambda x: x.astype(object)), "holds Python objects"),
    ("empty.npz", _empty_train, "split 'train' is missing or empty"),
    ("rank.npz", _set("train_label", lambda x: x[0]), "'train_label' must be"),
]


@pytest.mark.parametrize("name,change,needle", BAD_NPZ, ids=[b[0] for b in BAD_NPZ])
def test_bad_mosi_npz_is_one_line(tmp_path, name, change, needle):
    path = _mutated_mosi(tmp_path, name, change)
    out = tmp_path / "run"
    res = CliRunner().invoke(train_main, ["--data", str(path), "--out", str(out), "--quiet"])
    _one_line_error(res, name, needle)
    assert not out.exists() and not (tmp_path / "run.partial").exists()


def test_corrupt_npz_member_and_bare_npy(tmp_path):
    ok = fake_mosi(tmp_path / "ok.npz")
    packed = tmp_path / "packed.npz"
    np.savez_compressed(packed, **dict(np.load(ok)))
    with zipfile.ZipFile(packed) as z:  # flip bytes inside the first member's compressed data
        info = z.infolist()[0]
    raw = bytearray(packed.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 20, start + 220):
        raw[i] ^= 0x5A
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(bytes(raw))
    res = CliRunner().invoke(train_main, ["--data", str(bad), "--out", str(tmp_path / "r")])
    _one_line_error(res, "corrupt.npz", "is corrupt")
    npy = tmp_path / "one.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    res = CliRunner().invoke(train_main, ["--data", str(npy), "--out", str(tmp_path / "r")])
    _one_line_error(res, "one.npz", "holds one array")


@pytest.mark.parametrize("content,needle", [
    (bytes(range(256)) * 8, "binary data (NUL byte at offset 0)"),
    (b"media,transcript,label\n\x89PNG\r\n\x1a\n", "not UTF-8 text (byte 0x89 at offset 23)"),
    ("media,transcript,label\nété.wav,,1\n".encode("latin-1"), "not UTF-8 text (byte 0xe9"),
], ids=["binary", "png-bytes", "latin-1"])
def test_binary_or_non_utf8_clips_csv_is_one_line(tmp_path, content, needle):
    path = tmp_path / "clips.csv"
    path.write_bytes(content)
    res = CliRunner().invoke(train_main, ["--data", str(path), "--out", str(tmp_path / "r")])
    _one_line_error(res, "clips.csv", needle)


def test_clips_csv_with_utf8_bom_is_accepted(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "b.avi").write_bytes(b"RIFF")
    text = "media,transcript,label,split\r\na.wav,hello there,1.5,train\r\nb.avi,,-2,test\r\n"
    path = tmp_path / "clips.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())  # what spreadsheet programs save
    rows = clips.read_clip_csv(str(path))
    assert [(r["name"], r["label"], r["split"]) for r in rows] == [
        ("a.wav", 1.5, "train"), ("b.avi", -2.0, "test")]
    assert rows[0]["transcript"] == ("text", "hello there") and rows[1]["transcript"] is None
    assert rows[0]["media"] == str(tmp_path / "a.wav")


def test_csv_row_with_extra_cells_is_not_a_traceback(tmp_path):
    path = tmp_path / "clips.csv"
    path.write_text("media,label\nx.wav,1,extra,more\n")
    res = CliRunner().invoke(train_main, ["--data", str(path), "--out", str(tmp_path / "r")])
    _one_line_error(res, "clips.csv:2", "x.wav", "not found")


def test_string_features_in_a_real_subprocess(tmp_path):
    """As a user sees it: stderr is one line, no traceback, exit status 1."""
    path = _mutated_mosi(tmp_path, "str.npz", BAD_NPZ[0][1])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "hrlf.train.cli", "--data", str(path), "--out",
                        str(tmp_path / "run"), "--quiet"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 1 and p.stdout == "", p.stderr
    assert p.stderr.strip().count("\n") == 0 and is_error_line(p.stderr, "hrlf-train"), p.stderr
    assert "Traceback" not in p.stderr


def test_eval_and_train_on_files_where_folders_belong(tiny_run, tmp_path, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = CliRunner().invoke(eval_main, [str(afile), "--data", "synthetic"])
    _one_line_error(res, "afile: is a file, not a folder")
    spec_dir = tmp_path / "spec_dir"
    (spec_dir / "spec.json").mkdir(parents=True)
    res = CliRunner().invoke(eval_main, [str(spec_dir), "--data", "synthetic"])
    _one_line_error(res, "spec.json: is a folder, not a file")
    pt_dir = tmp_path / "pt_dir"
    (pt_dir / "student.pt").mkdir(parents=True)
    (pt_dir / "spec.json").write_bytes(open(os.path.join(tiny_run, "spec.json"), "rb").read())
    res = CliRunner().invoke(eval_main, [str(pt_dir), "--data", "synthetic"])
    _one_line_error(res, "student.pt: is a folder, not a checkpoint file")
    res = CliRunner().invoke(eval_main, [tiny_run, "--data", "synthetic", "--out", str(afile)])
    _one_line_error(res, "--out", "is not a folder")
    assert not (tmp_path / "afile.partial").exists()
    res = CliRunner().invoke(train_main, ["--out", str(tmp_path / "r"), "--config",
                                          str(spec_dir)])
    _one_line_error(res, "cannot read config (Is a directory)")


def test_unreadable_spec_is_one_line(tiny_run, tmp_path, monkeypatch):
    import builtins

    real_open = builtins.open
    spec = os.path.join(tiny_run, "spec.json")

    def denied(path, *a, **k):  # tests run as root here, so chmod 000 would not deny
        if os.fspath(path) == spec:
            raise PermissionError(13, "Permission denied", spec)
        return real_open(path, *a, **k)
    monkeypatch.setattr(builtins, "open", denied)
    res = CliRunner().invoke(eval_main, [tiny_run, "--data", "synthetic", "--no-plots"])
    _one_line_error(res, "spec.json: cannot", "Permission denied")


def test_eval_interrupted_while_writing_leaves_no_partial_folder(tiny_run, tmp_path,
                                                                 monkeypatch):
    from hrlf.train import report

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(report, "markdown", interrupted)
    out = tmp_path / "ev"
    with pytest.raises(KeyboardInterrupt):
        report.evaluate_runs([tiny_run], "synthetic", str(out), plots=False)
    assert not (tmp_path / "ev.partial").exists() and not out.exists()


def test_resume_with_a_damaged_config_is_one_line(tmp_path):
    partial = tmp_path / "run.partial"
    partial.mkdir()
    (partial / "state.pt").write_bytes(b"x")
    for content in (b"{not json", b"\xff\xfe\x00", b"[1, 2]"):
        (partial / "config.json").write_bytes(content)
        res = CliRunner().invoke(train_main, ["--out", str(tmp_path / "run"), "--resume"])
        _one_line_error(res, "config.json", "start without --resume")
