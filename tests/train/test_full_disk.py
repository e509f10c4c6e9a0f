"""hrlf-train and hrlf-export on a full disk (a tiny tmpfs, as root): one Error line, no
traceback, and no temp file left behind (``RUN_DIR.partial/state.pt.tmp``, export temp
folders)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import is_error_line

pytest.importorskip("torch", reason="the train extra is not installed")
BIN = os.path.dirname(sys.executable)


def _one_line(p):
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    errors = [ln for ln in lines if is_error_line(ln)]
    assert len(errors) == 1 and errors[0] == lines[-1], p.stderr
    return errors[0]


def _left(root) -> list[str]:
    out = []
    for d, dirs, files in os.walk(root):
        out += [os.path.join(d, x) for x in files + dirs if ".tmp" in x]
    return out


def test_train_on_a_full_disk(tiny_fs, tiny_config):
    from tests.conftest import fill

    where = tiny_fs(256)
    fill(where, leave_bytes=24 * 1024)  # config.json fits, the first checkpoint does not
    p = subprocess.run([os.path.join(BIN, "hrlf-train"), "--data", "synthetic", "--out",
                        str(where / "run"), "--epochs", "1", "--config", tiny_config, "--quiet"],
                       capture_output=True, text=True, timeout=600)
    line = _one_line(p)
    assert "cannot write the run (" in line and "no space left on the device" in line, line
    assert _left(where) == [] and sorted(os.listdir(where)) in (["filler"],
                                                                ["filler", "run.partial"])
    assert not os.path.exists(where / "run.partial") or os.path.exists(
        where / "run.partial" / "state.pt")  # kept only when --resume can use it


def test_export_on_a_full_disk(tiny_fs, run_dir):
    from tests.conftest import fill

    where = tiny_fs(256)
    fill(where, leave_bytes=16 * 1024)  # model.onnx does not fit
    p = subprocess.run([os.path.join(BIN, "hrlf-export"), str(run_dir), "--out",
                        str(where / "model")], capture_output=True, text=True, timeout=600)
    line = _one_line(p)
    assert "cannot write the export" in line and "no space left on the device" in line, line
    assert os.listdir(where) == ["filler"]  # no temp folder, no half MODEL_DIR
