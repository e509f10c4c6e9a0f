"""Hub.push_batch: many streams' chunks in one call, with exactly the counts, refusals and
results of one push_many per stream; one stream's bad chunk or closed state stays its own."""
from __future__ import annotations

import time

import numpy as np
import pytest

from hrlf.errors import InputError
from hrlf.runtime import hub_push
from hrlf.runtime.hub import Hub, HubConfig
from hrlf.runtime.hub_stream import HubStream
from hrlf.runtime.session import SessionConfig
from tests.runtime.conftest import FakeBackend, dirty_chunk
from tests.runtime.test_delivery_faults import wait_for

MODS = ("text", "audio", "vision")
KEYS = ("received", "used", "dropped", "segments", "empty_windows", "accounting_ok")


def _chunk(rng, spec, t_last, m):
    """A random chunk after ``t_last``: clean, dirty in one of push's ways, or float64
    frames (not the fast path's dtype: pushed frame by frame, accepted)."""
    times, frames, kind = dirty_chunk(rng, spec, t_last, m, kinds=10)
    return times, frames.astype(np.float64) if kind == 5 else frames


def test_push_batch_counts_exactly_like_push_many_per_stream(small_spec, monkeypatch):
    """Six streams fed by push_batch (random subsets, a stream twice in one call, clean and
    dirty chunks) end in the state of six twins fed by push_many: same return values,
    counts, drops by reason and scores; the chunks push_many stores in one step are the
    ones the batch stores in one step."""
    per_frame, twin_fast = [], []
    each, fast = hub_push._push_each, HubStream._fast_chunk
    monkeypatch.setattr(hub_push, "_push_each",
                        lambda *a: per_frame.append(1) or each(*a))

    def spy(self, *a):
        n = fast(self, *a)
        if self.name.startswith("t"):
            twin_fast.append(n)
        return n

    monkeypatch.setattr(HubStream, "_fast_chunk", spy)
    rng = np.random.default_rng(11)
    hub = Hub(FakeBackend(small_spec), small_spec, HubConfig(stream=SessionConfig()))
    batch = [hub.add_stream(f"b{i}") for i in range(6)]
    twins = [hub.add_stream(f"t{i}") for i in range(6)]
    t_last = {(i, m): 0.0 for i in range(6) for m in MODS}
    chunks = 0
    for step in range(120):
        m = MODS[step % 3]
        picked = [int(i) for i in rng.choice(6, size=int(rng.integers(1, 8)))]  # repeats too
        ts, xs = [], []
        for i in picked:
            times, frames = _chunk(rng, small_spec, t_last[i, m], m)
            t_last[i, m] = max(t_last[i, m], float(times.max()))
            ts.append(times)
            xs.append(frames)
        names = [f"b{i}" if k % 2 else batch[i] for k, i in enumerate(picked)]  # both forms
        got = hub.push_batch(m, names, ts, xs)
        chunks += len(picked)
        want = [twins[i].push_many(m, t, x) for i, t, x in zip(picked, ts, xs)]
        assert got.accepted.tolist() == want
        assert (got.accepted + got.refused).tolist() == [len(t) for t in ts]
        assert not got.closed.any() and got.total == sum(want)
        if step % 15 == 0:
            hub.step(flush=True)
    batch_fast = chunks - len(per_frame)
    assert batch_fast == sum(n is not None for n in twin_fast) > 60
    for b, t in zip(batch, twins):
        b.close(), t.close()
        assert [r.score for r in b.results(timeout_s=0)] == \
            [r.score for r in t.results(timeout_s=0)]
    final = {p["stream"]: p for p in hub.removed_stats}
    for i in range(6):
        for k in KEYS:
            assert final[f"b{i}"][k] == final[f"t{i}"][k], (i, k)
        assert final[f"b{i}"]["accounting_ok"] and final[f"b{i}"]["segments"] > 0
    assert any(final[f"b{i}"]["dropped"] for i in range(6))


