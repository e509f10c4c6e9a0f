"""``--stream stdin`` from a live pipe: windows are due by the clock, a gap gives no_data
lines (a real hrlf-run process); a redirected file or an in-memory stream is not live."""
import io
import json
import os
import queue
import subprocess
import sys
import threading
import time

from hrlf.runtime.stream_sources import is_live_stream

HRLF_RUN = [sys.executable, "-m", "hrlf.runtime.cli"]


def _frame(t):
    return json.dumps({"t": t, "modality": "audio", "x": [0.1] * 24})  # the demo model's dim


def _lines(stream, out: queue.Queue):
    for line in stream:
        out.put(line)
    out.put(None)


def test_a_gap_in_a_live_pipe_gives_no_data_lines():
    proc = subprocess.Popen(HRLF_RUN + ["--stream", "stdin", "--stats-every", "0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    got: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, got), daemon=True).start()
    proc.stdin.write("".join(_frame(0.05 + 0.1 * k) + "\n" for k in range(30)))  # 0-3 s
    proc.stdin.flush()
    out, end = [], time.monotonic() + 120  # a hang detector, not a timing assert
    while sum(o["status"] == "no_data" for o in out) < 2:
        assert time.monotonic() < end, f"no no_data lines during the gap: {out}"
        try:
            line = got.get(timeout=1.0)
        except queue.Empty:
            continue
        assert line is not None, proc.stderr.read()
        out.append(json.loads(line))
    proc.stdin.close()  # end of stream: flush and exit
    err = proc.stderr.read()
    assert proc.wait(60) == 0, err
    ok = [o for o in out if o["status"] == "ok"]
    gap = [o for o in out if o["status"] == "no_data"]
    assert [o["segment"] for o in ok][:3] == [0, 1, 2]
    assert gap[0]["segment"] == 3 and gap[0]["reasons"] == ["no_frames"]
    assert all(set(o["absent"]) == {"text", "vision"} for o in ok)
    summary = json.loads([x for x in err.splitlines() if x.startswith('{"summary"')][-1])
    st = summary["summary"]
    assert st["received"] == st["used"] == 30 and st["accounting_ok"] and st["no_data"] >= 2


def test_what_is_live():
    r, w = os.pipe()
    try:
        with os.fdopen(r, "rb", closefd=False) as pipe:
            assert is_live_stream(pipe)
    finally:
        os.close(r)
        os.close(w)
    with open(__file__, "rb") as f:  # `< feats.jsonl`: read as fast as possible
        assert not is_live_stream(f)
    assert not is_live_stream(io.BytesIO(b""))
