"""The words made visible, call-center input and training parity, as users run them:
``hrlf-run --words`` on a stereo 8 kHz mu-law call (per channel), both channels through one
``Hub``, room noise that must stay silence, and ``hrlf-train`` recording its recognizer."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from hrlf.runtime.capture import asr_engines, speechsets as S

AGENT = "Thank you for calling, I am happy to help you today."
CUSTOMER = "This is terrible, I hate waiting and the service is awful."


def _asr() -> str:
    """The recognizer these tests use: whisper where it runs, else pocketsphinx."""
    c = asr_engines.choose("auto")
    if c.engine is None:
        pytest.skip(f"no speech recognizer here ({c.why})")
    return c.engine


def _run(model, stream, *extra, timeout=300):
    p = subprocess.run([os.path.join(os.path.dirname(sys.executable), "hrlf-run"), model,
                        "--stream", stream, "--stats-every", "0", *extra],
                       capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
    summary = json.loads(p.stderr.strip().splitlines()[-1])["summary"] if p.returncode == 0 \
        else None
    return p, lines, summary


@pytest.fixture(scope="module")
def call_wav(tmp_path_factory):
    """A stereo 8 kHz mu-law call: the agent on channel 0 (1 s in), the customer on
    channel 1 (answering at 5 s), each silent while the other talks."""
    import soundfile

    from hrlf.runtime.capture import realmedia

    if realmedia.unavailable_reason():
        pytest.skip(realmedia.unavailable_reason())
    a, c = (S.telephone(realmedia.speak(t, "en-us", 150)) for t in (AGENT, CUSTOMER))
    n = 8000 * 12
    x = np.zeros((n, 2), np.float32)
    x[8000:8000 + len(a), 0] = a
    x[40000:40000 + len(c), 1] = c
    path = str(tmp_path_factory.mktemp("call") / "call.wav")
    soundfile.write(path, x, 8000, subtype="ULAW")
    return path


def test_call_channels_with_words(call_wav, capture_model):
    engine = _asr()
    p, lines, summary = _run(capture_model, f"file:{call_wav}#channel=1", "--words",
                             "--asr", engine)
    assert p.returncode == 0, p.stderr
    assert lines and all("words" in r for r in lines)
    heard = " ".join(r["words"] for r in lines).lower()
    src = summary["source"]
    said = " ".join(u["text"] for u in src["transcript"]["utterances"]).lower()
    assert src["asr"]["engine"] == engine and src["transcript"]["left_out"] == 0
    if engine == "whisper":  # PocketSphinx's words on a phone line are too rough to name
        assert "terrible" in said and "hate" in said and "happy" not in said, said
        assert "terrible" in heard
    u = src["transcript"]["utterances"][0]
    assert 4.5 <= u["t0"] < u["t1"] <= 12.0
    # without --words nothing is shown; the engine is still reported
    p, lines, summary = _run(capture_model, f"file:{call_wav}#channel=0", "--asr", engine)
    assert p.returncode == 0 and not any("words" in r for r in lines)
    assert "transcript" not in summary["source"] and summary["source"]["asr"]["engine"] == engine
    assert summary["source"]["tracks"]["audio"]["words"] >= 5
    p, _, _ = _run(capture_model, f"file:{call_wav}#channel=2")
    err = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 1 and len(err) == 1 and "has 2 channels (0..1)" in err[0], p.stderr


def test_both_channels_through_one_hub(call_wav, capture_model):
    """Agent and customer as two streams of one Hub (one model, batched), via the API."""
    from hrlf.runtime.hub import Hub, HubConfig
    from hrlf.runtime.session_config import SessionConfig
    from hrlf.runtime.sources import Status, open_source

    engine = _asr()
    hub = Hub.load(capture_model, config=HubConfig(stream=SessionConfig(live=False))).start()
    heard, results = {}, {}
    for ch, who in enumerate(("agent", "customer")):
        src = open_source(f"file:{call_wav}#channel={ch}", hub.spec, asr=engine, words=True)
        results[who] = []
        stream = hub.add_stream(who, on_result=results[who].append)
        while (r := src.read(0.0)).status != Status.EOS:  # as README shows it
            for e in r.events:
                stream.push(e.modality, e.t, e.x)
        assert stream.close() == []  # the callback took every result (exactly once)
        heard[who] = " ".join(u["text"] for u in src.transcript()["utterances"]).lower()
        src.close()
    st = hub.close().stats
    assert st["accounting_ok"] and all(results.values())
    assert any("text" in r.modalities for r in results["customer"])
    if engine == "whisper":
        assert "happy" in heard["agent"] and "hate" in heard["customer"]
        assert "hate" not in heard["agent"] and "happy" not in heard["customer"]


@pytest.mark.parametrize("rate", [16000, 8000])
def test_room_noise_stays_silence(rate, tmp_path, capture_model):
    """White noise at -54 dBFS (a quiet room, a phone line's hiss): no audio frame, audio
    absent with reason silence, nothing recognized."""
    import soundfile

    _asr()
    x = np.random.default_rng(rate).standard_normal(12 * rate) * 10 ** (-54 / 20)
    path = str(tmp_path / "room.wav")
    soundfile.write(path, x.astype(np.float32), rate, subtype="PCM_16")
    p, lines, summary = _run(capture_model, f"file:{path}", "--words")
    assert p.returncode == 0, p.stderr
    src = summary["source"]
    assert src["events_by_modality"].get("audio", 0) == 0, src
    assert src["absent"]["audio"]["reason"] == "silence"
    assert src["transcript"]["utterances"] == [] and src["tracks"]["audio"]["words"] == 0
    assert summary["source_drops"]["silence"] > 1000


def test_training_records_its_recognizer(tmp_path, face_featurizer):
    """Clips without a transcript are recognized at training time; spec.json says with
    what (and a clip list whose clips all have transcripts records nothing)."""
    from hrlf.runtime.capture import testmedia
    from hrlf.train import clips

    pytest.importorskip("cv2")
    engine = _asr()
    rows = []
    for i, lab in enumerate((-2.0, 1.0, 2.0, -1.0)):
        testmedia.write_clip(str(tmp_path), f"c{i}", lab, seconds=2.5, fps=10,
                             transcript=(i != 0))
        rows.append(f"c{i}.avi,,{lab},{('train', 'train', 'valid', 'test')[i]}")
    csv = tmp_path / "clips.csv"
    csv.write_text("media,transcript,label,split\n" + "\n".join(rows) + "\n")
    ds = clips.load_clips(str(csv), asr=engine)
    asr = dict(ds.features["text"].asr)
    assert asr["engine"] == engine and asr["clips"] == 1 and asr["model"]
    csv.write_text("media,transcript,label,split\n" + "\n".join(
        r.replace(",,", ",typed words,") for r in rows) + "\n")
    assert clips.load_clips(str(csv), asr=engine).features["text"].asr is None
