"""hrlf-run under faults, as a user meets them: options out of range, unreadable model
folders, undecodable bytes, truncated files, SIGTERM to a real process."""
import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from hrlf.runtime.cli import main
from tests.conftest import is_error_line

DIMS = {"text": 32, "audio": 24, "vision": 32}  # the built-in demo model
HRLF_RUN = [sys.executable, "-m", "hrlf.runtime.cli"]


def one_line_error(r, needle, code=1):
    msg = r.stderr.strip()
    assert r.exit_code == code, r.output
    assert is_error_line(msg, "hrlf-run") and len(msg.splitlines()) == 1, msg
    assert needle in msg, msg


def frame_line(t, m="audio", dim=None):
    return json.dumps({"t": t, "modality": m, "x": [0.1] * (dim or DIMS[m])})


def summary_of(stderr: str) -> dict:
    line = [x for x in stderr.splitlines() if x.startswith('{"summary"')][-1]
    return json.loads(line)["summary"]


@pytest.mark.parametrize("args, needle", [
    (["--max-batch", "0"], "'--max-batch': 0 is not in the range 1<=x<=4096"),
    (["--max-batch", "-5"], "'--max-batch': -5 is not in the range"),
    (["--window", "0"], "'--window': 0.0 is not in the range 0.001<=x<=3600.0"),
    (["--hop", "nan"], "'--hop': nan is not a finite number"),
    (["--duration", "-1"], "'--duration': -1.0 is not in the range 0.0<x"),
    (["--grace", "-1"], "'--grace': -1.0 is not in the range"),
    (["--threads", "0"], "'--threads': 0 is not in the range 1<=x<=1024"),
    (["--stats-every", "-2"], "'--stats-every': -2.0 is not in the range"),
    (["--max-jump", "0"], "'--max-jump': 0.0 is not in the range 0.0<x"),
    (["--condition", ""], "'--condition': empty"),
    (["--hop", "0.000001"], "'--hop': 1e-06 is not in the range 0.001<=x<=3600.0"),
])
def test_every_numeric_option_has_a_range(args, needle):
    """An option out of its range is a usage mistake: exit status 2, as in every hrlf CLI."""
    r = CliRunner().invoke(main, ["--pace", "fast", "--duration", "2", *args]
                           if "--duration" not in args else ["--pace", "fast", *args],
                           prog_name="hrlf-run")
    one_line_error(r, needle, code=2)
    assert r.stderr.strip().endswith("(see 'hrlf-run --help')")


def test_window_and_hop_the_model_cannot_take_are_a_user_error():
    one_line_error(CliRunner().invoke(main, ["--pace", "fast", "--duration", "2", "--window", "3",
                                             "--hop", "0.002"]),
                   "puts each frame in over 1000 windows")


def test_model_dir_that_is_a_file_or_holds_a_bad_spec(tmp_path):
    f = tmp_path / "model.txt"
    f.write_text("x")
    one_line_error(CliRunner().invoke(main, [str(f)]), "is a file, not a MODEL_DIR")
    d = tmp_path / "model"
    (d / "spec.json").mkdir(parents=True)               # spec.json is a directory
    one_line_error(CliRunner().invoke(main, [str(d)]), "spec.json: cannot be read")
    os.rmdir(d / "spec.json")
    (d / "spec.json").write_bytes(b"\xff\xfe\x00garbage")
    one_line_error(CliRunner().invoke(main, [str(d)]), "not valid JSON")


#: Run hrlf-run as an unprivileged user in a way that works from any checkout, even one
#: in a 0700 folder (root's home, mktemp -d) that user cannot read: as root, the command
#: first runs once on the readable demo model (so every module it uses, down to the
#: standard library's, is imported), then the process drops to nobody (65534) and runs it
#: on the locked folder, whose files it then opens with that user's permissions.
AS_NOBODY = """
import contextlib, io, os, sys
import hrlf.runtime.cli as cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    cli.main(["--pace", "fast", "--duration", "2", "--stats-every", "0"], standalone_mode=False)
os.setgroups([]); os.setgid(65534); os.setuid(65534)
cli.main(sys.argv[1:], prog_name="hrlf-run")
"""


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="needs root to drop to an unprivileged user (a non-root user "
                           "cannot make the test's files unreadable to itself portably)")
