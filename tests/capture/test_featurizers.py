"""Featurizers: declared dims/rates, chunked == offline audio, face descriptors, text."""
from __future__ import annotations

import numpy as np
import pytest

from hrlf.runtime import featurizers as fz
from hrlf.runtime.capture import testmedia
from hrlf.errors import BackendUnavailable, InputError
from hrlf.runtime.featurizers import audio, text, vision

SR = 16000


def _chunked(feat, x, sizes):
    ts, fs, pos, i = [], [], 0, 0
    while pos < len(x):
        n = sizes[i % len(sizes)]
        t, f = feat.push(x[pos:pos + n])
        ts.append(t)
        fs.append(f)
        pos, i = pos + n, i + 1
    t, f = feat.flush()
    return np.concatenate(ts + [t]), np.concatenate(fs + [f])


def test_registry_states_dims_and_rates():
    assert {n: (f.modality, f.dim, f.rate_hz) for n, f in fz.FEATURIZERS.items()} == {
        "egemaps-lld-v02": ("audio", 25, 100.0), "logmel40-v1": ("audio", 40, 100.0),
        "haarface-v1": ("vision", 198, 10.0), "haarface-v2": ("vision", 198, 10.0),
        "vader-hash-v1": ("text", 64, 2.0)}
    ms = fz.modality_spec("haarface-v1", 2.0)
    assert (ms.dim, ms.frames, ms.featurizer) == (198, 20, "haarface-v1")
    with pytest.raises(InputError, match="did you mean 'logmel40-v1'"):
        fz.info("logmel40-v2")


def test_default_names_follow_spec_and_library():
    names = fz.default_names()
    assert names["audio"] == ("egemaps-lld-v02" if fz.have_opensmile() else "logmel40-v1")
    spec = type("S", (), {"features": {"audio": fz.modality_spec("logmel40-v1", 2.0),
                                       "text": fz.modality_spec("haarface-v1", 2.0)}})()
    got = fz.default_names(spec)
    assert got["audio"] == "logmel40-v1"       # the spec's choice wins
    assert got["text"] == "vader-hash-v1"      # a featurizer of another modality is ignored