def test_refusals_and_closed_streams_stay_in_their_stream(small_spec):
    """One call: a clean stream, a NaN frame, a wrong dim, a strict stream's bad frame, a
    closed stream (its HubStream: its name left the hub), an unknown modality. Each is
    counted in its own stream; the call never raises for them; the closed stream takes
    and counts nothing and is flagged."""
    hub = Hub(FakeBackend(small_spec), small_spec, HubConfig(stream=SessionConfig()))
    names = ["ok", "nan", "dim", "strict", "gone"]
    ss = [hub.add_stream(n, config=SessionConfig(strict=n == "strict")) for n in names]
    d = small_spec.dim("audio")
    for s in ss:  # anchor every stream (its first chunk)
        s.push_many("audio", np.array([0.1]), np.zeros((1, d), np.float32))
    ss[4].close()
    t = np.array([1.0, 1.1, 1.2])
    x = np.ones((3, d), np.float32)
    nan = x.copy()
    nan[1, 2] = np.nan
    got = hub.push_batch("audio", names[:4] + ss[4:], [t, t, t, t, t],
                         [x, nan, x[:, :-1], nan, x])
    assert got.accepted.tolist() == [3, 2, 0, 2, 0]
    assert got.refused.tolist() == [0, 1, 3, 1, 0]
    assert got.closed.tolist() == [False, False, False, False, True]
    dropped = {s.name: s.stats()["dropped"] for s in ss}
    assert dropped["ok"] == {} and dropped["nan"] == {"nonfinite": 1}
    assert dropped["dim"] == {"wrong_dim": 3} and dropped["strict"] == {"nonfinite": 1}
    assert ss[4].stats()["received"] == 1  # its first frame only
    odd = hub.push_batch("smell", ["ok"], [np.array([2.0])], [np.zeros((1, 3), np.float32)])
    assert odd.refused.tolist() == [1] and ss[0].stats()["dropped"] == {"unknown_modality": 1}
    for s in ss[:4]:
        assert s.stats()["accounting_ok"]


def test_a_malformed_call_raises_before_pushing_anything(small_spec):
    hub = Hub(FakeBackend(small_spec), small_spec, HubConfig(stream=SessionConfig()))
    other = Hub(FakeBackend(small_spec), small_spec, HubConfig(stream=SessionConfig()))
    a = hub.add_stream("a")
    t, x = np.array([0.5]), np.zeros((1, small_spec.dim("text")), np.float32)
    with pytest.raises(InputError, match="^push_batch: no stream named 'zz'"):
        hub.push_batch("text", ["a", "zz"], [t, t], [x, x])
    with pytest.raises(InputError, match="not a stream of this hub"):
        hub.push_batch("text", [a, other.add_stream("b")], [t, t], [x, x])
    with pytest.raises(InputError, match="2 streams, 1 time arrays"):
        hub.push_batch("text", ["a", "a"], [t], [x, x])
    with pytest.raises(InputError, match="has 2 times but 1 frames"):
        hub.push_batch("text", ["a"], [np.array([0.5, 0.6])], [x])
    with pytest.raises(TypeError, match="modality must be a str"):
        hub.push_batch(3, ["a"], [t], [x])
    assert a.stats()["received"] == 0


def test_live_streams_fed_only_by_push_batch_get_their_results(small_spec):
    """The running worker learns of the streams a batch pushed to (their deadlines) and
    scores them: every stream gets its windows, in order."""
    live = SessionConfig(live=True, grace_s=0.05, window_s=0.4, hop_s=0.2)
    hub = Hub(FakeBackend(small_spec), small_spec, HubConfig(stream=live, max_wait_s=0.0,
                                                            latency_budget_s=None)).start()
    got: dict = {i: [] for i in range(8)}
    streams = [hub.add_stream(f"s{i}", on_result=lambda r, i=i: got[i].append(r.segment))
               for i in range(8)]
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        for m in MODS:
            ts = [np.array([s.clock()]) for s in streams]
            xs = [np.zeros((1, small_spec.dim(m)), np.float32)] * len(streams)
            hub.push_batch(m, streams, ts, xs)
        time.sleep(0.02)
    wait_for(lambda: all(len(v) >= 4 for v in got.values()), what="results")
    final = hub.close().stats
    for v in got.values():
        assert v == sorted(v) and len(set(v)) == len(v)
    assert final["accounting_ok"] and final["segments"] == sum(len(v) for v in got.values())
