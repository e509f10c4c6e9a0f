"""Session contracts of the failure policy: timestamps, types, close(), callbacks, no_data."""
import threading

import numpy as np
import pytest

from hrlf.runtime.session import SessionClosed, SessionError

A = np.zeros(24, np.float32)  # an audio frame of the small spec (audio 24-d)
T = np.zeros(32, np.float32)  # text


def _finish(s):
    s.close()
    st = s.stats()
    assert st["accounting_ok"] and st["pending"] == 0, st
    return st


@pytest.mark.parametrize("t_far", [9.9e9, 1e10, 1.7e9])
def test_far_timestamp_costs_one_frame_not_a_walk(make_session, t_far):
    s, _ = make_session()
    for k in range(10):
        assert s.push("audio", k * 0.5 + 0.01, A)
    assert not s.push("audio", t_far, A)           # one glitch: a counted clock_jump
    assert not s.push("audio", 1e300, A)           # beyond T_MAX: bad_timestamp
    for k in range(10, 20):                        # the stream goes on: not late
        assert s.push("audio", k * 0.5 + 0.01, A)
    res = s.advance() + s.finish()
    assert [r.segment for r in res] == list(range(9))  # [8,10) holds the last frames
    st = _finish(s)
    assert st["dropped"] == {"clock_jump": 1, "bad_timestamp": 1}
    assert s.work_steps < 50


def test_first_frame_far_away_is_o1_in_file_mode(make_session):
    s, _ = make_session()
    assert s.push("audio", 9.99e9, A) and s.push("audio", 9.99e9 + 0.5, A)
    (r,) = s.advance() + s.close()
    assert r.t_start == pytest.approx(9.99e9 - 1.0, abs=1e-3)
    assert s.work_steps < 10 and s.stats()["accounting_ok"]


@pytest.mark.parametrize("restart_at", [0.0, 5000.0])
def test_persistent_jump_reanchors_after_three_frames(make_session, restart_at):
    s, _ = make_session(max_jump_s=100.0)
    for k in range(400):                            # 200 s of audio at 2 Hz
        s.push("audio", 0.25 + k * 0.5, A)
    ok = [s.push("audio", restart_at + 0.1 + k * 0.5, A) for k in range(10)]
    assert ok == [False, False] + [True] * 8        # two counted, then re-anchored
    res = s.advance() + s.close()
    st = s.stats()
    assert st["dropped"] == {"clock_jump": 2} and st["time_base"]["reanchors"] == 1
    segs = [r.segment for r in res]
    assert segs == sorted(set(segs))                # numbering keeps increasing
    assert restart_at + 4.6 < res[-1].t_end <= restart_at + 6.6  # on the new clock
    assert st["accounting_ok"] and st["used"] == 408


def test_live_epoch_timestamps_emit(make_session):
    now = [500.0]
    s, _ = make_session(live=True, grace_s=0.2, monotonic=lambda: now[0])
    epoch = 1.7e9 + 0.37
    out = []
    for k in range(50):                             # 5 s of text stamped with time.time()
        now[0] = 500.0 + k * 0.1
        assert s.push("text", epoch + k * 0.1, T)
        out += s.advance()
    assert [r.segment for r in out][:3] == [0, 1, 2]
    assert out[0].t_start == pytest.approx(epoch, abs=1e-6)
    assert s.stats()["time_base"]["anchored"] == "first_frame"
    _finish(s)


def test_close_returns_with_thousands_of_unread_results(make_session):
    s, _ = make_session()
    s.start()
    for k in range(3000):                           # ~3000 windows, nobody reads results()
        s.push("text", k + 0.5, T)
        if s.ready():                               # as a file reader does
            s.advance()
    closer = threading.Thread(target=s.close)
    closer.start()
    closer.join(60)                                 # a hang detector, not a timing assert
    assert not closer.is_alive(), "close() deadlocked"
    st = s.stats()
    assert st["accounting_ok"] and st["segments_dropped"].get("result_queue_full", 0) > 0, st
    got = list(s.results(timeout_s=0.1))             # what is left: the newest, in order
    assert len(got) + st["segments_dropped"]["result_queue_full"] == st["segments"]
    assert [r.segment for r in got] == list(range(st["segments"] - len(got), st["segments"]))


def test_callback_errors_continue_are_counted(make_session):
    s, _ = make_session()
    calls = []

    def cb(r):
        calls.append(r.segment)
        raise ValueError("boom")
    s.on_result = cb
    for k in range(6):
        assert s.push("text", k + 0.5, T)
    s.advance()
    st = _finish(s)
    assert st["callback_errors"] == len(calls) == st["segments"] == 5


def test_callback_error_stop_stops_the_session(make_session):
    s, _ = make_session(on_callback_error="stop")
    s.on_result = lambda r: 1 / 0
    s.start(poll_s=0.001)
    for k in range(5):
        s.push("text", k + 0.5, T)
    for _ in range(2000):
        if s.stats()["callback_errors"]:
            break
        threading.Event().wait(0.005)
    with pytest.raises(SessionError, match="on_result raised ZeroDivisionError"):
        for k in range(5, 500):
            s.push("text", k + 0.5, T)
            threading.Event().wait(0.001)
    received = s.stats()["received"]
    with pytest.raises(SessionError):
        s.close()
    assert s.stats()["callback_errors"] == 1 and s.stats()["received"] == received


def test_push_after_close_raises_before_counting(make_session):
    s, _ = make_session()
    s.push("text", 0.5, T)
    s.close()
    with pytest.raises(SessionClosed, match="push after close"):
        s.push("text", 1.5, T)
    st = s.stats()
    assert st["received"] == 1 and st["accounting_ok"]
    assert s.close() == []                          # idempotent


