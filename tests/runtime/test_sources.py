import io

import numpy as np
import pytest

from hrlf.errors import InputError
from hrlf.runtime.sources import Status, open_source, scheme_of
from hrlf.runtime.stream_sources import LinesSource, RecordingSource, save_replay


def _drain(src):
    events, drops = [], []
    for _ in range(10000):
        r = src.read(0.5)
        events += r.events
        drops += r.drops
        if r.status == Status.EOS:
            return events, drops
    raise AssertionError("source never ended")


def test_scheme_and_unknown_source(small_spec):
    assert scheme_of("camera0") == "camera" and scheme_of("replay:x.npz") == "replay"
    assert scheme_of("rtsp://host/s") == "rtsp" and scheme_of("mic:2") == "mic"
    with pytest.raises(InputError, match="unknown kind \\(did you mean 'replay:x.npz'\\?\\)"):
        open_source("replai:x.npz", small_spec)


def test_stdin_lines_malformed_are_counted_not_fatal():
    text = "\n".join([
        '{"t": 0.5, "modality": "audio", "x": [1, 2]}',
        "{not json",
        '{"t": "soon", "modality": "audio", "x": [1]}',
        '[1, 2, 3]',
        "",
        '{"t": 0.6, "modality": "text", "x": [0.1]}',
    ])
    events, drops = _drain(LinesSource("stdin", io.StringIO(text)))
    assert [(e.t, e.modality) for e in events] == [(0.5, "audio"), (0.6, "text")]
    assert sorted(d.reason for d in drops) == ["malformed_event", "malformed_event", "malformed_json"]


def test_replay_npz_round_trip_in_time_order(tmp_path, recording, small_spec):
    p = tmp_path / "rec.npz"
    save_replay(str(p), recording, {"audio": "synthetic-v1-audio"})
    src = open_source(f"replay:{p}", small_spec)
    assert src.featurizers == {"audio": "synthetic-v1-audio"} and src.end_t == recording.duration_s
    events, _ = _drain(src)
    assert len(events) == sum(len(v) for v in recording.times.values())
    ts = [e.t for e in events]
    assert ts == sorted(ts)
    assert src.truth(0.0, 2.0) == pytest.approx(recording.label(np.array([0.0]), 2.0)[0])


def test_replay_errors(tmp_path, small_spec):
    with pytest.raises(InputError, match="no such file"):
        open_source(f"replay:{tmp_path}/missing.npz", small_spec)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"junk")
    with pytest.raises(InputError, match="not a readable replay file"):
        open_source(f"replay:{bad}", small_spec)
    empty = tmp_path / "empty.npz"
    np.savez(empty, foo=np.zeros(2))
    with pytest.raises(InputError, match="no '<modality>_t'"):
        open_source(f"replay:{empty}", small_spec)
    with pytest.raises(InputError, match="split 'dev' unknown"):
        open_source(f"replay:{empty}#dev", small_spec)


def test_replay_mosi_clip_per_second(mosi_path, small_spec):
    src = open_source(f"replay:{mosi_path}#test", small_spec)
    events, _ = _drain(src)
    assert len(events) == 3 * 752
    assert events[0].t == 0.5 and events[-1].t == 751.5
    assert src.featurizers["text"] == "mosi-bclstm-text-cnn"


def test_demo_outages_and_demo_needs_synthetic_model(small_spec):
    src = open_source("demo:1", small_spec, duration_s=26.0)
    events, _ = _drain(src)
    audio = [e.t for e in events if e.modality == "audio"]
    assert audio and not any(8.0 <= t < 14.0 for t in audio)
    assert not any(20.0 <= e.t < 24.0 for e in events if e.modality == "text")
    mosi_like = small_spec.replace(data={"source": "cmu-mosi-utterance", "sha256": "0" * 64})
    with pytest.raises(InputError, match="needs a model trained on synthetic data"):
        open_source("demo", mosi_like)
    with pytest.raises(InputError, match="whole number"):
        open_source("demo:x", small_spec)


def test_recording_source_chunks(recording):
    src = RecordingSource("x", recording, {}, chunk=50)
    first = src.read()
    assert first.status == Status.OK and len(first.events) == 50


def test_lines_survive_any_bytes():
    from hrlf.runtime.stream_sources import MAX_LINE

    data = b"\n".join([
        b'{"t": 0.5, "modality": "audio", "x": [1, 2]}',
        b"\xff\xfe\xfd",                                  # not UTF-8
        b'{"t": 1e999, "modality": "audio", "x": [1]}',  # inf: the session says bad_timestamp
        b'{"t": ' + b"1" * 400 + b', "modality": "audio", "x": [1]}',  # an int beyond float
        b"[" * 50000,                                     # nesting too deep for json
        b'{"t": 1, "modality": "a", "x": [' + b"1," * MAX_LINE + b"1]}",  # over 1 MiB
        b'{"t": 0.6, "modality": "text", "x": [0.1]}',
    ])
    events, drops = _drain(LinesSource("stdin", io.BytesIO(data)))
    assert [e.modality for e in events] == ["audio", "audio", "audio", "text"]
    assert sorted(d.reason for d in drops) == ["line_too_long", "malformed_bytes", "malformed_json"]


def test_lines_read_error_ends_the_stream_counted():
    class Failing(io.RawIOBase):
        def readable(self):
            return True

        def readline(self, size=-1):
            raise OSError("device gone")

    events, drops = _drain(LinesSource("stdin", Failing()))
    assert events == [] and [d.reason for d in drops] == ["read_error"]
