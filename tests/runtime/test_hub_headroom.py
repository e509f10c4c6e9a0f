"""The hub uses the machine: usable CPUs, a measured batching policy, inference threads
that keep each stream in order, batch packing equal to a Session's, and a latency budget
that sheds windows (counted) instead of falling behind.

Real threads where threads matter; every wait is a bounded poll or a barrier with a
timeout (a hang detector), never a timing assert.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from hrlf.runtime import cpus
from hrlf.errors import InputError
from hrlf.runtime.hub import Hub, HubConfig
from hrlf.runtime.hub_batching import CostModel
from hrlf.runtime.hub_pack import cut_windows, pack_batch
from hrlf.runtime.session import Session, SessionConfig
from tests.runtime.conftest import FakeBackend
from tests.runtime.test_delivery_faults import feed, wait_for


def test_usable_cpus_reads_affinity_and_cgroup_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")  # a container limited to 1.5 CPUs
    assert cpus.cgroup_cpu_quota(str(v2)) == 1.5 and cpus.usable_cpus(str(v2)) == 2
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cpus.cgroup_cpu_quota(str(v2)) is None and cpus.usable_cpus(str(v2)) == 6
    v1 = tmp_path / "v1" / "cpu"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cpus.usable_cpus(str(tmp_path / "v1")) == 3
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")  # v1's "no limit"
    assert cpus.usable_cpus(str(tmp_path / "v1")) == 6
    assert cpus.usable_cpus(str(tmp_path / "none")) == 6


def test_cost_model_fits_the_line_and_picks_the_smallest_efficient_batch():
    points = {b: 0.5e-3 + 0.25e-3 * b for b in (1, 2, 4, 8, 16, 32, 64)}
    cm = CostModel.fit(points)
    assert cm.fixed_s == pytest.approx(0.5e-3) and cm.per_row_s == pytest.approx(0.25e-3)
    # fixed / (eps * per_row) = 20: a batch of 20 costs within 10 % of the asymptote per row
    assert cm.target_batch(64) == 20 and cm.target_batch(8) == 8
    assert CostModel.fit({b: 0.3e-3 * b for b in (1, 4, 16)}).target_batch(64) == 1
    for _ in range(500):  # the machine got twice as slow: the scale follows
        cm.observe(16, 2 * (0.5e-3 + 0.25e-3 * 16))
    assert cm.scale == pytest.approx(2.0, rel=0.01)
    assert cm.call_s(16) == pytest.approx(2 * (0.5e-3 + 0.25e-3 * 16), rel=0.01)
    seen = []
    measured = CostModel.measure(lambda f: seen.append(len(f["modality_mask"])),
                                 _spec(), max_batch=16, rounds=2)
    assert set(seen) == {1, 2, 4, 8, 16} and measured.per_row_s > 0


def _spec():
    from hrlf.runtime.assets import demo_model_dir
    from hrlf.runtime.spec import ModelSpec

    return ModelSpec.load(demo_model_dir())


def test_batch_packing_equals_each_streams_own_packing(small_spec):
    """Windows cut out of several streams and packed in one pass give exactly the feeds
    each stream's Packer gives, absurd values (masked and counted) included."""
    rng = np.random.default_rng(3)
    sessions = [Session(FakeBackend(small_spec), small_spec, SessionConfig()) for _ in range(5)]
    for i, s in enumerate(sessions):
        for m in ("text", "audio", "vision"):
            rate, d = small_spec.features[m].frame_rate_hz, small_spec.dim(m)
            t = np.sort(rng.uniform(0, 6, int(rate * 6 * rng.uniform(0.3, 1.0))))
            x = rng.normal(size=(len(t), d)).astype(np.float32)
            if i == 2 and m == "audio":
                x[3] = 1e30  # finite, absurd once normalized
            for ti, xi in zip(t, x):
                s.push(m, float(ti), xi)
    rows, want = [], []
    for s in sessions:
        for start in (0.0, 1.0, 2.5):
            want.append(s.packer.pack(s.buffers, [start], time.monotonic)[0])
            rows.append((cut_windows(s.buffers, [start], s.window_s)[0], s.packer))
    bad_want = sum(s.acct.slots_out_of_range for s in sessions)
    feeds, bad_rows, _ = pack_batch(rows)
    for i, w in enumerate(want):
        for k, v in w.items():
            assert np.array_equal(feeds[k][i], v[0]), (i, k)
    assert int(bad_rows.sum()) == bad_want > 0


class ParallelBackend(FakeBackend):
    """Runs calls in parallel; its first two calls wait for each other (a barrier), so a
    hub that runs one call at a time would hang here."""

    concurrent_runs = True

    def __init__(self, spec):
        super().__init__(spec)
        self.barrier = threading.Barrier(2, timeout=60)
        self.lock = threading.Lock()
        self.n = self.inside = self.most_inside = 0

    def run(self, feeds):
        with self.lock:
            self.n += 1
            first_two = self.n <= 2
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            if first_two:
                self.barrier.wait()
            time.sleep(0.002)
            with self.lock:
                return super().run(feeds)
        finally:
            with self.lock:
                self.inside -= 1


