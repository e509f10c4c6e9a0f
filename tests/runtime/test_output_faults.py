"""hrlf-run when stdout fails, as a user meets it: ``> /dev/full``, a full disk (a tiny
tmpfs), ``>&-`` (closed), ``| head -1`` (broken pipe), and a reader that stops reading
while SIGTERM arrives. Each: one ``ERROR`` line, the summary on stderr (with the lines
not written counted), exit 1, in bounded time; never a traceback, never exit 0."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import is_error_line

HRLF_RUN = [sys.executable, "-m", "hrlf.runtime.cli"]
LONG = ["--pace", "fast", "--duration", "300", "--hop", "0.1", "--stats-every", "0"]  # ~3000 lines
HANG_S = 120  # a hang detector, not a timing assert


def check_failed(code, stderr, needle):
    """Exit 1, no traceback, the summary (lines not written counted), one Error line last."""
    assert code == 1, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    lines = stderr.strip().splitlines()
    errors = [ln for ln in lines if is_error_line(ln)]
    assert len(errors) == 1 and errors[0] == lines[-1] and needle in errors[0], stderr
    summary = json.loads([ln for ln in lines if ln.startswith('{"summary"')][-1])["summary"]
    assert summary["segments_dropped"]["output_error"] >= 1 and summary["accounting_ok"]
    return summary


def test_dev_full():
    with open("/dev/full", "w") as full:
        p = subprocess.run(HRLF_RUN + LONG, stdout=full, stderr=subprocess.PIPE, text=True,
                           timeout=HANG_S)
    st = check_failed(p.returncode, p.stderr, "no space left on the device")
    assert st["segments_dropped"]["output_error"] == st["segments"]  # none was written


def test_full_disk(tiny_fs):
    from tests.conftest import fill

    where = tiny_fs(64)
    fill(where, leave_bytes=8192)
    out_path = where / "results.jsonl"
    with open(out_path, "w") as out:
        p = subprocess.run(HRLF_RUN + LONG, stdout=out, stderr=subprocess.PIPE, text=True,
                           timeout=HANG_S)
    st = check_failed(p.returncode, p.stderr, "no space left on the device")
    written = out_path.read_text().splitlines()
    assert written and json.loads(written[0])["segment"] == 0  # what fitted is intact
    assert st["segments_dropped"]["output_error"] >= st["segments"] - len(written)


def test_closed_stdout():
    p = subprocess.run(["bash", "-c", 'exec "$@" >&-', "_"] + HRLF_RUN + LONG,
                       stderr=subprocess.PIPE, text=True, timeout=HANG_S)
    st = check_failed(p.returncode, p.stderr, "stdout is closed")
    assert st["segments"] >= 1


def test_reader_goes_away():
    proc = subprocess.Popen(HRLF_RUN + LONG, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert json.loads(proc.stdout.readline())["segment"] == 0
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read()
    proc.wait(HANG_S)
    check_failed(proc.returncode, err, "broken pipe")


def test_blocked_reader_cannot_make_it_deaf_to_sigterm():
    """The reader never reads: the pipe and the output queue fill, the run waits for room.
    SIGTERM still stops it: the last windows are flushed, the output waits a bounded time
    for the reader, the summary says how many lines were not written, exit 1."""
    proc = subprocess.Popen(HRLF_RUN + LONG, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    err: list = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    reader.start()
    time.sleep(3.0)  # let it fill the pipe; any moment is a valid moment for the signal
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(HANG_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("hrlf-run did not exit after SIGTERM with a blocked reader")
    reader.join(HANG_S)
    assert time.monotonic() - t0 < HANG_S
    st = check_failed(proc.returncode, err[0], "the reader took no output")
    assert "SIGTERM: stopping" in err[0]
    written = proc.stdout.read().splitlines()  # what the pipe held: every line whole
    proc.stdout.close()
    assert all(json.loads(x)["segment"] >= 0 for x in written)
    assert len(written) + st["segments_dropped"]["output_error"] == st["segments"]


def test_slow_reader_loses_nothing():
    """A reader slower than the replay slows the replay down: every line arrives, exit 0."""
    proc = subprocess.Popen(HRLF_RUN + ["--pace", "fast", "--duration", "120", "--hop", "0.1",
                                        "--stats-every", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = 0
    for line in proc.stdout:
        lines += 1
        if lines % 200 == 0:
            time.sleep(0.2)
    err = proc.stderr.read()
    proc.wait(HANG_S)
    assert proc.returncode == 0, err
    st = json.loads(err.strip().splitlines()[-1])["summary"]
    assert lines == st["segments"] and "output_error" not in st["segments_dropped"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_library_runner_is_unchanged_by_output_errors():
    """Runner without a LineWriter (a library caller's own sink) behaves as before."""
    from hrlf.runtime.runner import Runner
    from hrlf.runtime.session import Session, SessionConfig
    from hrlf.runtime.sources import open_source

    s = Session.load("demo", backend="ort", config=SessionConfig())
    lines: list = []
    st = Runner(open_source("demo", s.spec, duration_s=6.0), s, lines.append,
                stats_every_s=0, log=open(os.devnull, "w")).run()
    assert len(lines) == st["segments"] == 5 and "output_error" not in st["segments_dropped"]
