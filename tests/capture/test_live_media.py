"""Live sources on real servers: a PulseAudio null sink as a virtual microphone playing
espeak-ng speech, and GStreamer's RTSP server (H.264 video of a face photograph + AAC
speech) on loopback, frozen with SIGSTOP, killed and restarted mid-stream.

Each test skips with the reason where a Debian package it needs is missing (see
.ci/apt-packages). Both run ``hrlf-run`` as a subprocess, as a user would.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SPEECH = ("I love this movie, it is wonderful. The acting was great and I am very happy. "
          "What a beautiful day, everything went perfectly.")


def _missing(*tools) -> str | None:
    for t in tools:
        if shutil.which(t) is None:
            return f"{t} is not installed (apt-get install the packages in .ci/apt-packages)"
    return None


def _speech_wav(path: str, text: str = SPEECH, repeat: int = 1) -> str:
    if _missing("espeak-ng"):
        pytest.skip(_missing("espeak-ng"))
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", path, " ".join([text] * repeat)],
                   check=True, capture_output=True)
    return path


def _run(model, stream, seconds, env=None, extra=()):
    cmd = [os.path.join(os.path.dirname(sys.executable), "hrlf-run"), model, "--stream", stream,
           "--duration", str(seconds), "--stats-every", "0", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def _finish(proc, timeout_s):
    out, err = proc.communicate(timeout=timeout_s)
    lines = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    summary = json.loads(err.strip().splitlines()[-1])["summary"]
    return proc.returncode, lines, summary, err


# ---- virtual microphone ------------------------------------------------------------------
@pytest.fixture
def virtual_mic(tmp_path):
    """PulseAudio with a null sink ``hrlfmic`` whose monitor is the default input."""
    why = _missing("pulseaudio", "pactl", "paplay")
    if why:
        pytest.skip(why)
    from hrlf.runtime.capture.sources import import_sounddevice
    from hrlf.errors import InputError

    env = {"XDG_RUNTIME_DIR": str(tmp_path / "xdg"), "PULSE_SERVER": ""}
    os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
    env = {k: v for k, v in env.items() if v}
    full = {**os.environ, **env}
    subprocess.run(["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "-n",
                    "--load=module-native-protocol-unix",
                    "--load=module-null-sink sink_name=hrlfmic"], env=full, check=True,
                   capture_output=True)
    try:
        subprocess.run(["pactl", "set-default-source", "hrlfmic.monitor"], env=full, check=True,
                       capture_output=True)
        try:
            import_sounddevice()
        except InputError as e:
            pytest.skip(str(e))
        yield env
    finally:
        subprocess.run(["pulseaudio", "--kill"], env=full, capture_output=True)


class LiveRun:
    """``hrlf-run`` on a live source for as long as a test needs: its output read as it
    comes, stopped with SIGINT (it flushes its last windows and exits 0)."""

    def __init__(self, model, stream, env, extra=()):
        self.proc = _run(model, stream, 600, env=env, extra=extra)
        self.out, self.err = [], []
        threading.Thread(target=lambda: [self.out.append(ln) for ln in self.proc.stdout],
                         daemon=True).start()
        threading.Thread(target=lambda: self.err.append(self.proc.stderr.read()),
                         daemon=True).start()

    def lines(self) -> list[dict]:
        return [json.loads(ln) for ln in list(self.out) if ln.startswith("{")]

    def wait_for(self, cond, timeout_s: float) -> bool:
        """Poll ``cond()`` until true, the run ended or ``timeout_s`` passed (a bound, not
        a timing check: a loaded machine only takes longer)."""
        end = time.monotonic() + timeout_s
        while not cond() and self.proc.poll() is None and time.monotonic() < end:
            time.sleep(0.1)
        return cond()

    def wait_steady(self) -> None:
        """Until a window of silence is reported as such: speech played before that may
        fall into the start-up (a fixed sleep did on a loaded box)."""
        assert self.wait_for(lambda: any('"audio:silence"' in ln for ln in list(self.out)),
                             120), ("no silence reported before the speech", self.out, self.err)

    def stop(self):
        """SIGINT; ``(exit code, result lines, summary, stderr)``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        self.proc.wait(180)
        end = time.monotonic() + 30  # the reader threads drain the pipes after the exit
        while not self.err and time.monotonic() < end:
            time.sleep(0.05)
        err = self.err[0]
        return self.proc.returncode, self.lines(), json.loads(err.strip().splitlines()[-1])[
            "summary"], err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def _play(wav, env) -> None:
    subprocess.run(["paplay", "-d", "hrlfmic", wav], env={**os.environ, **env}, check=True,
                   timeout=60)


