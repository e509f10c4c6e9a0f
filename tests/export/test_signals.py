"""hrlf-export under SIGTERM and SIGKILL: no temp folder survives, in real processes."""
from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time

from click.testing import CliRunner

from hrlf.export.cli import main
from hrlf.export.files import clean_stale
from hrlf.runtime.spec import ModelSpec


def _start_export(run_dir, out):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "hrlf.export.cli", str(run_dir), "--out",
                             str(out), "--fp16"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _temp_folders(parent, name="model"):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def _wait_for_temp(parent, proc, timeout_s=120.0):
    end = time.monotonic() + timeout_s
    while not _temp_folders(parent):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "no temp folder appeared"
        time.sleep(0.02)
    time.sleep(0.5)  # inside the ONNX export


def test_sigterm_removes_the_temp_folder(tmp_path, run_dir):
    out = tmp_path / "model"
    proc = _start_export(run_dir, out)
    _wait_for_temp(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and stdout == ""
    assert err.strip().splitlines()[-1] == ("hrlf-export WARNING Interrupted by SIGTERM: nothing "
                                            f"was written; {out} is as it was")
    assert _temp_folders(tmp_path) == [] and not out.exists()


def test_next_run_removes_what_a_sigkilled_export_left(tmp_path, run_dir, onnx_model,
                                                       monkeypatch):
    out = tmp_path / "model"
    proc = _start_export(run_dir, out)
    _wait_for_temp(tmp_path, proc)
    proc.kill()  # SIGKILL: no handler runs, the temp folder stays
    proc.communicate()
    left = _temp_folders(tmp_path)
    assert len(left) == 1 and left[0].startswith(f".model.tmp-{proc.pid}-")

    import hrlf.export.api as api

    monkeypatch.setattr(api, "export_onnx", lambda net, spec, opset: copy.deepcopy(onnx_model))
    res = CliRunner().invoke(main, [str(run_dir), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"removed {tmp_path / left[0]}, left by an earlier run that was killed " \
           f"(pid {proc.pid})" in res.stderr
    assert _temp_folders(tmp_path) == []
    ModelSpec.load(out)


def test_clean_stale_restores_a_half_replaced_model_and_spares_live_ones(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        old = tmp_path / f".model.old-{dead.pid}-abc"  # killed between the two renames
        (old / "x").mkdir(parents=True)
        (old / "x" / "spec.json").write_text("{}")
        busy = tmp_path / f".model.tmp-{live.pid}-def"  # another export still writing
        busy.mkdir()
        legacy = tmp_path / ".model.tmp-xyz"  # a name from before pids were in it
        legacy.mkdir()
        done = clean_stale(str(tmp_path / "model"))
    finally:
        live.kill()
        live.wait()
    assert (tmp_path / "model" / "spec.json").read_text() == "{}"
    assert done["restored"] == [str(tmp_path / "model")]
    assert sorted(done["removed"]) == sorted([str(old), str(legacy)])
    assert done["in_use"] == [str(busy)] and busy.is_dir()
    assert not old.exists() and not legacy.exists()
