"""A live source that goes quiet: hrlf-run's loop keeps printing one line per due window,
``no_data`` with its reasons, so a consumer can tell an outage from a hang."""
import json
import time

import numpy as np

from hrlf.runtime.runner import Runner
from hrlf.runtime.session import Session, SessionConfig
from hrlf.runtime.sources import Drop, Event, ReadResult, Status

from .conftest import FakeBackend


class QuietingSource:
    """Live text frames at 20 Hz for 0.8 s, then a lost device (a scripted camera)."""

    live, uri, featurizers = True, "scripted-live", {}

    def __init__(self):
        self.t0, self.sent, self.lost = time.monotonic(), 0, False

    def read(self, timeout_s):
        time.sleep(timeout_s)
        now = time.monotonic() - self.t0
        events, drops = [], []
        while self.sent * 0.05 < min(now, 0.8):
            events.append((self.sent * 0.05, "text", np.zeros(32, np.float32)))
            self.sent += 1
        if now > 0.8 and not self.lost:
            self.lost = True
            drops.append(Drop("device_lost", "scripted"))
        return ReadResult(Status.OK, [Event(*e) for e in events], drops)

    def status_reasons(self):
        return ["reconnecting"] if self.lost else []

    def close(self):
        pass


def test_outage_prints_no_data_lines_with_reasons(small_spec):
    cfg = SessionConfig(live=True, no_data=True, window_s=0.5, hop_s=0.25, grace_s=0.05)
    session = Session(FakeBackend(small_spec), small_spec, cfg)
    lines = []
    src = QuietingSource()
    runner = Runner(src, session, lines.append, duration_s=2.5, stats_every_s=0,
                    log=open("/dev/null", "w"))
    st = runner.run()
    out = [json.loads(x) for x in lines]
    segs = [o["segment"] for o in out]
    assert segs == sorted(set(segs)) and segs[0] == 0
    assert len(segs) + st["segments_dropped"].get("backlog", 0) == segs[-1] + 1  # no gap
    assert segs[-1] >= 6                               # windows up to ~2.5 s
    ok = [o for o in out if o["status"] == "ok"]
    quiet = [o for o in out if o["status"] == "no_data"]
    assert ok and quiet and ok[0]["segment"] == 0 and quiet[-1]["segment"] == segs[-1]
    assert all(o["score"] is None and "no_frames" in o["reasons"] for o in quiet)
    assert any("device_lost" in o["reasons"] for o in quiet)
    assert quiet[-1]["reasons"] == ["no_frames", "device_lost", "reconnecting"]
    assert st["no_data"] == len(quiet) and st["accounting_ok"]
    assert st["source_drops"] == {"device_lost": 1}


def test_signals_during_the_flush_do_not_restart_it(small_spec, tmp_path):
    """SIGTERM asks for a stop; during the flush a second one is reported and ignored; a
    third aborts (KeyboardInterrupt, which hrlf-run turns into one Error line)."""
    import os
    import signal

    import pytest

    from hrlf.runtime.runner import stop_on_signals

    log = open(tmp_path / "log.txt", "w+")
    session = Session(FakeBackend(small_spec), small_spec, SessionConfig())
    runner = Runner(QuietingSource(), session, lambda line: None, log=log, stats_every_s=0)
    with stop_on_signals(runner):
        os.kill(os.getpid(), signal.SIGTERM)
        assert runner.stop_signal == signal.SIGTERM
        runner.flushing = True
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    log.seek(0)
    assert "SIGINT: already stopping, flushing the last windows" in log.read()
