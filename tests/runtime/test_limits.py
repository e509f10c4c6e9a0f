"""Sizes are checked before anything is allocated: an .npz whose member inflates to
gigabytes, an in-range --window that makes model inputs of gigabytes, a spec with a
tampered frame rate, deeply nested JSON. Each is one Error line naming the limit, and the
process never grows to the size it was asked for."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from hrlf.runtime.cli import main
from tests.conftest import one_line_error

HRLF_RUN = [sys.executable, "-m", "hrlf.runtime.cli"]


def _bomb(path, shape=(10**9, 24)):
    """A replay .npz whose audio_x header claims ``shape`` (float32), with a few bytes of
    data: what a small file of zeros that inflates to gigabytes looks like to np.load."""
    import io

    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False,
                                               "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("audio_t.npy", _npy(np.arange(3, dtype=np.float64)))
        z.writestr("audio_x.npy", head.getvalue() + b"\0" * 4096)


def _npy(a):
    import io

    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


def test_npz_bomb_is_one_line_and_never_allocated(tmp_path):
    bomb = tmp_path / "bomb.npz"
    _bomb(bomb)
    # hrlf-run's own peak RSS, measured by a small wrapper process: a child forked from
    # pytest inherits pytest's resident pages into its ru_maxrss, and RUSAGE_CHILDREN would
    # include earlier tests' children
    wrapper = ("import os, subprocess, sys\n"
               "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
               "_, status, usage = os.wait4(p.pid, 0)\n"
               "print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))\n")
    p = subprocess.run([sys.executable, "-c", wrapper] + HRLF_RUN +
                       ["--stream", f"replay:{bomb}"], capture_output=True, text=True,
                       timeout=120)
    peak_kb, code = map(int, p.stdout.split())
    lines = p.stderr.strip().splitlines()
    assert code == 1 and len(lines) == 1, p.stderr
    assert "array 'audio_x' (1000000000, 24) would take 89.4 GiB" in lines[0]
    assert "the limit is 1 GiB per array" in lines[0]
    assert peak_kb < 1 << 20  # KiB: hrlf-run never reached 1 GiB


def test_npz_bomb_in_the_data_file_is_one_line(tmp_path):
    from hrlf.runtime.datasets import load_mosi
    from hrlf.runtime.errors import DataError

    bomb = tmp_path / "mosi_utterance.npz"
    _bomb(bomb, shape=(10**6, 10**4))
    with pytest.raises(DataError, match="the limit is 1 GiB per array"):
        load_mosi(str(bomb))


@pytest.mark.parametrize("args, needle", [
    (["--window", "600", "--hop", "600"], "--window 600: 2400 text frames per window"),
    (["--window", "33"], "over the limit of 128"),
])
def test_window_that_would_make_gigabytes_is_one_line(args, needle):
    one_line_error(CliRunner().invoke(main, ["--pace", "fast", "--duration", "2", *args]),
                   needle, "use --window <= 32")


@pytest.fixture
def model_copy(tmp_path):
    from hrlf.runtime.assets import demo_model_dir

    d = tmp_path / "model"
    shutil.copytree(demo_model_dir(), d)
    return d


@pytest.mark.parametrize("field, value, needle", [
    ("frame_rate_hz", 1e9, "features.audio.frames 2000000000 is over the limit of 4096"),
    ("frame_rate_hz", 2000.0, "features.audio.frame_rate_hz 2000.0 is over the limit of 1000"),
    ("dim", 10**7, "features.audio.dim 10000000 is over the limit of 65536"),
])
def test_tampered_spec_sizes_are_one_line(model_copy, field, value, needle):
    spec = json.loads((model_copy / "spec.json").read_text())
    spec["features"]["audio"][field] = value
    if field == "frame_rate_hz":  # consistent, so that only the size is wrong
        spec["features"]["audio"]["frames"] = int(round(spec["window_s"] * value))
    (model_copy / "spec.json").write_text(json.dumps(spec))
    one_line_error(CliRunner().invoke(main, [str(model_copy), "--pace", "fast"]), needle)


def test_a_high_but_legal_frame_rate_still_fits(model_copy):
    """500 Hz audio with its 1000 frames per window: inside every limit, the stream opens."""
    from hrlf.runtime.session import Session, SessionConfig
    from hrlf.runtime.spec import ModelSpec

    spec = json.loads((model_copy / "spec.json").read_text())
    spec["features"]["audio"].update(frame_rate_hz=500.0, frames=1000)
    (model_copy / "spec.json").write_text(json.dumps(spec))
    s = Session(None, ModelSpec.load(model_copy), SessionConfig())
    assert s.buffers["audio"].capacity == 15000


@pytest.mark.parametrize("depth", [100_000])
def test_deeply_nested_spec_json_is_one_line(model_copy, depth):
    (model_copy / "spec.json").write_text("[" * depth + "]" * depth)
    one_line_error(CliRunner().invoke(main, [str(model_copy)]), "JSON nested too deeply")


def test_deeply_nested_train_config_is_one_line(tmp_path):
    pytest.importorskip("torch", reason="the train extra is not installed")
    from hrlf.train.cli import train_main

    cfg = tmp_path / "deep.json"
    cfg.write_text("[" * 100_000 + "]" * 100_000)
    one_line_error(CliRunner().invoke(train_main, ["--out", str(tmp_path / "run"), "--config",
                                                   str(cfg), "--quiet"]),
                   "JSON nested too deeply")


def test_hub_config_delivery_threads_is_checked(small_spec):
    from hrlf.runtime.errors import InputError
    from hrlf.runtime.hub import Hub, HubConfig
    from tests.runtime.conftest import FakeBackend

    with pytest.raises(InputError, match="delivery_threads=0 must be a whole number"):
        Hub(FakeBackend(small_spec), small_spec, HubConfig(delivery_threads=0))
