import threading

import numpy as np
import pytest

from hrlf.runtime.datasets import pack_recordings
from hrlf.runtime.spec import MODALITIES

from .conftest import push_recording


def test_streaming_feeds_equal_offline_packing(make_session, recording, small_dataset, small_spec):
    s, be = make_session()
    push_recording(s, recording)
    results = s.advance() + s.close()
    offline = pack_recordings([recording], small_dataset.features, small_spec.window_s,
                              small_spec.hop_s)
    assert [r.segment for r in results] == list(range(len(offline)))
    ref = offline.batch(small_spec.norm)
    got = {k: np.concatenate([c[k] for c in be.calls]) for k in ref}
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=0, atol=1e-5, err_msg=k)
    st = s.stats()
    assert st["accounting_ok"] and st["pending"] == 0
    assert st["received"] == st["used"] == sum(len(recording.times[m]) for m in MODALITIES)


def test_outage_makes_modality_absent_and_masks_partial_frames(make_session, recording):
    s, be = make_session()
    push_recording(s, recording, outages=[("audio", 4.0, 7.0)])
    res = {r.segment: r for r in s.advance() + s.close()}
    assert "audio" not in res[4].modalities and "audio" not in res[5].modalities  # [4,6) [5,7)
    assert res[3].modalities == list(MODALITIES)
    assert res[3].frames["audio"] == 20  # [3,5): half the 40 audio slots
    assert res[7].frames["audio"] == 40


@pytest.mark.parametrize("bad, reason", [
    (("audio", 1.0, [np.nan] * 24), "nonfinite"),
    (("audio", 1.0, [0.0] * 23), "wrong_dim"),
    (("smell", 1.0, [0.0] * 24), "unknown_modality"),
    (("audio", 1.0, "abc"), "malformed_frame"),
    (("audio", float("nan"), [0.0] * 24), "bad_timestamp"),
    (("audio", -1.0, [0.0] * 24), "bad_timestamp"),
])
def test_bad_frames_are_counted_drops(make_session, bad, reason):
    s, _ = make_session()
    refused = s.push(*bad)  # false, and says why in one line
    assert not refused and refused.reason == reason and not refused.accepted
    assert refused.message.startswith("push: ") and "\n" not in refused.message
    assert s.push("audio", 0.5, np.zeros(24, np.float32))
    s.close()
    st = s.stats()
    assert st["dropped"] == {reason: 1} and st["accounting_ok"]
    assert st["segments"] == 1


def test_timing_policy_duplicate_out_of_order_late(make_session):
    s, _ = make_session()
    x = np.zeros(32, np.float32)
    assert s.push("text", 0.5, x) and s.push("text", 1.0, x)
    assert not s.push("text", 1.0, x)       # duplicate
    assert not s.push("text", 0.7, x)       # going backwards
    assert s.push("text", 5.0, x)           # windows [0,2) ... [3,5) become due
    assert [r.segment for r in s.advance()] == [0, 1]
    assert not s.push("vision", 0.2, np.zeros(32, np.float32))  # older than window 2 start
    s.close()
    st = s.stats()
    assert st["dropped"] == {"duplicate": 1, "out_of_order": 1, "late": 1}
    assert st["accounting_ok"] and st["empty_windows"] == 2  # [2,4) and [3,5) hold no frame


def test_stall_then_return(make_session, recording):
    s, _ = make_session()
    events = push_recording(s, recording, outages=[("vision", 2.0, 9.0)])
    res = {r.segment: r for r in s.advance() + s.close()}
    assert all("vision" not in res[k].modalities for k in range(2, 8))
    assert "vision" in res[8].modalities and "vision" in res[1].modalities
    assert s.stats()["received"] == len(events) and s.stats()["accounting_ok"]


