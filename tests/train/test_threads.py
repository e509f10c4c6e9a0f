"""Thread choice for training on a shared CPU (the timing itself is in bench/train_load.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

from hrlf.errors import InputError
from hrlf.train import threads as T
from hrlf.train.cli import train_main


@pytest.mark.parametrize("cpus,others,want", [
    (2, 0.0, 2), (2, 0.2, 2), (2, 0.3, 1), (2, 1.0, 1), (2, 5.0, 1),
    (8, 0.0, 8), (8, 2.6, 5), (8, 2.8, 5), (8, 3.0, 5), (8, 12.0, 1), (4, None, 4)])
def test_auto_threads_leaves_busy_cpus_alone(cpus, others, want):
    assert T.auto_threads(cpus, others) == want


def test_explicit_counts_win_in_order():
    env = {"HRLF_THREADS": "3", "OMP_NUM_THREADS": "5"}
    assert T.choose(2, env=env, cpus=8, others=0).threads == 2
    c = T.choose(None, env=env, cpus=8, others=0)
    assert (c.threads, c.source) == (3, "HRLF_THREADS") and "from HRLF_THREADS" in c.describe()
    c = T.choose(None, env={"OMP_NUM_THREADS": "5"}, cpus=8, others=0)
    assert (c.threads, c.source) == (5, "OMP_NUM_THREADS")
    c = T.choose(None, env={}, cpus=8, others=6.0)
    assert (c.threads, c.interop, c.source) == (2, 1, "auto")
    assert "8 CPUs, 6.0 busy with other processes" in c.describe()
    with pytest.raises(InputError, match="HRLF_THREADS='zero'"):
        T.choose(None, env={"HRLF_THREADS": "zero"})
    with pytest.raises(InputError, match="HRLF_THREADS='0'"):
        T.choose(None, env={"HRLF_THREADS": "0"})


def test_usable_cpus_is_the_affinity_mask():
    from hrlf.runtime.cpus import usable_cpus

    assert 1 <= usable_cpus() <= len(os.sched_getaffinity(0))


def test_sampler_sees_another_busy_process():
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        others = T.CpuSampler().sample(1.0)
    finally:
        burner.kill()
        burner.wait()
    assert others is not None and others >= 0.5  # the burner alone holds ~1 CPU


def test_tuner_follows_the_load_and_sets_torch(monkeypatch):
    before = torch.get_num_threads()
    seen = iter([0.0, 1.5, 1.5])
    monkeypatch.setattr(T.CpuSampler, "sample", lambda self, wait_s=0.0: next(seen))
    msgs = []
    tuner = T.Tuner(T.ThreadChoice(1, 1, "auto", 2, 1.0), log=msgs.append)
    try:
        assert tuner.update() == 2 and torch.get_num_threads() == 2
        assert tuner.update() == 1 and torch.get_num_threads() == 1
        assert tuner.update() == 1 and tuner.history == [1, 2, 1]
        assert msgs == ["threads: 1 -> 2 (0.0 of 2 CPUs busy with other processes)",
                        "threads: 2 -> 1 (1.5 of 2 CPUs busy with other processes)"]
    finally:
        torch.set_num_threads(before)


def test_cli_prints_its_choice(tmp_path, tiny_config):
    before = torch.get_num_threads()
    try:
        res = CliRunner().invoke(train_main, ["--data", "synthetic", "--out", str(tmp_path / "r"),
                                              "--epochs", "1", "--config", tiny_config,
                                              "--quiet", "--threads", "1"])
    finally:
        torch.set_num_threads(before)
    assert res.exit_code == 0, res.output
    assert res.stderr.startswith("hrlf-train INFO threads: 1 intra-op, 1 inter-op (from --threads)")
    res = CliRunner().invoke(train_main, ["--out", str(tmp_path / "s"), "--threads", "0"])
    assert res.exit_code == 2 and "--threads" in res.output  # click's range check, one line


def test_small_data_caps_the_automatic_count_and_a_given_count_wins(monkeypatch):
    from hrlf.train import regime
    from hrlf.train import threads as T

    monkeypatch.setattr(T, "_current", {"choice": None, "cap": None})
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    T._current["choice"] = T.ThreadChoice(2, 1, "auto", 2, 0.0)
    assert regime.threads(10)["value"] == 1
    tuner = T.Tuner(T.ThreadChoice(1, 1, "auto", 2, 0.0))
    monkeypatch.setattr(tuner.sampler, "sample", lambda *a: 0.0)  # two idle CPUs
    assert tuner.update() == 1  # re-tuning keeps the small-data cap
    monkeypatch.setattr(T, "_current", {"choice": T.ThreadChoice(2, 1, "--threads", 2, None),
                                        "cap": None})
    assert regime.threads(10) == {"value": 2, "why": "--threads"}
    assert regime.threads(10 ** 6) is None  # large data: the automatic rule as it is