def test_inference_threads_run_in_parallel_and_keep_each_stream_in_order(small_spec):
    be = ParallelBackend(small_spec)
    hub = Hub(be, small_spec, HubConfig(stream=SessionConfig(), workers=4, target_batch=1,
                                        max_wait_s=0.0)).start()
    got: dict = {i: [] for i in range(12)}

    def make_cb(i):
        return lambda r: got[i].append(r.segment)

    streams = [hub.add_stream(f"s{i}", on_result=make_cb(i)) for i in range(12)]
    for part in range(4):
        for s in streams:
            feed(s, 20, t0=20.0 * part)
        wait_for(lambda: all(s.stats()["pending"] <= 12 for s in streams), what="scoring")
    final = hub.close().stats
    assert be.most_inside >= 2 and final["batching"]["workers"] == 4
    for i, s in enumerate(streams):
        assert got[i] == sorted(got[i]) and len(set(got[i])) == len(got[i]) >= 70
    assert final["segments"] == sum(len(v) for v in got.values())
    assert final["accounting_ok"] and not final["segments_dropped"]


def _push_live(streams, spec, seconds):
    """Frames at the streams' own clocks (live), every 20 ms, for ``seconds``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for s in streams:
            t = s.clock()
            for m in ("text", "audio", "vision"):
                s.push(m, t, np.zeros(spec.dim(m), np.float32))
        time.sleep(0.02)


@pytest.mark.parametrize("budget_s", [0.2, None])
def test_a_latency_budget_sheds_what_cannot_be_scored_in_time(small_spec, budget_s):
    """A backend measured at 1 s per call cannot meet a 0.2 s budget: every live window is
    shed before packing (segments_dropped.overload, no backend call) and windows without
    frames still get their no_data results; without a budget they are all scored."""
    be = FakeBackend(small_spec)
    live = SessionConfig(live=True, grace_s=0.05, window_s=0.4, hop_s=0.2, no_data=True)
    hub = Hub(be, small_spec, HubConfig(stream=live, latency_budget_s=budget_s,
                                        max_wait_s=0.0), cost=CostModel(1.0, 0.0)).start()
    results: list = []
    streams = [hub.add_stream(f"c{i}", on_result=results.append) for i in range(3)]
    quiet = hub.add_stream("quiet", on_result=results.append)  # one frame, then silence
    quiet.push("text", quiet.clock(), np.zeros(small_spec.dim("text"), np.float32))
    _push_live(streams, small_spec, 1.2)
    wait_for(lambda: sum(s.stats()["segments_dropped"].get("overload", 0) + s.stats()["segments"]
                         for s in streams) >= 9, what="windows due")
    calls_while_live = len(be.calls)
    final = hub.close().stats
    shed = final["segments_dropped"].get("overload", 0)
    if budget_s is None:
        assert shed == 0 and calls_while_live > 0
    else:
        assert shed >= 9 and calls_while_live == 0
        assert any(r.status == "no_data" for r in results)  # the quiet stream's windows
    assert final["accounting_ok"] and final["received"] == final["used"] + sum(
        final["dropped"].values())


def test_streams_with_their_own_window_are_scored_in_separate_calls(small_spec):
    be = FakeBackend(small_spec)
    hub = Hub(be, small_spec, HubConfig(stream=SessionConfig()))
    a = hub.add_stream("a")
    b = hub.add_stream("b", config=SessionConfig(window_s=1.0, hop_s=1.0))
    for s in (a, b):
        feed(s, 6)
    hub.advance()
    shapes = {c["text"].shape[1] for c in be.calls}
    assert len(shapes) == 2 and all(len({c["text"].shape[1]}) == 1 for c in be.calls)
    a.close(), b.close()
    assert all(st["segments"] >= 3 and st["accounting_ok"] for st in hub.removed_stats)


def test_hub_config_and_the_measured_policy(small_spec):
    for bad in ({"workers": 0}, {"workers": True}, {"target_batch": 0},
                {"latency_budget_s": 0}, {"latency_budget_s": "1"}):
        with pytest.raises(InputError, match="^hub config: "):
            Hub(FakeBackend(small_spec), small_spec, HubConfig(**bad))
    assert Hub(FakeBackend(small_spec), small_spec).workers == 1  # not concurrent_runs
    with Hub.load("demo", backend="ort", config=HubConfig(max_batch=16)) as hub:
        b = hub.stats()["batching"]
        assert 1 <= b["target_batch"] <= 16 and b["workers"] == cpus.usable_cpus()
        assert set(b["cost"]["measured_ms"]) == {"1", "2", "4", "8", "16"}


def test_a_callback_stream_keeps_no_results_queue_and_shares_the_spec(small_spec):
    """Fewer objects per stream for the collector to walk: a stream whose results go to a
    callback never makes the results() queue, and streams at the model's window share its
    spec; a results() reader still gets every result, including those scored before it
    first asked."""
    hub = Hub(FakeBackend(small_spec), small_spec, HubConfig(stream=SessionConfig())).start()
    got: list = []
    cb = hub.add_stream("cb", on_result=got.append)
    reader = hub.add_stream("reader")
    other = hub.add_stream("other", config=SessionConfig(window_s=1.0, hop_s=1.0))
    assert cb.packer.pack_spec is small_spec and reader.packer.pack_spec is small_spec
    assert other.packer.pack_spec.window_s == 1.0 and small_spec.window_s != 1.0
    for s in (cb, reader):
        feed(s, 6)
    wait_for(lambda: len(got) >= 3 and reader.stats()["segments"] >= 3, what="scoring")
    hub.close()
    assert cb._results is None
    assert len(list(reader.results(timeout_s=0.5))) == reader.stats()["segments"] >= 3