def test_source_ending_mid_window_is_flushed(make_session, recording):
    s, _ = make_session()
    x = recording.frames["audio"]
    for t, row in zip(recording.times["audio"], x):
        if t < 3.3:
            s.push("audio", t, row)
    res = s.advance()
    assert [r.segment for r in res] == [0, 1]         # complete windows, data up to 3.3 s
    tail = s.close()
    assert [r.segment for r in tail] == [2]           # the partial [2,4); [3,5) has no new frame
    t = recording.times["audio"]
    assert tail[0].frames["audio"] == ((t >= 2.0) & (t < 3.3)).sum()
    assert s.stats()["accounting_ok"] and s.stats()["pending"] == 0


def test_condition_and_drop_schedule(make_session, recording):
    s, _ = make_session(condition="la", drops=[("text", 3.0, 6.0)])
    push_recording(s, recording)
    res = {r.segment: r for r in s.advance() + s.close()}
    assert all("vision" not in r.modalities for r in res.values())
    assert res[4].modalities == ["audio"]
    st = s.stats()
    assert st["dropped"]["condition"] == len(recording.times["vision"])
    assert st["dropped"]["drop_schedule"] == 12  # 3 s of text at 4 Hz
    assert st["accounting_ok"]


def test_live_deadlines_with_fake_clock(make_session):
    now = [100.0]
    s, _ = make_session(live=True, grace_s=0.2, monotonic=lambda: now[0])
    s.push("text", 0.3, np.zeros(32, np.float32))    # clock starts at first push
    now[0] = 101.9
    assert s.advance() == []
    now[0] = 102.25                                   # past end 2.0 + grace 0.2
    (r,) = s.advance()
    assert r.modalities == ["text"] and r.frames == {"text": 1, "audio": 0, "vision": 0}
    assert r.latency_ms["wait"] == pytest.approx(50.0, abs=1e-6)


def test_backlog_and_buffer_backpressure(make_session):
    now = [0.0]
    s, _ = make_session(live=True, max_inflight=2, buffer_s=2.0, monotonic=lambda: now[0])
    for i in range(120):                              # 6 s of audio at 20 Hz (cap 80 frames)
        s.push("audio", i * 0.05 + 0.01, np.zeros(24, np.float32))
    now[0] = 10.0
    res = s.advance()
    st = s.stats()
    assert st["dropped"]["buffer_full"] == 40         # oldest 2 s dropped, counted
    assert [r.segment for r in res] == [4, 5]         # windows 1-5 hold data; newest 2 kept
    assert st["segments_dropped"]["backlog"] == 3
    s.close()
    assert s.stats()["accounting_ok"]


def test_thread_safe_push_with_worker(make_session, recording):
    got = []
    s, _ = make_session()
    s.on_result = got.append
    s.start(poll_s=0.001)
    threads = []
    for m in MODALITIES:
        def feed(m=m):
            for t, row in zip(recording.times[m], recording.frames[m]):
                s.push(m, t, row)
        threads.append(threading.Thread(target=feed))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s.close()
    st = s.stats()
    assert st["accounting_ok"] and st["pending"] == 0
    assert st["received"] == sum(len(recording.times[m]) for m in MODALITIES)
    segs = [r.segment for r in got]
    assert segs == sorted(set(segs)) and len(segs) == st["segments"]


def test_results_iterator(make_session, recording):
    s, _ = make_session()
    s.start()
    push_recording(s, recording)
    out = []
    closer = threading.Timer(0.2, s.close)
    closer.start()
    for r in s.results():
        out.append(r.segment)
    assert out == list(range(len(out))) and len(out) == 11


def test_absurd_finite_frame_is_masked_not_fed(make_session):
    s, be = make_session()
    assert s.push("audio", 0.5, np.full(24, 3e38, np.float32))  # finite, absurd z-scores
    assert s.push("audio", 0.7, np.zeros(24, np.float32))
    assert not s.push("audio", 0.9, np.array([np.inf] + [0.0] * 23, np.float32))
    (r,) = s.close()
    st = s.stats()
    assert st["dropped"] == {"nonfinite": 1} and st["slots_out_of_range"] == 1
    assert r.frames["audio"] == 1 and st["accounting_ok"]
    fed = be.calls[0]
    assert np.isfinite(fed["audio"]).all() and np.abs(fed["audio"]).max() < 1e4
