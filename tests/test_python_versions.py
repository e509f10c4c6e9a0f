"""README command 1 (the runtime install and the demo) on every older Python this machine
has (pyenv's 3.9 and 3.10; JetPack 6 ships 3.10): it installs with constraints.txt (its
environment markers pick the last numpy/onnxruntime/click for that Python) and streams the
demo. Slow (a fresh venv and a pip install each): HRLF_SLOW=1."""
from __future__ import annotations

import glob
import json
import os
import subprocess

import pytest

from tests.conftest import REPO

PYTHONS = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3"))
                 + glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3")))


@pytest.mark.slow
@pytest.mark.skipif(not PYTHONS, reason="no Python 3.9 / 3.10 under ~/.pyenv on this machine")
@pytest.mark.parametrize("python", PYTHONS)
def test_command_1_installs_and_runs(tmp_path, python):
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-c",
                          str(REPO / "constraints.txt"), str(REPO)], capture_output=True,
                         text=True, timeout=1200)
    assert pip.returncode == 0, pip.stderr[-2000:]
    run = subprocess.run([str(venv / "bin" / "hrlf-run"), "--pace", "fast", "--stats-every", "0"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stderr.strip().splitlines()[-1])["summary"]
    assert summary["segments"] == len(run.stdout.splitlines()) == 29
    assert summary["accounting_ok"]