def _text_then_silence(lines) -> bool:
    seen = [i for i, r in enumerate(lines) if "text" in r.get("modalities", ())]
    return bool(seen) and any("audio:silence" in r.get("reasons", ()) for r in lines[seen[-1]:])


def test_mic_speech_gives_text_and_audio_silence_gives_reasons(virtual_mic, capture_model,
                                                               tmp_path):
    wav = _speech_wav(str(tmp_path / "speech.wav"))
    run = LiveRun(capture_model, "mic", virtual_mic)
    try:
        run.wait_steady()
        _play(wav, virtual_mic)
        # stop once the speech's text is out and silence is reported after it (bounded)
        run.wait_for(lambda: _text_then_silence(run.lines()), 120)
        code, lines, summary, err = run.stop()
    finally:
        run.kill()
    assert code == 0, err
    both = [r for r in lines if {"text", "audio"} <= set(r["modalities"])]
    assert len(both) >= 3, lines
    src = summary["source"]
    assert src["tracks"]["audio"]["words"] >= 5 and src["tracks"]["audio"]["stalls"] == 0
    assert src["tracks"]["audio"]["lost"] == 0  # no false device_lost while Pulse starts
    assert summary["source_drops"]["silence"] > 100  # silence before and after the speech
    assert summary["accounting_ok"] and summary["received"] == summary["used"] + sum(
        summary["dropped"].values())
    # every absent modality of a scored line carries its reason; windows with nothing
    # (the silence around the speech) are no_data lines that say why
    scored = [r for r in lines if r.get("status", "ok") != "no_data"]
    for r in scored:
        for m in {"text", "audio", "vision"} - set(r["modalities"]):
            assert r["absent"][m] in ("silence", "no_speech", "unavailable"), r
    empty = [r for r in lines if r.get("status") == "no_data"]
    assert all(len(r["reasons"]) > 1 for r in empty), empty  # more than "no_frames"
    # the source's reasons describe the last seconds at the time a window is due
    assert not empty or any("audio:silence" in r["reasons"] for r in empty), empty


def test_mic_silence_gives_audio_and_text_absent_with_reasons(virtual_mic, capture_model):
    """Nothing playing into the sink: no audio frame is kept, and the run says why."""
    code, lines, summary, err = _finish(_run(capture_model, "mic", 5, env=virtual_mic), 60)
    assert code == 0, err
    assert summary["received"] == 0 and summary["accounting_ok"]
    assert lines and all(r["status"] == "no_data" for r in lines), lines
    assert all({"audio:silence", "audio:starting"} & set(r["reasons"]) for r in lines), lines
    assert "audio:silence" in lines[-1]["reasons"] and "text:no_speech" in lines[-1]["reasons"]
    assert summary["source_drops"]["silence"] > 200
    absent = summary["source"]["absent"]
    assert absent["audio"]["reason"] == "silence" and absent["text"]["reason"] == "no_speech"
    assert absent["vision"]["reason"] == "unavailable"


@pytest.fixture(scope="module")
def words_model(tmp_path_factory):
    """A model trained as a user would on 14 real-media clips (espeak-ng sentences, typed
    transcripts; short training): its score follows the words it hears."""
    from hrlf.runtime.capture import realmedia

    if realmedia.unavailable_reason():
        pytest.skip(realmedia.unavailable_reason())
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("words_model")
    csv = realmedia.build_clip_set(str(out / "clips"), 14, seed=5, n_valid=2, n_test=2)
    bin_ = os.path.dirname(sys.executable)
    for cmd in (["hrlf-train", "--data", csv, "--out", str(out / "run"), "--quiet",
                 "--min-steps", "80"], ["hrlf-export", str(out / "run"), "--out",
                                        str(out / "model")]):
        subprocess.run([os.path.join(bin_, cmd[0]), *cmd[1:]], check=True, capture_output=True)
    return str(out / "model")


