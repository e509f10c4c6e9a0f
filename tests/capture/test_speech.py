"""Voice activity, speech recognition and text from words: real espeak-ng speech and
real silence through webrtcvad and PocketSphinx; the VAD setting in spec.json."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from hrlf.runtime import featurizers as fz
from hrlf.runtime.capture import asr, vad
from hrlf.runtime.capture.audiochain import AudioChain
from hrlf.errors import SpecError
from hrlf.runtime.featurizers.text import TextFeed
from hrlf.runtime.spec import ModelSpec

SR = 16000
WORDS = "I love this movie, it is wonderful. The acting was great."


@pytest.fixture(scope="module")
def speech():
    """1 s silence + espeak-ng speech + 2 s silence at 16 kHz (float32), speech span."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    sf = pytest.importorskip("soundfile")
    import io

    wav = subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "--stdout", WORDS],
                         check=True, capture_output=True).stdout
    x, sr = sf.read(io.BytesIO(wav), dtype="float32")
    n = int(len(x) * SR / sr)
    x = np.interp(np.arange(n) * sr / SR, np.arange(len(x)), x).astype(np.float32)
    return np.concatenate([np.zeros(SR, np.float32), x, np.zeros(2 * SR, np.float32)]), \
        (1.0, 1.0 + n / SR)


@pytest.mark.skipif(vad.unavailable_reason() is not None or asr.unavailable_reason() is not None,
                    reason=f"{vad.unavailable_reason() or asr.unavailable_reason()}")
def test_chain_keeps_voiced_audio_and_recognizes_words(speech):
    x, (a, b) = speech
    ch = AudioChain(fz.make_audio("logmel40-v1", SR), SR, vad=vad.DEFAULT_VAD, asr=True,
                    text_featurizer=fz.make_text())
    events, silent = [], 0
    for i in range(0, len(x), 800):              # 50 ms blocks, as a microphone delivers
        e, d = ch.push(x[i:i + 800])
        events += e
        silent += sum(k.count for k in d if k.reason == "silence")
    e, d = ch.flush()
    events += e
    silent += sum(k.count for k in d if k.reason == "silence")
    audio = [ev.t for ev in events if ev.modality == "audio"]
    text = [ev for ev in events if ev.modality == "text"]
    assert a - 0.15 <= min(audio) and max(audio) <= b + 0.35   # speech only (+ hangover)
    assert silent > 150                                         # the 3 s of silence
    assert abs(len(audio) + silent - len(x) / 160) < 5          # every frame kept or counted
    assert len(text) >= 4 and all(a - 0.1 <= ev.t <= b + 0.5 for ev in text)
    assert text[-1].x[3] > 0.3                                  # "love", "wonderful", "great"
    assert ch.stats()["words"] >= 5
    h = ch.health.reasons(0.0, 0.9)
    assert h == {"audio": "silence", "text": "no_speech"}
    assert ch.health.reasons(b + 0.6, b + 1.9) == {"audio": "silence", "text": "no_speech"}


@pytest.mark.skipif(vad.unavailable_reason() is not None, reason=f"{vad.unavailable_reason()}")
def test_gate_is_the_same_chunked_and_offline(speech):
    x, _ = speech

    def run(block):
        ch = AudioChain(fz.make_audio("logmel40-v1", SR), SR, vad=vad.DEFAULT_VAD)
        out = []
        for i in range(0, len(x), block):
            out += ch.push(x[i:i + block])[0]
        return [e.t for e in out + ch.flush()[0]]

    assert run(800) == run(SR * 30)


def test_text_feed_words_and_utterances():
    got = []
    feed = TextFeed(lambda m, t, x: got.append((m, t, x)))
    assert feed.utterance("I love it", 1.0, 2.2) == 3            # 1.0, 1.5, 2.0
    feed.word("great", 3.1, 3.4)
    feed.word("fun", 3.6, 4.1)
    feed.end(4.6)
    ts = [round(t, 2) for _, t, _ in got]
    assert ts == [1.0, 1.5, 2.0, 3.5, 4.0, 4.5] and {m for m, _, _ in got} == {"text"}
    f = fz.make_text()
    # slot 3.5 is pushed with "fun" (it ends at 4.1): it carries the words known then, as a
    # transcript cue carries its whole sentence
    np.testing.assert_array_equal(got[3][2], f("great fun"))
    np.testing.assert_array_equal(got[4][2], f("great fun"))
    feed.word("sad", 6.0, 6.6)                                   # a new utterance
    feed.end(7.0)
    assert [round(t, 2) for _, t, _ in got[6:]] == [6.5] and np.array_equal(got[6][2], f("sad"))