def test_unreadable_model_dir_and_spec(tmp_path):
    import shutil
    import tempfile

    from hrlf.runtime.assets import demo_model_dir

    root = tempfile.mkdtemp(prefix="hrlf-perm-", dir="/tmp")
    try:
        os.chmod(root, 0o755)
        locked, spec_locked = os.path.join(root, "locked"), os.path.join(root, "spec_locked")
        shutil.copytree(demo_model_dir(), locked)
        shutil.copytree(demo_model_dir(), spec_locked)
        os.chmod(locked, 0)
        os.chmod(os.path.join(spec_locked, "spec.json"), 0)
        for d, needle in ((locked, "locked: permission denied"),
                          (spec_locked, "spec.json: cannot be read (Permission denied)")):
            p = subprocess.run([sys.executable, "-c", AS_NOBODY, d, "--pace", "fast",
                                "--duration", "2"],
                               capture_output=True, text=True, timeout=120, cwd="/tmp",
                               env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
            lines = p.stderr.strip().splitlines()
            assert p.returncode == 1 and len(lines) == 1 and needle in lines[0], p.stderr
            assert is_error_line(lines[0], "hrlf-run")
    finally:
        os.chmod(os.path.join(root, "locked"), 0o755)
        shutil.rmtree(root)


def test_every_frame_wrong_dim_is_an_error_not_silence():
    lines = "\n".join(frame_line(0.1 * k, dim=23) for k in range(30))
    r = CliRunner().invoke(main, ["--stream", "stdin", "--stats-every", "0"], input=lines)
    assert r.exit_code == 1 and '{"summary"' in r.stderr
    err = [x for x in r.stderr.splitlines() if is_error_line(x)]
    assert len(err) == 1 and "all 30 frames were dropped (wrong_dim 30)" in err[0]
    assert "audio 24" in err[0] and r.stdout.strip() == ""


def test_undecodable_bytes_on_stdin_and_in_jsonl_replay(tmp_path):
    good = [frame_line(0.05 + 0.1 * k).encode() for k in range(40)]
    bad = [b"\xff\xfe\xfa{\"t\": 1}", b"\x00" * 50, b"\xc3(", "{\"t\": 1, \"x\": \"é\"}".encode(),
           b'{"t": ' + b"9" * 5000 + b', "modality": "audio", "x": [1]}', b"[" * 100000]
    data = b"\n".join(good[:10] + bad + good[10:]) + b"\n"
    p = tmp_path / "feats.jsonl"
    p.write_bytes(data)
    for args, inp in ((["--stream", "stdin"], data), ([f"--stream=replay:{p}"], None)):
        proc = subprocess.run(HRLF_RUN + args + ["--stats-every", "0"], input=inp,
                              capture_output=True, timeout=120)
        err = proc.stderr.decode()
        assert proc.returncode == 0 and "Traceback" not in err, err
        st = summary_of(err)
        assert st["source_drops"] == {"malformed_bytes": 2, "malformed_json": 3,
                                      "malformed_event": 1}
        assert st["received"] == st["used"] == 40 and st["accounting_ok"]
        assert len(proc.stdout.decode().splitlines()) == 3


@pytest.mark.parametrize("cut", [0.2, 0.6, 0.95])
def test_truncated_replay_npz_is_one_line(tmp_path, recording, cut):
    from hrlf.runtime.stream_sources import save_replay

    full = tmp_path / "rec.npz"
    save_replay(str(full), recording)
    data = full.read_bytes()
    bad = tmp_path / "cut.npz"
    bad.write_bytes(data[:int(len(data) * cut)])
    r = CliRunner().invoke(main, ["--stream", f"replay:{bad}"])
    one_line_error(r, "not a readable replay file")


def _wait_line(proc, timeout_s=60):
    """The first stdout line of a running process (a hang detector, not a timing assert)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            return proc.stdout.readline()
    raise AssertionError("no output from hrlf-run")


def _finish(proc):
    """The rest of stdout (after the lines _wait_line buffered) and stderr; waits."""
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.wait(60)
    return out, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_flushes_and_prints_the_summary(sig):
    """stdin kept open (a live pipe): the signal ends the run, the windows still holding
    frames are scored, the summary is printed, exit 0."""
    proc = subprocess.Popen(HRLF_RUN + ["--stream", "stdin", "--stats-every", "0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    for k in range(45):                                # 4.5 s of audio: windows 0-2 due
        proc.stdin.write(frame_line(0.05 + 0.1 * k) + "\n")
    proc.stdin.flush()
    first = json.loads(_wait_line(proc))
    assert first["segment"] == 0
    os.kill(proc.pid, sig)
    out, err = _finish(proc)
    assert proc.returncode == 0, err
    assert f"{signal.Signals(sig).name}: stopping" in err and "Traceback" not in err
    st = summary_of(err)
    assert st["accounting_ok"] and st["pending"] == 0 and st["received"] == st["used"] == 45
    segs = [first["segment"]] + [json.loads(x)["segment"] for x in out.splitlines()]
    assert segs == [0, 1, 2, 3]                        # [3,5) flushed at the signal


def test_sigterm_during_realtime_pacing():
    proc = subprocess.Popen(HRLF_RUN + ["--stats-every", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # the demo, paced in real time
    _wait_line(proc)
    proc.send_signal(signal.SIGTERM)
    out, err = _finish(proc)
    assert proc.returncode == 0 and "SIGTERM: stopping" in err, err
    st = summary_of(err)
    assert st["accounting_ok"] and st["segments"] >= 1 and st["segments"] < 29


def test_extreme_timestamps_and_duration_on_stdin():
    lines = [frame_line(0.05 + 0.1 * k) for k in range(100)]          # 10 s of audio
    lines.insert(20, frame_line(9.9e9))                                  # a clock glitch
    lines.insert(30, frame_line(1e300))                                  # beyond any clock
    lines.insert(40, json.dumps({"t": 10**400, "modality": "audio", "x": [0.0] * 24}))
    r = CliRunner().invoke(main, ["--stream", "stdin", "--stats-every", "0"],
                           input="\n".join(lines))
    assert r.exit_code == 0, r.output
    st = summary_of(r.stderr)
    assert st["dropped"] == {"clock_jump": 1, "bad_timestamp": 2} and st["used"] == 100
    assert [json.loads(x)["segment"] for x in r.stdout.splitlines()] == list(range(9))
    r = CliRunner().invoke(main, ["--stream", "stdin", "--stats-every", "0", "--duration", "3"],
                           input="\n".join(lines))
    st = summary_of(r.stderr)
    assert r.exit_code == 0 and st["accounting_ok"] and st["used"] == 30  # the glitch does
    assert st["dropped"] == {"clock_jump": 1, "bad_timestamp": 1}        # not end the run
    assert st["source_drops"]["past_duration"] == len(lines) - 32        # read, counted
