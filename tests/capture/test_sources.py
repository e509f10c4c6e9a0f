"""Sources: no-device errors, device loss and reconnects (fakes), real media files."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from hrlf.runtime import featurizers as fz
from hrlf.runtime.capture import sources as cap_sources
from hrlf.runtime.capture import testmedia
from hrlf.errors import InputError
from hrlf.runtime.sources import Status, open_source

cv2 = pytest.importorskip("cv2")
soundfile = pytest.importorskip("soundfile")


def _drain(src, max_reads=10_000):
    events, drops = [], {}
    for _ in range(max_reads):
        r = src.read(0.02)
        events += r.events
        for d in r.drops:
            drops[d.reason] = drops.get(d.reason, 0) + d.count
        if r.status == Status.EOS:
            return events, drops
    raise AssertionError("no EOS")


def _no_video_devices(monkeypatch, present: bool):
    real = os.path.exists
    monkeypatch.setattr(cap_sources.os.path, "exists",
                        lambda p: present if str(p).startswith("/dev/video") else real(p))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks /dev/video*")
def test_camera_without_device_is_one_line(monkeypatch):
    _no_video_devices(monkeypatch, present=False)
    with pytest.raises(InputError) as e:
        open_source("camera0", None)
    msg = str(e.value)
    assert msg.startswith("camera0: no video device found (/dev/video0") and "\n" not in msg
    with pytest.raises(InputError, match="^camera2: no video device found"):
        open_source("camera2", None)


def test_camera_that_opencv_cannot_open(monkeypatch):
    _no_video_devices(monkeypatch, present=True)
    closed = type("Closed", (), {"isOpened": lambda s: False, "release": lambda s: None})
    monkeypatch.setattr(cv2, "VideoCapture", lambda *a, **k: closed())
    with pytest.raises(InputError, match="camera0: no video device found .OpenCV cannot open"):
        open_source("camera0", None)
    with pytest.raises(InputError, match=r"^rtsp://cam\.local/live: cannot open the stream"):
        open_source("rtsp://cam.local/live", None)


def _fake_sounddevice(monkeypatch, fakes, blocks_per_stream):
    opened = []

    class SD:
        @staticmethod
        def query_devices(device=None, kind=None):
            return {"name": "fake", "default_samplerate": 16000.0}

        @staticmethod
        def check_input_settings(**kw):
            return None

        @staticmethod
        def InputStream(callback=None, **kw):
            i = min(len(opened), len(blocks_per_stream) - 1)
            s = fakes.Stream(callback, blocks_per_stream[i])
            opened.append(s)
            return s

    monkeypatch.setitem(sys.modules, "sounddevice", SD)
    return opened


def test_camera_lost_midstream_goes_absent_and_reconnects(monkeypatch, stub_face, fakes):
    _no_video_devices(monkeypatch, present=True)
    closed = type("Closed", (), {"isOpened": lambda s: False, "release": lambda s: None})
    devices = [fakes.Capture(60, period_s=0.005), closed(), fakes.Capture(10**6, period_s=0.005)]
    monkeypatch.setattr(cv2, "VideoCapture", lambda *a, **k: devices.pop(0))
    src = open_source("camera0", None, audio=False, backoff_s=(0.01,))
    try:
        assert src.live and src.featurizers == {"vision": "haarface-v2"}
        seen, drops, statuses = [], {}, set()
        assert fakes.wait_for(lambda: _collect(src, seen, drops, statuses)
                              and src.stats()["reconnects"] >= 1 and len(seen) >= 8, 15.0)
        st = src.stats()
        assert drops.get("device_lost") == 1 and Status.ERROR in statuses
        assert st["reconnects"] == 1 and st["reconnect_attempts"] == 2
        assert st["tracks"]["vision"]["captured"] >= 60
        times = [e.t for e in seen]
        assert times == sorted(times)
        gaps = np.diff(times)
        assert gaps.max() > 0.009  # the outage: no frames while the camera was gone
    finally:
        src.close()


def _collect(src, seen, drops, statuses):
    r = src.read(0.05)
    statuses.add(r.status)
    seen += r.events
    for d in r.drops:
        drops[d.reason] = drops.get(d.reason, 0) + d.count
    return True


def test_mic_lost_midstream_reconnects_and_restamps(monkeypatch, fakes):
    opened = _fake_sounddevice(monkeypatch, fakes, [5, 10**6])
    # plumbing only: no voice gate (a model without one) and no speech recognition
    spec = type("S", (), {"features": {"audio": fz.modality_spec("logmel40-v1", 2.0, vad=None)}})()
    src = open_source("mic", spec, backoff_s=(0.01,), asr=False)
    try:
        assert src.featurizers == {"audio": "logmel40-v1"}
        assert 0.2 < src.latency_s < 1.0  # audio frames trail their timestamps (grace hint)
        seen, drops, statuses = [], {}, set()
        assert fakes.wait_for(lambda: _collect(src, seen, drops, statuses)
                              and src.stats()["reconnects"] >= 1 and len(seen) > 200, 15.0)
        assert drops.get("device_lost") == 1 and len(opened) == 2
        assert all(e.modality == "audio" and e.x.shape == (40,) for e in seen)
        first = [e.t for e in seen[:45]]       # 5 blocks of 100 ms -> ~48 frames, one segment
        assert np.allclose(np.diff(first), 0.01)
    finally:
        src.close()
    assert opened[-1].closed


def test_camera_default_adds_the_microphone_where_one_exists(monkeypatch, stub_face, fakes):
    _no_video_devices(monkeypatch, present=True)
    monkeypatch.setattr(cv2, "VideoCapture", lambda *a, **k: fakes.Capture(10**6))
    _fake_sounddevice(monkeypatch, fakes, [10**6])
    src = open_source("camera0", None, asr=False)
    try:
        assert set(src.featurizers) == {"vision", "audio"}
        seen = []
        assert fakes.wait_for(lambda: _collect(src, seen, {}, set())
                              and {e.modality for e in seen} == {"vision", "audio"})
    finally:
        src.close()
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails: no PortAudio
    src = open_source("camera0", None)
    try:
        assert set(src.featurizers) == {"vision"}
        absent = src.stats()["absent"]["audio"]
        assert absent["reason"] == "unavailable" and "no microphone support" in absent["detail"]
    finally:
        src.close()


def test_mic_without_portaudio_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(InputError, match="^mic: no microphone support"):
        open_source("mic", None)
    with pytest.raises(InputError, match="mic:x: not a microphone name"):
        open_source("mic:x", None)


def test_file_source_reads_video_audio_and_transcript_in_time_order(tmp_path, face_featurizer):
    video = testmedia.write_clip(str(tmp_path), "clip", label=2.0, seconds=3.0)
    src = open_source(f"file:{video}", None)
    assert not src.live
    assert src.featurizers == {"vision": "haarface-v2", "audio": fz.default_names()["audio"],
                               "text": "vader-hash-v1"}
    events, drops = _drain(src)
    times = [e.t for e in events]
    assert times == sorted(times) and drops == {}
    by = {m: [e for e in events if e.modality == m] for m in ("text", "audio", "vision")}
    assert len(by["vision"]) == 30                    # 3 s at 10 Hz from 15 fps video
    assert len(by["text"]) == 6                       # two 1.4 s cues at 2 Hz
    assert by["text"][0].x[3] > 0.5                   # positive words
    wav, sr = soundfile.read(str(tmp_path / "clip.wav"), dtype="float32")
    _, f_off = fz.make_audio(src.featurizers["audio"], sr).offline(wav)  # what training sees
    got = np.array([e.x for e in by["audio"]])
    assert got.shape == f_off.shape
    keep = [i for i in range(got.shape[1]) if not (got.shape[1] == 25 and i in (11, 12))]
    np.testing.assert_allclose(got[:, keep], f_off[:, keep], atol=1e-3, rtol=1e-3)
    st = src.stats()
    assert st["tracks"]["vision"]["decoded"] == 45 and st["absent"] == {}
    src.close()


def test_file_without_face_drops_frames_with_a_reason(tmp_path, haar):
    video = testmedia.write_clip(str(tmp_path), "empty", label=0.0, seconds=2.0, face=False,
                                 transcript=False)
    src = open_source(f"file:{video}", None)
    events, drops = _drain(src)
    assert not [e for e in events if e.modality == "vision"]
    assert drops == {"no_face": 20}
    absent = src.stats()["absent"]            # every absent modality, with its reason
    assert absent["vision"]["reason"] == "no_face"
    assert src.reasons(0.5, 1.5)["vision"] == "no_face"
    src.close()


def test_file_without_audio_track_reader_says_why(tmp_path, monkeypatch, face_featurizer):
    video = testmedia.write_video(str(tmp_path / "silent.avi"), 1.0)
    monkeypatch.setenv("PATH", "")  # no ffmpeg binary: PyAV reads the container itself
    src = open_source(f"file:{video}", None)
    assert set(src.featurizers) == {"vision"}
    absent = src.stats()["absent"]
    assert absent["audio"] == {"reason": "unavailable", "detail": "the file has no audio track"}
    assert absent["text"]["reason"] == "no_transcript"
    events, drops = _drain(src)
    assert drops.get("modality_unavailable") == 1 and events


def test_audio_file_with_jsonl_transcript(tmp_path):
    wav = testmedia.write_wav(str(tmp_path / "talk.wav"), testmedia.tone(1.5))
    (tmp_path / "talk.jsonl").write_text('{"text": "awful", "start": 0.2, "end": 0.9}\n')
    src = open_source(f"file:{wav}", None)
    assert set(src.featurizers) == {"audio", "text"}
    events, _ = _drain(src)
    text = [e for e in events if e.modality == "text"]
    assert [round(e.t, 3) for e in text] == [0.2, 0.7] and text[0].x[3] < 0
    with pytest.raises(InputError, match="no such file"):
        open_source(f"file:{tmp_path / 'nope.avi'}", None)


def test_runtime_refuses_a_model_trained_on_other_featurizers(tmp_path):
    runner = pytest.importorskip("hrlf.runtime.runner", reason="runtime runner not written yet")
    from hrlf.runtime.datasets import Dataset

    wav = testmedia.write_wav(str(tmp_path / "a.wav"), testmedia.tone(0.5))
    feats = {m: fz.modality_spec(n, 2.0) for m, n in
             {"text": "vader-hash-v1", "audio": "logmel40-v1", "vision": "haarface-v1"}.items()}
    norm = {m: {"mean": [0.0] * f.dim, "std": [1.0] * f.dim} for m, f in feats.items()}
    spec = Dataset("x", {}, feats, 2.0, 1.0, {"source": "t", "sha256": "0" * 64}).spec(norm)
    src = open_source(f"file:{wav}", None)  # opensmile present: egemaps, not the spec's logmel
    if src.featurizers["audio"] == "logmel40-v1":
        pytest.skip("opensmile missing: the source already matches the spec")
    with pytest.raises(Exception, match="featurizer"):
        runner.check_featurizers(src, spec)
    assert open_source(f"file:{wav}", spec).featurizers["audio"] == "logmel40-v1"