@pytest.mark.parametrize("modality", [None, 3, b"audio", ["audio"]])
def test_non_string_modality_raises_before_counting(make_session, modality):
    s, _ = make_session()
    with pytest.raises(TypeError, match="modality must be a str"):
        s.push(modality, 0.5, A)
    assert s.stats()["received"] == 0
    assert _finish(s)["received"] == 0


@pytest.mark.parametrize("t, x, reason", [
    (0.5, ["0.5"] * 24, "malformed_frame"),
    (0.5, [True] * 24, "malformed_frame"),
    (0.5, [True] + [0.0] * 23, "malformed_frame"),
    (0.5, [1 + 2j] * 24, "malformed_frame"),
    (0.5, np.ones(24, np.complex64), "malformed_frame"),
    (0.5, np.ones(24, bool), "malformed_frame"),
    (0.5, [None] * 24, "malformed_frame"),
    (0.5, np.array(["1"] * 24), "malformed_frame"),
    ("0.5", A, "bad_timestamp"),
    (True, A, "bad_timestamp"),
    (10**400, A, "bad_timestamp"),
    (0.5, [1e39] * 24, "overflow"),
    (0.5, np.full(24, 1e39), "overflow"),
    (0.5, [10**400] * 24, "overflow"),
    (0.5, np.full(24, np.inf), "nonfinite"),
    (0.5, np.ones((2, 12), np.float32), "wrong_dim"),
])
def test_only_real_numbers(make_session, t, x, reason):
    s, _ = make_session()
    refused = s.push("audio", t, x)
    assert not refused and refused.reason == reason
    assert s.push("audio", 0.6, [1] * 23 + [np.float64(0.5)])  # ints and numpy scalars are fine
    st = _finish(s)
    assert st["dropped"] == {reason: 1} and st["used"] == 1


def test_live_no_data_lines_with_reasons(make_session):
    now = [0.0]
    s, _ = make_session(live=True, grace_s=0.1, no_data=True, monotonic=lambda: now[0])
    s.clock()                                       # session starts at 0
    s.reason_hooks.append(lambda: ["device_lost"] if now[0] > 6 else [])
    s.push("text", 0.5, T)
    s.note("silence", 3.5)
    now[0] = 4.2
    first = s.advance()
    assert [(r.segment, r.status) for r in first] == [(0, "ok"), (1, "no_data"), (2, "no_data")]
    assert first[1].reasons == ["no_frames"]
    assert first[2].reasons == ["no_frames", "silence"] and first[2].score is None
    now[0] = 8.15
    later = s.advance()
    assert [r.segment for r in later] == [3, 4, 5, 6]
    assert later[-1].reasons == ["no_frames", "device_lost", "silence"]  # until data is back
    assert later[-1].to_dict()["status"] == "no_data"
    now[0] = 1000.0                                 # a long outage: the newest 8, rest counted
    assert len(s.advance()) == 8
    st = _finish(s)
    assert st["no_data"] == 2 + 4 + 8 and st["segments_dropped"]["backlog"] > 900


@pytest.mark.parametrize("cfg, needle", [
    ({"max_batch": 0}, "max_batch=0 must be a whole number >= 1"),
    ({"max_inflight": True}, "max_inflight=True"),
    ({"grace_s": -1.0}, "grace_s=-1.0 must be a number in [0, 3600]"),
    ({"buffer_s": float("nan")}, "buffer_s=nan"),
    ({"max_jump_s": float("inf")}, "max_jump_s=inf"),
    ({"on_callback_error": "ignore"}, "use 'continue' or 'stop'"),
    ({"window_s": 2.0, "hop_s": 0.0015}, "over 1000 windows"),
    ({"window_s": 2.0, "hop_s": 1e-4}, "must be seconds in [0.001, 3600]"),
])
def test_session_config_is_checked(make_session, cfg, needle):
    from hrlf.errors import InputError

    with pytest.raises(InputError) as e:
        make_session(**cfg)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_failing_reason_hook_is_a_reason_not_a_crash(make_session):
    now = [0.0]
    s, _ = make_session(live=True, no_data=True, monotonic=lambda: now[0])
    s.clock()
    s.reason_hooks.append(lambda: 1 / 0)
    now[0] = 5.0
    res = s.advance()
    assert res and all(r.reasons == ["no_frames", "reason_hook_failed"] for r in res)
    _finish(s)


@pytest.mark.parametrize("t", [1.9999999999999991, 2.0, 0.30000000000000004, 1.5 - 1e-12])
def test_frames_next_to_window_boundaries_are_used(make_session, t):
    """Found by the fuzzer: a frame a hair below a boundary was put past its window and
    stayed pending forever. Window membership is exact everywhere now."""
    s, _ = make_session(window_s=0.5, hop_s=0.5)
    assert s.push("text", t, T)
    (r,) = s.close()
    assert r.t_start <= t < r.t_end
    assert _finish(s)["used"] == 1


def test_frame_just_before_the_next_window_is_late_not_pending(make_session):
    s, _ = make_session(window_s=0.5, hop_s=0.5)
    s.push("text", 0.1, T)
    s.push("audio", 1.2, A)
    assert [r.segment for r in s.advance()] == [0]     # [0, 0.5); [0.5, 1) empty; next: [1, 1.5)
    assert s.push("vision", 1.0 - 1e-12, np.zeros(32, np.float32)).reason == "late"
    assert _finish(s)["dropped"] == {"late": 1}