def test_mic_sentiment_follows_the_words_with_text_on_time(virtual_mic, words_model, tmp_path):
    """Four sentences of the clips' kind (two positive, two negative) into the virtual
    microphone: the results over each sentence have its sign, and the text of every
    sentence arrives while the run goes on. The run is stopped with SIGINT once the last
    sentence's words were heard (bounded waits; bench/asr.py measures the latency)."""
    from hrlf.runtime.capture import asr_engines, realmedia, speechsets

    if asr_engines.choose("auto").engine is None:
        pytest.skip(asr_engines.choose("auto").why)
    said = [(realmedia.POSITIVE[0], 1), (realmedia.NEGATIVE[0], -1),
            (realmedia.POSITIVE[1], 1), (realmedia.NEGATIVE[2], -1)]
    wavs = [_speech_wav(str(tmp_path / f"s{i}.wav"), s) for i, (s, _) in enumerate(said)]
    # a generous grace: on a loaded machine a late decode must not cost a window its text
    run = LiveRun(words_model, "mic", virtual_mic, extra=("--words", "--grace", "8"))
    try:
        run.wait_steady()
        for w in wavs:
            _play(w, virtual_mic)
            time.sleep(3.0)  # a pause that ends the utterance
        last = set(speechsets.words_of(said[-1][0]))
        run.wait_for(lambda: any(last & set(speechsets.words_of(r.get("words") or ""))
                                 for r in run.lines()), 120)
        code, lines, summary, err = run.stop()
    finally:
        run.kill()
    assert code == 0, err
    utts = summary["source"]["transcript"]["utterances"]
    right = 0
    for (text, sign) in said:
        key = set(speechsets.words_of(text))
        u = max(utts, key=lambda u: len(key & set(speechsets.words_of(u["text"]))), default=None)
        if u is None or not key & set(speechsets.words_of(u["text"])):
            continue
        scores = [r["score"] for r in lines if r.get("score") is not None and
                  "text" in r["modalities"] and u["t0"] - 0.5 <= r["t_start"] + 1.0 <= u["t1"] + 1.0]
        right += bool(scores) and np.sign(np.mean(scores)) == sign
    assert right >= 3, (utts, lines)
    # each sentence's text came while the run went on, and its latency was measured
    lat = summary["source"]["tracks"]["audio"]["text_latency"]["after_end_s"]
    assert lat["n"] >= 4 and 0 <= lat["p50"] <= lat["p95"], lat


# ---- RTSP --------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """tests/capture/rtsp_server.py under Debian's python3 (it needs gi)."""

    def __init__(self, port, image, speech):
        self.args = ["/usr/bin/python3", os.path.join(HERE, "rtsp_server.py"), str(port), image,
                     speech]
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.stop()
            pytest.skip(f"the GStreamer RTSP server did not start ({line} {err[-300:]})")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def rtsp_server(tmp_path):
    probe = subprocess.run(["/usr/bin/python3", "-c", "import gi; gi.require_version("
                            "'GstRtspServer', '1.0'); from gi.repository import GstRtspServer"],
                           capture_output=True) if os.path.exists("/usr/bin/python3") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("GStreamer's RTSP server for python3 is missing (apt-get install "
                    "gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-rtsp ...)")
    import cv2
    skimage = pytest.importorskip("skimage.data")

    image = str(tmp_path / "face.jpg")
    cv2.imwrite(image, cv2.cvtColor(skimage.astronaut(), cv2.COLOR_RGB2BGR))
    speech = _speech_wav(str(tmp_path / "speech.wav"), repeat=4)
    port = _free_port()
    server = RtspServer(port, image, speech)
    server.start()
    try:
        yield server, f"rtsp://127.0.0.1:{port}/cam"
    finally:
        server.stop()


def test_rtsp_audio_and_video_freeze_kill_restart(rtsp_server, capture_model):
    server, url = rtsp_server
    proc = _run(capture_model, url, 30, extra=("--stall-s", "2"))
    time.sleep(8.0)
    server.signal(signal.SIGSTOP)   # frozen: socket open, no data
    time.sleep(7.0)
    server.signal(signal.SIGCONT)   # recovery
    time.sleep(5.0)
    server.stop()                   # killed
    time.sleep(1.0)
    server.start()                  # restarted
    code, lines, summary, err = _finish(proc, 90)
    assert code == 0, err
    track = summary["source"]["tracks"]["vision"]
    assert track["audio"]["present"] and track["audio"]["frames"] > 0
    assert any({"audio", "vision"} <= set(r["modalities"]) for r in lines), lines
    assert track["stalls"] >= 1 and track["lost"] >= 2 and track["reconnects"] >= 2, track
    # the frozen server is declared lost within stall-s + 1 s of its last data
    assert 0 < min(track["lost_after_last_data_s"]) <= 3.0, track
    assert summary["source_drops"]["device_lost"] == track["lost"]
    # outages stay visible: every due window has a line, no_data ones during the outages
    starts = [r["t_start"] for r in lines]
    hop = min(b - a for a, b in zip(starts, starts[1:]) if b > a)
    assert all(0 < b - a <= hop + 1e-6 for a, b in zip(starts, starts[1:])), starts
    assert any(r.get("status") == "no_data" for r in lines), lines
    late = [r for r in lines if r["t_start"] > lines[-1]["t_start"] - 4]
    assert any("vision" in r["modalities"] for r in late)  # results again after the restart
    assert summary["accounting_ok"] and summary["pending"] == 0
    assert summary["received"] == summary["used"] + sum(summary["dropped"].values())
