"""SIGTERM (systemd, docker) and Ctrl-C stop hrlf-train the same way: real processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hrlf.train.checkpoint import load_run

TINY = {"synthetic": {"videos": {"train": 6, "valid": 2, "test": 2}, "duration_s": 8.0},
        "model": {"layers": 1}, "batch_size": 16, "early_stop": 1000, "lr_patience": 1000}


def _start(tmp_path, *args, config=TINY):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(config))
    env = {**os.environ, "HRLF_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "hrlf.train.cli", "--data", "synthetic",
                             "--config", str(cfg), "--quiet", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(cond, proc, timeout_s=120.0):
    end = time.monotonic() + timeout_s
    while not cond():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def _no_traceback(err):
    assert "Traceback" not in err, err


def test_sigterm_keeps_last_epoch_and_resume_finishes(tmp_path):
    out = tmp_path / "run"
    state = tmp_path / "run.partial" / "state.pt"
    proc = _start(tmp_path, "--out", str(out), "--epochs", "500")
    _wait_for(state.exists, proc)
    time.sleep(0.3)  # mid-way through a later epoch
    proc.send_signal(signal.SIGTERM)
    stdout, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    _no_traceback(err)
    line = err.strip().splitlines()[-1]  # nothing after it (no progress bar redraw)
    assert line.startswith("hrlf-train WARNING Interrupted by SIGTERM: ") \
        and "last completed epoch" in line, err
    assert f"hrlf-train --out {out} --resume" in line and stdout == ""
    assert not out.exists() and state.exists()
    assert not [p for p in state.parent.iterdir() if ".tmp" in p.name]
    res = subprocess.run([sys.executable, "-m", "hrlf.train.cli", "--out", str(out),
                          "--resume", "--epochs", "2", "--quiet"], capture_output=True,
                         text=True, env={**os.environ, "HRLF_THREADS": "1"}, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["run_dir"] == str(out)
    load_run(out)
    assert not (tmp_path / "run.partial").exists()


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_before_any_epoch_leaves_nothing(tmp_path, sig, code):
    out = tmp_path / "run"
    # a first epoch long enough (seconds) to be sure the signal lands inside it
    bigger = {**TINY, "synthetic": {"videos": {"train": 120, "valid": 30, "test": 2}}}
    proc = _start(tmp_path, "--out", str(out), "--epochs", "500", config=bigger)
    line = proc.stderr.readline()  # printed when training starts: RUN_DIR.partial exists
    if not line.startswith("hrlf-train INFO threads: 1 intra-op"):
        proc.kill()
        raise AssertionError(line + proc.communicate()[1])
    assert (tmp_path / "run.partial").is_dir()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    _no_traceback(err)
    assert f"Interrupted by {signal.Signals(sig).name}: no epoch had completed" in err
    assert not out.exists() and not (tmp_path / "run.partial").exists()


def test_a_new_run_says_it_replaces_an_interrupted_one(tmp_path):
    out = tmp_path / "run"
    proc = _start(tmp_path, "--out", str(out), "--epochs", "500")
    _wait_for((tmp_path / "run.partial" / "state.pt").exists, proc)
    proc.kill()  # SIGKILL: nothing can clean up
    proc.communicate()
    res = subprocess.run([sys.executable, "-m", "hrlf.train.cli", "--data", "synthetic",
                          "--config", str(tmp_path / "tiny.json"), "--out", str(out),
                          "--epochs", "1", "--quiet"], capture_output=True, text=True,
                         env={**os.environ, "HRLF_THREADS": "1"}, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "run.partial, left by an interrupted run" in res.stderr and "--resume" in res.stderr
    load_run(out)


def test_eval_interrupted_exits_143_and_writes_nothing(tiny_run, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from hrlf.train import interrupt, report
    from hrlf.train.cli import eval_main

    def sigterm(*a, **k):  # what the handler raises when SIGTERM arrives mid-evaluation
        raise interrupt.Interrupted(signal.SIGTERM)
    monkeypatch.setattr(report, "markdown", sigterm)
    out = tmp_path / "ev"
    res = CliRunner().invoke(eval_main, [tiny_run, "--data", "synthetic", "--out", str(out),
                                         "--no-plots"])
    assert res.exit_code == 143, res.output
    assert res.stderr.strip().splitlines()[-1] == \
        "hrlf-eval WARNING Interrupted by SIGTERM: no results were written"
    assert not out.exists() and not (tmp_path / "ev.partial").exists()


def test_deferred_holds_a_signal_until_the_block_ends():
    from hrlf.train import interrupt

    order = []
    with interrupt.handled():
        with pytest.raises(interrupt.Interrupted) as e:
            with interrupt.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler has run by now, and only recorded it
                order.append("block finished")
        assert e.value.signum == signal.SIGTERM and e.value.exit_code == 143
        with interrupt.deferred(reraise=False):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        order.append("dropped after a final step")
    assert order == ["block finished", "dropped after a final step"]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers restored