def test_spec_vad_field_is_optional_and_validated(tmp_path):
    from hrlf.runtime.assets import demo_model_dir

    old = ModelSpec.load(demo_model_dir())                       # written before the field
    assert old.features["audio"].vad is None and "vad" not in old.to_json()
    assert vad.setting_of(old) is None                            # old models: no gate
    d = json.loads(old.to_json())
    d["features"]["audio"]["vad"] = vad.DEFAULT_VAD.to_dict()
    new = ModelSpec.from_dict(d)
    assert vad.setting_of(new) == vad.DEFAULT_VAD
    assert json.loads(new.to_json())["features"]["audio"]["vad"]["aggressiveness"] == 2
    d["features"]["audio"]["vad"] = {"name": "webrtcvad-v1", "aggressiveness": 7}
    with pytest.raises(SpecError, match="out of range"):
        vad.setting_of(ModelSpec.from_dict(d))
    d["features"]["vision"]["vad"] = vad.DEFAULT_VAD.to_dict()
    with pytest.raises(SpecError, match="features.vision.vad"):
        ModelSpec.from_dict(d)


def test_mp4_with_aac_speech_needs_no_ffmpeg_binary(speech, tmp_path, monkeypatch, haar):
    """H.264 + AAC in one .mp4, no sidecar, no transcript, no ffmpeg on PATH: PyAV reads
    both tracks and speech recognition supplies the text."""
    av = pytest.importorskip("av")
    realmedia = pytest.importorskip("hrlf.runtime.capture.realmedia")
    if realmedia.unavailable_reason() or asr.unavailable_reason():
        pytest.skip(realmedia.unavailable_reason() or asr.unavailable_reason())
    x, (a, b) = speech
    rng = np.random.default_rng(0)
    bg = realmedia.background("coffee", rng)
    path = str(tmp_path / "talk.mp4")
    with av.open(path, "w") as c:
        vs = c.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 320, 240, "yuv420p"
        aus = c.add_stream("aac", rate=SR)
        aus.layout = "mono"
        for img in realmedia.video_frames(realmedia.face_photos()[0], bg, len(x) / SR, rng):
            c.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="bgr24")))
        c.mux(vs.encode())
        for i in range(0, len(x), 1024):
            fr = av.AudioFrame.from_ndarray(x[None, i:i + 1024], format="flt", layout="mono")
            fr.sample_rate = SR
            c.mux(aus.encode(fr))
        c.mux(aus.encode())
    monkeypatch.setenv("PATH", "")
    from hrlf.runtime.sources import Status, open_source

    src = open_source(f"file:{path}", None)
    assert set(src.featurizers) == {"vision", "audio", "text"}
    by, drops = {}, {}
    while True:
        r = src.read(0.0)
        for e in r.events:
            by.setdefault(e.modality, []).append(e.t)
        for d in r.drops:
            drops[d.reason] = drops.get(d.reason, 0) + d.count
        if r.status == Status.EOS:
            break
    st = src.stats()
    src.close()
    assert len(by["vision"]) >= 0.8 * 10 * len(x) / SR           # faces at 10 Hz
    assert a - 0.2 <= min(by["audio"]) and max(by["audio"]) <= b + 0.4 and drops["silence"] > 100
    assert len(by["text"]) >= 4 and st["tracks"]["audio"]["words"] >= 5
    assert st["absent"] == {}


def test_text_feed_through_a_session(capture_model):
    """An embedder's own recognizer: words pushed through Session.push become the text
    modality of the model's windows, like the built-in recognizer's."""
    from hrlf.runtime.session import Session

    session = Session.load(capture_model)
    feed = TextFeed(session.push)
    feed.utterance("I love this, it is wonderful", 0.2, 1.8)
    for i, w in enumerate("the acting was terrible".split()):
        feed.word(w, 2.0 + 0.3 * i, 2.25 + 0.3 * i)
    feed.end(3.5)
    results = session.close()
    assert results and all(r.modalities == ["text"] for r in results)
    assert sum(r.frames["text"] for r in results) >= feed.sent
    st = session.stats()
    assert st["received"] == feed.sent and st["accounting_ok"]
