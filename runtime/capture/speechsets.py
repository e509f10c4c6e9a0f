"""Real speech with known words, offline, for the recognizer's tests and ``bench/asr.py``.

* ``alsa``: Debian ``alsa-utils``' recorded voice naming the channels
  (``/usr/share/sounds/alsa/*.wav``: "Front Left", ..., 48 kHz; ``Noise.wav`` left out).
* ``beckett``: ``moonshine_onnx/assets/beckett.wav`` inside the ``useful-moonshine-onnx``
  wheel (a human voice: "Ever tried. Ever failed. No matter. Try again. Fail again. Fail
  better."), read straight from the wheel file that ``tools/fetch_test_media.sh`` downloads
  (pinned, hash-checked) into ``.test-media/``: the package itself is never installed (it
  pulls numba and librosa).
* ``espeak``: espeak-ng reading sentiment sentences in three voices.

Each set is one stream: its recordings one after another with ``GAP_S`` of silence between
them, as a long call or a microphone would deliver them. :func:`telephone` makes the 8 kHz,
300-3400 Hz copy; :func:`add_noise` the white-noise copy at a given SNR. :func:`recognize`
runs a stream through hrlf's own path (``AudioChain``: voice gate + ``SpeechToText``, fed in
0.1 s chunks, as ``file:`` and ``mic`` sources run it) and :func:`wer` scores the words.
"""
from __future__ import annotations

import glob
import hashlib
import io
import os
import re
import zipfile

import numpy as np

RATE = 16000
GAP_S = 1.0
ALSA_DIR = "/usr/share/sounds/alsa"
MOONSHINE_WHEEL = "useful_moonshine_onnx-20251121-py3-none-any.whl"
BECKETT_SHA256 = "e5a26b3d29e5b0bc8dbd72c11d16a3808a4ec0ac45b21f12a27d2a2fe5c5ae61"
BECKETT_TEXT = "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better."
#: sentences none of the training clips (realmedia.POSITIVE/NEGATIVE) say, with their sign
UNSEEN = (
    ("I am thrilled with how well this turned out.", 1), ("The hotel was clean and cozy.", 1),
    ("She gave a warm and wonderful speech.", 1), ("Our holiday was relaxing and sunny.", 1),
    ("The new phone works beautifully.", 1), ("He was kind and very helpful today.", 1),
    ("I adore this little garden.", 1), ("The concert was joyful and exciting.", 1),
    ("The train was late and the seats were broken.", -1),
    ("I hated every minute of that meeting.", -1), ("The soup tasted bitter and cold.", -1),
    ("This software keeps crashing, it is hopeless.", -1),
    ("They were rude and careless with my order.", -1),
    ("The weather was gloomy and I felt lonely.", -1),
    ("What a dreadful and annoying evening.", -1),
)
ESPEAK_VOICES = ("en-us", "en-us+m3", "en-us+f3")


def media_dir() -> str:
    """Where fetched test media lie: ``$HRLF_TEST_MEDIA`` or ``<repo>/.test-media``."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("HRLF_TEST_MEDIA") or os.path.join(here, "..", "..", ".test-media")


def _resample(x: np.ndarray, sr: int, to: int = RATE) -> np.ndarray:
    """Band-limited resampling of a whole recording (FFT)."""
    x = np.asarray(x, np.float64)
    if sr == to:
        return x.astype(np.float32)
    n = int(round(len(x) * to / sr))
    spec = np.fft.rfft(x)
    out = np.zeros(n // 2 + 1, complex)
    k = min(len(spec), len(out))
    out[:k] = spec[:k]
    return (np.fft.irfft(out, n) * (n / len(x))).astype(np.float32)


def _read(data, name: str = "") -> np.ndarray:
    import soundfile

    x, sr = soundfile.read(data, dtype="float32", always_2d=True)
    return _resample(x.mean(axis=1), sr)


def alsa() -> list[tuple[str, np.ndarray]]:
    """``[(words, samples 16 kHz)]`` of alsa-utils' voice, or [] where it is not installed."""
    out = []
    for p in sorted(glob.glob(os.path.join(ALSA_DIR, "*.wav"))):
        name = os.path.basename(p)[:-4]
        if name.lower() != "noise":
            out.append((name.replace("_", " "), _read(p)))
    return out


