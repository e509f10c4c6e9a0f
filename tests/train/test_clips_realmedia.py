"""Real media end to end: clips.csv -> default hrlf-train -> hrlf-export --fp16 -> hrlf-run
--stream file: on the held-out clips, whose clip-mean score must have the label's sign.

The clip set is built by the test (:mod:`hrlf.runtime.capture.realmedia`: scikit-image face
photographs moving over photo backgrounds, espeak-ng reading positive or negative
sentences, sidecar .wav and .srt). Skips with the reason where scikit-image, espeak-ng or
OpenCV's Haar cascade is missing. A second run with the labels shuffled (same media, so
the feature cache is reused) must end with the warning; the real labels must not.
"""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from hrlf.runtime.capture import realmedia

SEED = 0
N_CLIPS = 26


def _skip_reason():
    why = realmedia.unavailable_reason()
    if why:
        return why
    from hrlf.runtime.featurizers.vision import unavailable_reason

    return unavailable_reason()


@pytest.fixture(scope="module")
def clip_set(tmp_path_factory):
    why = _skip_reason()
    if why:
        pytest.skip(why)
    out = tmp_path_factory.mktemp("realmedia")
    return realmedia.build_clip_set(str(out), N_CLIPS, seed=SEED)


def _invoke(cmd, args):
    from click.testing import CliRunner

    res = CliRunner().invoke(cmd, args, catch_exceptions=False)
    return res.exit_code, res.output


def _rows(csv_path):
    with open(csv_path, newline="") as f:
        return list(csv.DictReader(f))


def test_clip_set_layout(clip_set):
    rows = _rows(clip_set)
    assert len(rows) == N_CLIPS and set(rows[0]) == {"media", "transcript", "label", "split"}
    count = {(r["split"], float(r["label"])) for r in rows}
    assert {s for s, _ in count} == {"train", "valid", "test"}
    assert sum(r["split"] == "test" for r in rows) == 7
    assert sum(r["split"] == "valid" for r in rows) == 4
    base = os.path.dirname(clip_set)
    for r in rows[:3]:
        stem = os.path.join(base, os.path.splitext(r["media"])[0])
        import soundfile

        info = soundfile.info(stem + ".wav")
        assert info.samplerate == realmedia.SAMPLE_RATE and 3.3 <= info.duration <= 6.0
        words = open(stem + ".srt").read()
        pool = realmedia.POSITIVE if float(r["label"]) > 0 else realmedia.NEGATIVE
        assert any(s in words for s in pool)


def test_default_training_learns_and_streams_the_held_out_clips(clip_set, tmp_path):
    from hrlf.export.cli import main as export_main
    from hrlf.runtime.cli import main as run_main
    from hrlf.train.cli import train_main

    run, model = tmp_path / "run", tmp_path / "model"
    code, out = _invoke(train_main, ["--data", clip_set, "--out", str(run), "--quiet"])
    assert code == 0, out
    assert "hrlf-train INFO " in out and "batch_size=8" in out and "floor = " in out
    assert "(4 valid clips, " in out and " WARNING " not in out, out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["warning"] is None
    assert set(metrics["probe"]) >= {"text", "audio", "vision", "all", "constant", "floor"}
    floor = metrics["probe"][metrics["probe"]["floor"]]
    assert metrics["student"]["lav"]["mae"] <= floor["mae"] + 0.25
    config = json.loads((run / "config.json").read_text())
    assert config["batch_size"] == 8 and config["min_steps"] > 0
    log = json.loads((run / "train_log.json").read_text())
    assert log["regime"]["batch_size"]["why"] and log["time"]["teacher_s"] > 0

    from hrlf.train.cli import eval_main

    code, out = _invoke(eval_main, [str(run), "--data", clip_set, "--out", str(tmp_path / "ev"),
                                    "--no-plots"])
    assert code == 0, out
    ev = json.loads((tmp_path / "ev" / "eval.json").read_text())
    rep = ev["clips"]["hrlf"]
    assert set(rep["conditions"]) == {"l", "a", "v", "la", "lv", "av", "lav", "avg6"}
    assert rep["conditions"]["lav"]["clips"] == 7 and len(rep["clips"]) == 7
    md = (tmp_path / "ev" / "eval.md").read_text()
    assert "Clip level" in md
    # hrlf-eval --help promises eval.md a table of one row per clip, as eval.json has
    assert "Per clip, hrlf" in md and all(f"| {r['clip']} |" in md for r in rep["clips"])

    code, out = _invoke(export_main, [str(run), "--out", str(model), "--fp16"])
    assert code == 0, out
    base = os.path.dirname(clip_set)
    right, held = 0, [r for r in _rows(clip_set) if r["split"] == "test"]
    for r in held:
        code, out = _invoke(run_main, [str(model), "--precision", "fp16", "--stream",
                                       f"file:{os.path.join(base, r['media'])}",
                                       "--stats-every", "0"])
        assert code == 0, out
        segs = [json.loads(ln) for ln in out.splitlines() if ln.startswith('{"segment"')]
        assert segs and all("text" in s["modalities"] or s["frames"]["text"] == 0 for s in segs)
        right += (np.mean([s["score"] for s in segs]) > 0) == (float(r["label"]) > 0)
    assert right >= len(held) - 1, f"clip-mean sign right on {right} of {len(held)}"


def test_shuffled_labels_get_the_warning(clip_set, tmp_path):
    from hrlf.train.cli import train_main

    rows = _rows(clip_set)
    rng = np.random.default_rng(3)
    labels = rng.permutation([r["label"] for r in rows])
    path = os.path.join(os.path.dirname(clip_set), "shuffled.csv")  # same cache folder
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r, y in zip(rows, labels):
            w.writerow({**r, "label": y})
    code, out = _invoke(train_main, ["--data", path, "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 0, out
    lines = [ln for ln in out.splitlines() if ln.startswith("hrlf-train WARNING ")]
    assert len(lines) == 1 and "try" in lines[0] or "check the labels" in lines[0], out
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["warning"]
    assert "26 from cache" in out  # the media did not change: nothing featurized again
