"""A runtime-only install (README command 1: no torch, no onnx): the training and export
commands say in one line which extra to install, instead of an import traceback."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import is_error_line

# imports of these fail in the child, as in an install without the extras
BLOCK = "import sys\nfor m in ('torch', 'onnx', 'onnxscript', 'onnx_graphsurgeon', 'sklearn', " \
        "'matplotlib'):\n    sys.modules[m] = None\n"


@pytest.mark.parametrize("module, fn, args, needle", [
    ("hrlf.train.cli", "train_main", ["--out", "runs/x"], "pip install 'hrlf[train]'"),
    ("hrlf.train.cli", "eval_main", ["runs/x"], "pip install 'hrlf[train]'"),
    ("hrlf.export.cli", "main", ["runs/x", "--out", "m"], "pip install 'hrlf[train,export]'"),
])
def test_missing_extra_is_one_line(tmp_path, module, fn, args, needle):
    code = BLOCK + f"sys.argv = ['x'] + {args!r}\nfrom {module} import {fn}\n{fn}()\n"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(lines) == 1, p.stderr
    assert is_error_line(lines[0]) and needle in lines[0], lines[0]
    assert "runtime-only install" in lines[0]


def test_help_still_works_without_the_extras(tmp_path):
    code = BLOCK + "sys.argv = ['hrlf-train', '--help']\nfrom hrlf.train.cli import train_main\n" \
                   "train_main()\n"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert p.returncode == 0 and "Usage:" in p.stdout, p.stderr