def beckett() -> list[tuple[str, np.ndarray]]:
    """``[(words, samples)]`` of beckett.wav from the fetched wheel, or [] (see module doc).

    Raises:
        ValueError: the file inside the wheel is not the pinned one.
    """
    wheel = os.path.join(media_dir(), MOONSHINE_WHEEL)
    if not os.path.isfile(wheel):
        return []
    with zipfile.ZipFile(wheel) as z:
        data = z.read("moonshine_onnx/assets/beckett.wav")
    if hashlib.sha256(data).hexdigest() != BECKETT_SHA256:
        raise ValueError(f"{wheel}: beckett.wav is not the pinned file; re-run "
                         "tools/fetch_test_media.sh")
    return [(BECKETT_TEXT, _read(io.BytesIO(data)))]


def espeak(sentences=None, voices=ESPEAK_VOICES) -> list[tuple[str, np.ndarray]]:
    """espeak-ng reading ``sentences`` (default: :data:`UNSEEN`) in each voice."""
    from . import realmedia

    sentences = [s for s, _ in UNSEEN] if sentences is None else sentences
    return [(s, realmedia.speak(s, voice=v, speed_wpm=150)) for v in voices for s in sentences]


def stream(items, gap_s: float = GAP_S) -> tuple[np.ndarray, str]:
    """The recordings one after another with silence between: ``(samples, all words)``."""
    gap = np.zeros(int(gap_s * RATE), np.float32)
    parts = [gap]
    for _, x in items:
        parts += [x, gap]
    return np.concatenate(parts), " ".join(w for w, _ in items)


def telephone(x: np.ndarray, low_hz: float = 300.0, high_hz: float = 3400.0) -> np.ndarray:
    """A 16 kHz recording as a telephone line carries it: 300-3400 Hz, 8 kHz samples."""
    spec = np.fft.rfft(np.asarray(x, np.float64))
    f = np.fft.rfftfreq(len(x), 1.0 / RATE)
    spec[(f < low_hz) | (f > high_hz)] = 0.0
    return np.fft.irfft(spec, len(x))[::2].astype(np.float32)


def add_noise(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """White noise at ``snr_db`` below the power of the speech (the non-silent samples)."""
    speech = x[np.abs(x) > 1e-4]
    p = float(np.mean(np.square(speech))) if len(speech) else 1e-6
    n = np.random.default_rng(seed).standard_normal(len(x)) * np.sqrt(p / 10 ** (snr_db / 10))
    return np.clip(x + n, -1, 1).astype(np.float32)


def words_of(text: str) -> list[str]:
    """Lower-case words without punctuation ("Front, right." -> ["front", "right"])."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


def wer(ref: str, hyp: str) -> tuple[int, int]:
    """``(errors, reference words)``: Levenshtein distance over words."""
    r, h = words_of(ref), words_of(hyp)
    d = list(range(len(h) + 1))
    for i, a in enumerate(r, 1):
        prev, d[0] = d[0], i
        for j, b in enumerate(h, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (a != b))
    return d[len(h)], len(r)


def recognize(x: np.ndarray, rate: int, engine, gate: bool = True, chunk_s: float = 0.1):
    """Words heard in ``x`` through hrlf's path (voice gate + SpeechToText), or with
    ``gate=False`` by the engine alone on the whole recording (one utterance).

    Returns:
        ``(text, heard)``: the words in order, and the :class:`Heard` (None without gate).
    """
    if not gate:
        from .asr_worker import Resampler

        utt = engine.start()
        utt.feed(Resampler(rate)(x))
        return " ".join(w.word for w in utt.finish()), None
    from .. import featurizers as fz
    from . import vad
    from .audiochain import AudioChain
    from .heard import Heard

    heard = Heard(keep_text=True)
    ch = AudioChain(fz.make_audio("logmel40-v1", rate), rate, vad=vad.DEFAULT_VAD, asr=engine,
                    text_featurizer=fz.make_text(), heard=heard)
    step = int(chunk_s * rate)
    for i in range(0, len(x), step):
        ch.push(x[i:i + step])
    ch.flush()
    ch.close()
    return " ".join(u["text"] for u in heard.transcript()["utterances"]), heard
