"""Callbacks that block, raise (SystemExit and KeyboardInterrupt included) or close their
own stream or hub: other streams keep their results, nothing hangs, every result is handed
out exactly once, close() is bounded and idempotent.

Real threads throughout; every wait is a bounded poll (a hang detector), never a timing
assert.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from hrlf.runtime.delivery import Closed
from hrlf.runtime.hub import Hub, HubConfig
from hrlf.runtime.session import Session, SessionConfig, SessionError
from tests.runtime.conftest import FakeBackend

T = np.zeros(32, np.float32)


def wait_for(cond, timeout_s=60.0, what="condition"):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def feed(stream, seconds, t0=0.0):
    """Text frames (4 per second, file mode): one window per second comes due."""
    for k in range(int(seconds * 4)):
        stream.push("text", t0 + 0.125 + k * 0.25, T)


def file_hub(spec, **cfg):
    return Hub(FakeBackend(spec), spec, HubConfig(stream=SessionConfig(), **cfg)).start()


def test_a_blocked_callback_delays_only_its_own_stream(small_spec):
    hub = file_hub(small_spec, delivery_threads=4)
    release = threading.Event()
    got = {i: 0 for i in range(21)}

    def make_cb(i):
        def cb(r):
            if i == 0:
                release.wait(120)
            got[i] += 1
        return cb

    streams = [hub.add_stream(f"s{i}", on_result=make_cb(i)) for i in range(21)]
    for part in range(12):  # 300 s each, 25 s at a time (a buffer holds 30 s)
        for s in streams:
            feed(s, 25, t0=25.0 * part)
        wait_for(lambda: all(s.stats()["pending"] <= 12 for s in streams), what="scoring")
    # ~298 windows each; stream 0's outbox (256) overflows while its callback is blocked
    wait_for(lambda: all(got[i] >= 290 for i in range(1, 21)), what="the 20 other streams")
    assert got[0] == 0
    release.set()
    closed = hub.close()
    st = closed.stats
    assert not closed.timed_out and st["accounting_ok"]
    dropped = st["segments_dropped"].get("callback_queue_full", 0)
    assert dropped > 0 and got[0] + dropped == streams[0].stats()["segments"]
    assert sum(got.values()) + dropped == st["segments"]


def test_close_is_bounded_when_a_callback_never_returns(small_spec):
    stuck = threading.Event()
    s = Session(FakeBackend(small_spec), small_spec, SessionConfig(),
                on_result=lambda r: (stuck.set(), threading.Event().wait(3600)))
    feed(s, 10)
    s.advance()
    wait_for(stuck.is_set, what="the callback to start")
    closed = s.close(timeout_s=0.5)
    assert isinstance(closed, Closed) and closed.timed_out and closed == []
    st = closed.stats
    assert st["segments_dropped"]["close_timeout"] >= 1 and st["accounting_ok"]
    again = s.close()
    assert again == [] and not again.timed_out  # idempotent, returns at once


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt(), ValueError("boom")])
def test_callback_exceptions_are_counted_and_interrupts_reach_the_owner(small_spec, exc):
    calls = []

    def cb(r):
        calls.append(r.segment)
        raise exc

    s = Session(FakeBackend(small_spec), small_spec, SessionConfig(), on_result=cb)
    feed(s, 6)
    s.advance()
    wait_for(lambda: s.stats()["callback_errors"] >= 1, what="the callback")
    if isinstance(exc, ValueError):  # the stream goes on
        s.close()
        assert s.stats()["callback_errors"] == len(calls) == s.stats()["segments"] == 5
        return
    with pytest.raises(type(exc)):  # the owner's next call re-raises the interrupt
        s.push("text", 100.0, T)
    with pytest.raises(SessionError, match=f"on_result raised {type(exc).__name__}"):
        s.push("text", 101.0, T)  # then the session is stopped
    with pytest.raises(SessionError):
        s.close()
    st = s.stats()
    assert st["callback_errors"] == 1 and len(calls) == 1 and st["accounting_ok"]
    assert st["segments_dropped"].get("session_stopped", 0) == st["segments"] - 1


def test_an_interrupt_in_a_hub_callback_stops_only_its_stream(small_spec):
    hub = file_hub(small_spec)
    other_got = []
    bad = hub.add_stream("bad", on_result=lambda r: (_ for _ in ()).throw(SystemExit(2)))
    good = hub.add_stream("good", on_result=other_got.append)
    feed(bad, 5)
    wait_for(lambda: bad.stats()["callback_errors"] == 1, what="the bad callback")
    feed(good, 20)
    wait_for(lambda: len(other_got) >= 18, what="the good stream")
    with pytest.raises(SystemExit):  # the stream's owner gets it, once
        bad.push("text", 50.0, T)
    hub.close()  # already re-raised: close() reports the stopped stream, no second raise
    assert hub.closed and len(other_got) == good.stats()["segments"] == 19
    hub = file_hub(small_spec)  # nobody called the stream again: Hub.close() re-raises it
    bad = hub.add_stream("bad", on_result=lambda r: (_ for _ in ()).throw(KeyboardInterrupt))
    feed(bad, 5)
    wait_for(lambda: bad.stats()["callback_errors"] == 1, what="the bad callback")
    with pytest.raises(KeyboardInterrupt):
        hub.close()
    assert hub.closed and bad.closed and hub.stats()["failed_streams"] == 1


def test_remove_and_close_from_inside_callbacks(small_spec):
    """A call ends inside its own on_result (hub.remove), another closes the whole hub
    from a callback: nothing deadlocks, each result is delivered once."""
    hub = file_hub(small_spec)
    seen: dict = {}

    def remover(r):
        seen.setdefault("a", []).append(r.segment)
        if r.segment == 3:
            assert hub.remove("a") == []  # returns at once; the rest follows

    a = hub.add_stream("a", on_result=remover)
    b = hub.add_stream("b", on_result=lambda r: seen.setdefault("b", []).append(r.segment))
    feed(a, 10)
    feed(b, 10)
    wait_for(lambda: a.closed, what="a to close itself")
    wait_for(lambda: len(seen.get("b", [])) == 8, what="b's results")  # [8, 10): at close
    wait_for(lambda: len(seen["a"]) == 9, what="a's last results after its callback")
    assert seen["a"] == list(range(9)) == list(range(a.stats()["segments"]))
    assert hub.stats()["streams_removed"] == 1 and b.closed is False
    closer_done = threading.Event()

    def closer(r):
        hub.close()
        closer_done.set()

    c = hub.add_stream("c", on_result=closer)
    feed(c, 3)
    wait_for(closer_done.is_set, what="hub.close() from a callback")
    assert hub.closed and b.closed and c.closed and seen["b"] == list(range(9))
    second = hub.close()  # idempotent: the same type, at once
    assert isinstance(second, Closed) and second.stats["streams_added"] == 3


def test_exactly_once_per_channel(small_spec):
    """Callback: returns are empty; results(): returns are empty; neither: returns hold
    everything. Each way, every scored segment is seen exactly once."""
    def run(on_result=None, start=False):
        s = Session(FakeBackend(small_spec), small_spec, SessionConfig(), on_result=on_result)
        if start:
            s.start()
        returned = []
        for k in range(8):
            feed(s, 1, t0=k)
            returned += s.advance()
        returned += s.close()
        return s, returned

    got = []
    s, ret = run(on_result=got.append)
    assert s.delivery == "callback" and ret == [] and len(got) == s.stats()["segments"] == 7
    s, ret = run(start=True)
    queued = list(s.results(timeout_s=0))
    assert ret == [] and len(queued) == s.stats()["segments"] == 7
    s, ret = run()
    assert s.delivery == "return" and [r.segment for r in ret] == list(range(7))


def test_session_and_hub_are_context_managers_with_the_same_close(small_spec):
    with Session(FakeBackend(small_spec), small_spec, SessionConfig()) as s:
        feed(s, 4)
    assert s.closed
    with file_hub(small_spec) as hub:
        st = hub.add_stream("x")
        feed(st, 4)
        r = hub.remove("x")
    assert hub.closed and type(r) is Closed and type(hub.close()) is Closed
    assert r.stats["segments"] == 3 and not r.timed_out


def test_live_results_at_remove_never_have_negative_latency(small_spec):
    clock = [100.0]
    hub = Hub(FakeBackend(small_spec), small_spec,
              HubConfig(stream=SessionConfig(live=True, grace_s=0.1)), monotonic=lambda: clock[0])
    s = hub.add_stream("x")
    for k in range(12):  # 3 s of text; nothing due yet on the clock: remove() scores it all
        s.push("text", 0.125 + k * 0.25, T)
    hub.remove(s)
    res = list(s.results(timeout_s=0))
    assert len(res) >= 2
    for r in res:
        assert min(r.latency_ms.values()) >= 0
        assert r.latency_ms["total"] >= r.latency_ms["pack"] + r.latency_ms["infer"] - 1e-9
