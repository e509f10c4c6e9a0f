"""The live recognizer's scheduling and its text-latency measures, with a scripted engine
(no model): an endpoint decode overtakes a partial still running, results come out in the
order asked, and the gaps between text updates count only speech."""
from __future__ import annotations

import threading
import time

import numpy as np

from hrlf.runtime.capture.asr_timing import TextTiming, quantiles, speech_gaps
from hrlf.runtime.capture.asr_worker import DecodeWorker, Utt
from hrlf.runtime.featurizers.text import Word


class ScriptedEngine:
    """A snapshot engine (as Whisper): a partial decode waits for ``release``; every decode
    returns one word per second of audio."""

    streaming, workers, rate = False, 2, 16000

    def __init__(self):
        self.release = threading.Event()
        self.calls: list[tuple[float, bool]] = []

    def decode(self, pcm, partial=False, prompt=""):
        self.calls.append((len(pcm) / self.rate, partial))
        if partial:
            assert self.release.wait(30.0)
        return [Word(f"w{i}", float(i), i + 0.5) for i in range(int(len(pcm) / self.rate))]


def _wait_results(worker, n, timeout_s=30.0):
    out, end = [], time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < end:
        out += worker.take()
        time.sleep(0.01)
    return out


def test_endpoint_decode_overtakes_a_running_partial():
    eng = ScriptedEngine()
    w = DecodeWorker(eng, threaded=True)
    try:
        u = Utt(0.0)
        w.feed(u, np.zeros(2 * eng.rate, np.float32))
        assert w.partial(u)                        # runs on the partial lane, held
        assert not w.partial(u)                    # that lane is busy: not queued behind
        w.feed(u, np.zeros(eng.rate, np.float32))
        assert w.partial(u, endpoint=True)         # the speech paused: the now lane
        res = _wait_results(w, 1)
        assert [(r[0], len(r[2]), r[4]) for r in res] == [("partial", 3, True)]
        eng.release.set()                          # the overtaken partial is left out
        w.final(u)
        res = _wait_results(w, 1)
        assert [(r[0], len(r[2])) for r in res] == [("final", 3)]
        assert w.take() == []
    finally:
        eng.release.set()
        w.close()


def test_inline_results_in_the_order_asked():
    eng = ScriptedEngine()
    eng.release.set()
    w = DecodeWorker(eng, threaded=False)
    u = Utt(0.0)
    w.feed(u, np.zeros(eng.rate, np.float32))
    w.partial(u)
    w.feed(u, np.zeros(eng.rate, np.float32))
    w.final(u)
    assert [(r[0], len(r[2])) for r in w.take()] == [("partial", 1), ("final", 2)]
    assert eng.calls == [(1.0, True), (2.0, False)]


def test_gaps_count_speech_only():
    spans = [(0.0, 2.0), (3.0, 5.0)]               # a 1 s pause inside the utterance
    # updates at 1.2 and 2.5 (in the pause) and 4.0; speech after 4.0 not yet owed
    assert np.allclose(speech_gaps([1.2, 2.5, 4.0], spans), [1.2, 0.8, 1.0])
    assert speech_gaps([0.5], []) == []
    assert quantiles([1.0, 2.0, 3.0], ("p50", "max")) == {"p50": 2.0, "max": 3.0}


def test_timing_is_live_only_and_measures_from_the_speech_end():
    assert TextTiming(None).stats() == {}
    now = [10.0]
    tt = TextTiming(lambda: now[0])
    u = Utt(0.0)
    u.speech_s, u.runs, u.endpoint_at = (1.0, 9.0), [[1.0, 5.0], [5.5, 9.0]], 9.0
    for now[0] in (2.5, 4.0, 6.0, 8.0):
        tt.emitted(u, now[0] - 0.5)
    now[0] = 9.8
    tt.emitted(u, 9.0)
    tt.endpoint(u, True)
    tt.final(u, True)                              # the endpoint covered the speech's end
    st = tt.stats()["text_latency"]
    assert st["after_end_s"] == {"p50": 0.8, "p95": 0.8, "n": 1}
    assert st["partial_gap_s"]["n"] == 5 and st["partial_gap_s"]["max"] == 2.0
