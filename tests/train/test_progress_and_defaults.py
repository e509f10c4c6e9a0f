"""hrlf-train / hrlf-eval as a newcomer meets them: progress as log lines off a terminal,
JSON logs, hrlf-eval on the data the run was trained on, and counts in the right unit."""
from __future__ import annotations

import json
import os

from click.testing import CliRunner

from hrlf.train.cli import eval_main, train_main
from tests.conftest import is_error_line

from .conftest import fake_mosi

SMALL = {"model": {"layers": 1}, "batch_size": 8, "early_stop": 5}


def test_progress_off_a_terminal_is_one_line_per_stage(tmp_path, tiny_config):
    res = CliRunner().invoke(train_main, ["--data", "synthetic", "--out", str(tmp_path / "r"),
                                          "--epochs", "2", "--config", tiny_config])
    assert res.exit_code == 0, res.output
    err = res.stderr
    assert "\r" not in err and "it/s" not in err  # no bar redraws in a log file
    for role in ("teacher", "student"):
        lines = [x for x in err.splitlines() if x.startswith(f"hrlf-train INFO {role} ep ")]
        assert len(lines) == 1 and " steps in " in lines[0], err
    assert "(2 valid recordings, " in err  # the synthetic data's unit: recordings


def test_json_logs_carry_the_stage_fields(tmp_path, tiny_config):
    res = CliRunner().invoke(train_main, ["--data", "synthetic", "--out", str(tmp_path / "r"),
                                          "--epochs", "1", "--config", tiny_config,
                                          "--log-format", "json"])
    assert res.exit_code == 0, res.output
    recs = [json.loads(x) for x in res.stderr.splitlines()]
    assert all(r["tool"] == "hrlf-train" and r["level"] in ("INFO", "WARNING") for r in recs)
    stages = [r for r in recs if r.get("state") == "done"]
    assert [r["stage"].split()[0] for r in stages] == ["teacher", "student"]
    assert all(r["unit"] == "step" and r["done"] == r["total"] for r in stages)


def test_eval_uses_the_recorded_training_data(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fake_mosi(tmp_path / "data" / "m.npz", n=(24, 9, 9))
    (tmp_path / "small.json").write_text(json.dumps(SMALL))
    monkeypatch.chdir(tmp_path / "a")  # trained with a relative path, from one folder
    res = CliRunner().invoke(train_main, ["--data", "../data/m.npz", "--out", "../run",
                                          "--epochs", "1", "--config", "../small.json",
                                          "--quiet"])
    assert res.exit_code == 0, res.output
    assert "(3 valid videos, 9 valid windows)" in res.stderr  # MOSI: clips are videos' parts
    assert json.load(open(tmp_path / "run" / "config.json"))["data"] == \
        str(tmp_path / "data" / "m.npz")
    monkeypatch.chdir(tmp_path / "b")  # evaluated from another, without --data
    res = CliRunner().invoke(eval_main, ["../run", "--out", "ev", "--no-plots"])
    assert res.exit_code == 0, res.output
    ev = json.load(open(tmp_path / "b" / "ev" / "eval.json"))
    assert ev["data"] == str(tmp_path / "data" / "m.npz") and ev["n"] == 9
    assert "hrlf-eval INFO data: " in res.stderr and "synthetic" not in res.stderr
    os.rename(tmp_path / "data" / "m.npz", tmp_path / "data" / "moved.npz")
    res = CliRunner().invoke(eval_main, ["../run", "--out", "ev2"])
    assert res.exit_code == 1 and is_error_line(res.stderr.strip(), "hrlf-eval"), res.output
    assert "trained on m.npz (sha256 " in res.stderr and "pass --data PATH" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