def test_logmel_chunked_equals_offline_exactly():
    x = testmedia.tone(2.3, label=1.0)
    feat = fz.make_audio("logmel40-v1", SR, t0_s=5.0)
    t_off, f_off = feat.offline(x)
    t, f = _chunked(feat, x, [1, 37, 160, 999, 4000, 7])
    assert f_off.shape == (1 + (len(x) - 400) // 160, 40)
    np.testing.assert_array_equal(t, t_off)
    np.testing.assert_allclose(f, f_off, rtol=0, atol=1e-5)
    assert t[0] == 5.0 and np.allclose(np.diff(t), 0.01)


def test_logmel_tracks_loudness():
    quiet = fz.make_audio("logmel40-v1", SR).offline(0.01 * testmedia.tone(1.0))[1]
    loud = fz.make_audio("logmel40-v1", SR).offline(testmedia.tone(1.0))[1]
    assert loud.mean() > quiet.mean() + 5.0  # log power: 40 dB louder is +9.2


@pytest.mark.skipif(not fz.have_opensmile(), reason="opensmile is not installed")
def test_egemaps_chunked_matches_offline_within_tolerance():
    x = testmedia.tone(4.0, label=-1.0)
    x[16000:24000] *= 0.01  # a near-silent stretch: voicing stops and restarts
    feat = fz.make_audio("egemaps-lld-v02", SR)
    t_off, f_off = feat.offline(x)
    t, f = _chunked(feat, x, [1234, 4000, 333, 8000])
    assert f.shape == f_off.shape and f.shape[1] == 25
    np.testing.assert_allclose(t, t_off, atol=1e-9)
    stateless = [i for i in range(25) if i not in (11, 12)]  # jitterLocal, shimmerLocaldB
    np.testing.assert_allclose(f[:, stateless], f_off[:, stateless], rtol=1e-4, atol=1e-4)
    for i in (11, 12):  # carry pitch-period history beyond the 1 s context
        assert np.abs(f[:, i] - f_off[:, i]).mean() < 0.25 * (f_off[:, i].std() + 1e-6)


@pytest.mark.skipif(not fz.have_opensmile(), reason="opensmile is not installed")
def test_egemaps_sees_pitch_and_loudness_follow_label():
    lo = fz.make_audio("egemaps-lld-v02", SR).offline(testmedia.tone(2.0, label=-3.0))[1]
    hi = fz.make_audio("egemaps-lld-v02", SR).offline(testmedia.tone(2.0, label=3.0))[1]
    assert hi[:, 10].mean() > lo[:, 10].mean() + 3.0   # F0 in semitones: 85 Hz vs 235 Hz
    assert hi[:, 0].mean() > lo[:, 0].mean()           # loudness


def test_reset_starts_a_new_segment_and_mono_conversion():
    feat = fz.make_audio("logmel40-v1", SR)
    feat.push(np.zeros(1600, np.float32))
    feat.reset(t0_s=10.0)
    t, _ = feat.push((np.ones((800, 2)) * 1000).astype(np.int16))  # stereo int16
    assert t[0] == 10.0 and feat.next_t > 10.0
    x = audio.as_mono_float(np.array([[32767, -32768]], np.int16))
    assert x.shape == (1,) and abs(x[0]) < 1e-3


def test_rate_gate_samples_30fps_to_10hz():
    gate = vision.RateGate(10.0)
    kept = [i for i in range(90) if gate(i / 30.0)]
    assert kept == list(range(0, 90, 3))


def test_haar_describes_a_drawn_face_and_drops_an_empty_frame(haar):
    frames = list(testmedia.video_frames(0.2, 10, size=(640, 480), label=2.0))
    x = haar(frames[0])
    assert x is not None and x.shape == (198,) and x.dtype == np.float32
    assert np.isfinite(x).all()
    assert abs(x[0] - 0.5) < 0.1 and abs(x[1] - 0.5) < 0.1   # box centre ~ frame centre
    assert 0.2 < x[3] < 0.7                                 # face height vs frame height
    assert abs(np.linalg.norm(x[70:]) - 1.0) < 1e-3        # HOG block is L2-normed
    empty = next(testmedia.video_frames(0.1, 10, size=(640, 480), face=False))
    assert haar(empty) is None


def test_haar_descriptor_changes_with_expression(haar):
    smile = haar(next(testmedia.video_frames(0.1, 10, label=3.0)))
    frown = haar(next(testmedia.video_frames(0.1, 10, label=-3.0)))
    assert smile is not None and frown is not None
    assert np.abs(smile[6:] - frown[6:]).max() > 0.1


def test_missing_cascade_classifier_is_one_clear_line(monkeypatch):
    fake_cv2 = type("cv2", (), {"__version__": "5.0.0"})()
    monkeypatch.setattr(vision, "import_cv2", lambda: fake_cv2)
    with pytest.raises(BackendUnavailable) as e:
        vision.HaarFaceFeaturizer()
    msg = str(e.value)
    assert "\n" not in msg and "CascadeClassifier" in msg and "<5" in msg


def test_vader_hash_polarity_and_determinism():
    f = fz.make_text()
    pos, neg = f("I love this, it is wonderful"), f("this is terrible and sad")
    assert pos.shape == (64,) and pos[3] > 0.5 and neg[3] < -0.5   # VADER compound
    np.testing.assert_array_equal(pos, f("I love this, it is wonderful"))
    assert abs(np.linalg.norm(pos[4:]) - 1.0) < 1e-5
    assert not np.allclose(pos[4:], neg[4:])
    np.testing.assert_allclose(text.cue_times(1.0, 2.2), [1.0, 1.5, 2.0])
    np.testing.assert_allclose(text.cue_times(3.0, 3.0), [3.0])


def test_tracked_face_matches_haar_on_photographs(haar):
    """haarface-v2 (160 px detection + tracking) finds the faces haarface-v1 finds in
    photographs moving over photo backgrounds, at nearly the same place."""
    realmedia = pytest.importorskip("hrlf.runtime.capture.realmedia")
    if realmedia.unavailable_reason():
        pytest.skip(realmedia.unavailable_reason())
    rng = np.random.default_rng(0)
    faces = realmedia.face_photos()
    v2 = fz.make_vision("haarface-v2")
    both = only_v1 = only_v2 = 0
    for i, fi in enumerate((0, 5, 20)):
        bg = realmedia.background(realmedia.BACKGROUNDS[i], rng, size=(640, 480))
        v2.reset()
        for frame in realmedia.video_frames(faces[fi], bg, 2.0, rng):
            a, b = haar(frame), v2(frame)
            both += a is not None and b is not None
            only_v1 += a is not None and b is None
            only_v2 += a is None and b is not None
            if a is not None and b is not None:
                assert np.abs(a[:2] - b[:2]).max() < 0.06   # same face centre (frame fraction)
    assert both >= 30 and only_v1 <= 3, (both, only_v1, only_v2)  # v2 may also keep a track
