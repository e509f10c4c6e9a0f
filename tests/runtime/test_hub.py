"""Hub: many streams, one backend, cross-stream batching, per-stream accounting."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from hrlf.errors import InputError
from hrlf.runtime.hub import Hub, HubConfig
from hrlf.runtime.session import Session, SessionConfig
from hrlf.runtime.sources import Status, open_source
from tests.runtime.conftest import FakeBackend, dirty_chunk


@pytest.fixture(scope="module")
def demo_events():
    from hrlf.runtime.assets import demo_model_dir
    from hrlf.runtime.spec import ModelSpec

    src = open_source("demo:3", ModelSpec.load(demo_model_dir()), duration_s=15.0)
    events = []
    while True:
        r = src.read(0)
        events += r.events
        if r.status == Status.EOS:
            return events


def _reference(events, shift=0.0):
    s = Session.load("demo", backend="ort", config=SessionConfig())
    out = []
    for e in events:
        s.push(e.modality, e.t + shift, e.x)
        out += s.advance()
    return out + s.close(), s.stats()


def _garbage(i):
    """One bad frame of a rotating kind: every way a stream can be wrong."""
    kinds = [("audio", 1.0, ["x"] * 24), ("audio", 2.0, np.full(24, np.nan, np.float32)),
             ("vision", 3.0, np.zeros(5, np.float32)), ("text", 1e9, np.zeros(32, np.float32)),
             ("smell", 4.0, np.zeros(3, np.float32)), ("audio", -1.0, np.zeros(24, np.float32)),
             ("audio", 5.0, np.full(24, 1e39)), ("text", float("inf"), np.zeros(32))]
    return kinds[i % len(kinds)]


def test_streams_equal_their_own_session_and_bad_input_stays_in_its_stream(demo_events):
    """Four streams through one hub (time-shifted copies of the demo): scores equal a lone
    Session on the same frames; a fifth stream fed garbage between its frames changes
    nothing for the others and keeps its own accounting exact."""
    hub = Hub.load("demo", backend="ort", config=HubConfig(max_batch=8, stream=SessionConfig()))
    shifts = [0.0, 0.25, 1.5, 7.0]
    clean = [hub.add_stream(f"s{i}") for i in range(len(shifts))]
    bad = hub.add_stream("bad")
    results = {s.name: [] for s in clean + [bad]}
    for n, e in enumerate(demo_events):
        for s, sh in zip(clean, shifts):
            s.push(e.modality, e.t + sh, e.x)
        bad.push(e.modality, e.t, e.x)
        bad.push(*_garbage(n))
        hub.step()
    for s in clean + [bad]:
        assert s.close() == []  # no callback: everything went to results(), not here too
    stats = {p["stream"]: p for p in hub.removed_stats}
    for s in clean + [bad]:  # results() holds everything delivered, in order
        results[s.name] = list(s.results(timeout_s=0))
    for s, sh in zip(clean, shifts):
        want, want_stats = _reference(demo_events, sh)
        got = results[s.name]
        assert [r.segment for r in got] == [r.segment for r in want] and len(got) >= 10
        for a, b in zip(got, want):
            assert (a.modalities, a.frames) == (b.modalities, b.frames)
            assert abs(a.score - b.score) <= 1e-5
        st = stats[s.name]
        assert st["accounting_ok"] and st["received"] == st["used"] == want_stats["used"]
    st = stats["bad"]
    assert st["accounting_ok"] and st["pending"] == 0
    assert st["received"] == st["used"] + sum(st["dropped"].values())
    assert st["received"] == 2 * len(demo_events) and st["used"] == stats["s0"]["used"]
    assert {"malformed_frame", "nonfinite", "wrong_dim", "unknown_modality"} <= set(st["dropped"])
    assert hub.stats()["mean_batch"] > 1  # windows of several streams shared calls
    hub.close()


def _live_hub(spec, clock, **cfg):
    be = FakeBackend(spec)
    hub = Hub(be, spec, HubConfig(stream=SessionConfig(live=True, grace_s=0.1), **cfg),
              monotonic=lambda: clock[0])
    return hub, be


def _push_second(stream, spec, t0):
    """One second of frames of every modality from stream time t0."""
    for m in ("text", "audio", "vision"):
        rate = spec.features[m].frame_rate_hz
        for k in range(int(rate)):
            stream.push(m, t0 + (k + 0.5) / rate, np.ones(spec.dim(m), np.float32))


def test_due_windows_of_many_streams_share_one_call(small_spec):
    clock = [100.0]
    hub, be = _live_hub(small_spec, clock, max_batch=4, max_wait_s=0.05)
    streams = [hub.add_stream() for _ in range(10)]
    for t in range(3):
        for s in streams:
            _push_second(s, small_spec, float(t))
        clock[0] += 1.0
    hub.step()  # the first window of all 10 streams is due: 3 calls of <= 4 rows
    assert [len(c["modality_mask"]) for c in be.calls] == [4, 4, 2]
    assert hub.counts["rows"] == 10 and hub.stats()["segments"] == 10


def test_a_lone_due_window_waits_at_most_max_wait(small_spec):
    clock = [50.0]
    hub, be = _live_hub(small_spec, clock, max_batch=64, max_wait_s=0.05)
    s = hub.add_stream()
    for t in range(3):
        _push_second(s, small_spec, float(t))
    clock[0] += 2.11  # window 0 [0, 2) is due at 2.1 s: it waits for company
    assert hub.step() == 0 and not be.calls
    clock[0] += 0.05
    assert hub.step() == 1 and len(be.calls) == 1
    r = list(s.results(timeout_s=0))[0]
    assert r.segment == 0 and r.latency_ms["total"] == pytest.approx(60.0, abs=1.0)


class PickyBackend(FakeBackend):
    """Fails any call holding a window whose text z-scores are all 7 (one stream's)."""

    def run(self, feeds):
        if (np.abs(feeds["text"] - 7.0) < 1e-3).all(axis=(1, 2)).any():
            raise RuntimeError("poisoned row")
        return super().run(feeds)


def test_a_failing_batch_costs_only_the_stream_that_caused_it(small_spec):
    clock = [10.0]
    be = PickyBackend(small_spec)
    hub = Hub(be, small_spec, HubConfig(stream=SessionConfig(live=True)),
              monotonic=lambda: clock[0])
    good, poison = hub.add_stream("good"), hub.add_stream("poison")
    mean = np.asarray(small_spec.norm["text"]["mean"], np.float32)
    std = np.asarray(small_spec.norm["text"]["std"], np.float32)
    for t in range(3):
        _push_second(good, small_spec, float(t))
        for k in range(4):  # text that normalizes to exactly 7.0
            poison.push("text", t + (k + 0.5) / 4, mean + 7.0 * std)
        clock[0] += 1.0
    hub.step(flush=True)
    assert hub.counts["batch_failures"] == 1
    assert good.stats()["segments"] == 1 and not good.stats()["segments_dropped"]
    assert poison.stats()["segments_dropped"] == {"backend_error": 1}
    for s in (good, poison):
        assert s.stats()["accounting_ok"]


def test_add_and_remove_streams_while_running(tmp_path):
    """Real threads and clock: streams come and go while the worker scores the others."""
    hub = Hub.load("demo", backend="ort", config=HubConfig(max_wait_s=0.01, stream=SessionConfig(
        live=True, grace_s=0.05, window_s=0.4, hop_s=0.2))).start()
    spec = hub.spec
    got: dict = {}
    lock = threading.Lock()

    def collect(r):
        with lock:
            got.setdefault(r.segment, 0)
            got[r.segment] += 1

    streams = [hub.add_stream(f"c{i}", on_result=collect) for i in range(6)]
    t_end, swapped = time.monotonic() + 1.5, False
    while time.monotonic() < t_end:
        for s in list(streams):
            t = s.clock()
            for m in ("text", "audio", "vision"):
                s.push(m, t, np.zeros(spec.dim(m), np.float32))
        if not swapped and time.monotonic() > t_end - 1.0:
            swapped = True
            hub.remove(streams.pop(0))   # leaves mid-stream
            streams.append(hub.add_stream("late", on_result=collect))  # joins mid-stream
        time.sleep(0.02)
    final = hub.close().stats
    assert final["accounting_ok"] and final["streams_added"] == 7 == final["streams_removed"]
    assert final["segments"] == sum(got.values()) > 0
    assert final["received"] == final["used"] + sum(final["dropped"].values())
    with pytest.raises(InputError, match="^hub: add_stream after close"):
        hub.add_stream()


def test_names_and_config_are_checked(small_spec):
    hub = Hub(FakeBackend(small_spec), small_spec)
    hub.add_stream("a")
    with pytest.raises(InputError, match="^hub: a stream named 'a' exists"):
        hub.add_stream("a")
    with pytest.raises(InputError, match="^hub: no stream named 'b'"):
        hub.stream("b")
    with pytest.raises(InputError, match="max_wait_s"):
        Hub(FakeBackend(small_spec), small_spec, HubConfig(max_wait_s=-1))


def test_push_many_counts_exactly_like_push(small_spec):
    """Random chunks, clean and dirty (NaN, repeats, going back, jumps, wrong dims): a
    stream fed by push_many ends in the same state as one fed frame by frame."""
    rng = np.random.default_rng(5)
    hub = Hub(FakeBackend(small_spec), small_spec, HubConfig(stream=SessionConfig()))
    a, b = hub.add_stream("chunks"), hub.add_stream("frames")
    t = {m: 0.0 for m in ("text", "audio", "vision")}
    fast = 0
    for step in range(300):
        m = ("text", "audio", "vision")[rng.integers(3)]
        times, frames, kind = dirty_chunk(rng, small_spec, t[m], m)
        n = len(times)
        t[m] = max(t[m], float(times.max()))
        before = a.acct.received
        got = a.push_many(m, times, frames)
        fast += a.acct.received - before == n and kind > 4
        want = sum(b.push(m, float(ti), x) for ti, x in zip(times, frames))
        assert got == want
        if step % 20 == 0:
            hub.step(flush=True)
    a.close(), b.close()
    a_res, b_res = list(a.results(timeout_s=0)), list(b.results(timeout_s=0))
    sa, sb = hub.removed_stats
    for k in ("received", "used", "dropped", "segments", "empty_windows", "accounting_ok"):
        assert sa[k] == sb[k], k
    assert sa["accounting_ok"] and fast > 50
    assert [r.score for r in a_res] == [r.score for r in b_res] and len(a_res) > 10
