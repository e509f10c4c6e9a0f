"""Real test media, built offline: face photographs that move and zoom over photo
backgrounds, and synthesized speech reading clearly positive or negative sentences.

Each clip is ``NAME.avi`` (MJPG, 10 fps) with a sidecar ``NAME.wav`` (16 kHz speech from
Debian's ``espeak-ng``) and ``NAME.srt`` (one cue per sentence, timed from the speech), so
``hrlf-train --data clips.csv`` and ``hrlf-run --stream file:NAME.avi`` read it as they
would a user's recording. The faces are scikit-image's bundled photographs
(``skimage.data.astronaut()`` and the face half of ``skimage.data.lfw_subset()``) and the
backgrounds its other photographs; nothing is downloaded. Faces, voices, speed, pitch and
motion are drawn independently of the label: only the words carry it (as the issue's clip
set: text separates the labels, audio partly, vision not).

    python -m hrlf.runtime.capture.realmedia OUT_DIR --clips 26 --seed 1

writes ``OUT_DIR/clips.csv`` (columns ``media,transcript,label,split``) and
``OUT_DIR/media/``. Needs ``scikit-image``, ``opencv-python-headless<5``, ``soundfile``,
``scipy`` (``pip install 'hrlf[dev]'``) and ``espeak-ng`` on PATH (``apt-get install
espeak-ng``); :func:`unavailable_reason` says in one line what is missing.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess

import click
import numpy as np

from ..cli_base import OneLineCommand
from ...errors import BackendUnavailable, InputError

SAMPLE_RATE = 16000
FPS = 10.0
SIZE = (320, 240)
LABEL = 2.0
POSITIVE = (
    "What a wonderful day, I love it.", "This is great, I am so happy.",
    "The food was delicious and the staff were lovely.", "I really enjoyed this, it was fantastic.",
    "Such a beautiful place, we had a great time.", "Excellent work, I am very pleased.",
    "I love this movie, it is brilliant.", "Everything went perfectly, thank you so much.",
    "What a pleasant surprise, this is amazing.", "The music was beautiful and fun.",
    "I am delighted with the result.", "A superb and charming story.",
)
NEGATIVE = (
    "This is terrible, I hate it.", "What an awful day, everything went wrong.",
    "The food was disgusting and the staff were rude.", "I am so sad and angry about this.",
    "A horrible, boring film, a total waste.", "This is the worst service I have ever had.",
    "I feel miserable, it was a disaster.", "The room was dirty and the noise was unbearable.",
    "What a painful and ugly mess.", "I regret buying this, it is useless.",
    "The ending was depressing and stupid.", "Bad news again, I am furious.",
)
BACKGROUNDS = ("coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
               "retina", "brick", "grass", "gravel", "camera")
VOICES = ("en-us", "en-us+f3", "en-us+m3", "en+f2", "en+m1", "en-gb-x-rp", "en+f4")


def unavailable_reason() -> str | None:
    """None when real media can be built here, else one line naming what to install."""
    for mod, pip in (("skimage", "scikit-image"), ("cv2", "opencv-python-headless<5"),
                     ("soundfile", "soundfile"), ("scipy", "scipy")):
        try:
            __import__(mod)
        except ImportError:
            return f"real test media needs {pip} (pip install '{pip}' or 'hrlf[dev]')"
    if shutil.which("espeak-ng") is None:
        return "real test media needs espeak-ng on PATH (apt-get install espeak-ng)"
    return None


def _require() -> None:
    why = unavailable_reason()
    if why:
        raise BackendUnavailable(why)


def face_photos() -> list[np.ndarray]:
    """BGR face photographs (uint8): the astronaut's head and the LFW subset's 100 faces.

    The LFW faces are 25x25 grayscale crops, upscaled ×5 so that the Haar cascade finds them.
    """
    import cv2
    from skimage import data

    astro = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    faces = [np.ascontiguousarray(astro[10:250, 130:330])]  # head and shoulders
    for g in data.lfw_subset()[:100]:  # the first 100 are faces, the rest are not
        g8 = (np.clip(g, 0, 1) * 255).astype(np.uint8)
        big = cv2.resize(g8, (150, 150), interpolation=cv2.INTER_CUBIC)
        pad = cv2.copyMakeBorder(big, 20, 20, 20, 20, cv2.BORDER_REPLICATE)
        faces.append(cv2.cvtColor(pad, cv2.COLOR_GRAY2BGR))
    return faces


def background(name: str, rng: np.random.Generator, size=SIZE) -> np.ndarray:
    """A random crop of scikit-image photograph ``name``, resized to ``size`` (BGR)."""
    import cv2
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = cv2.cvtColor(img[..., :3].astype(np.uint8), cv2.COLOR_RGB2BGR)
    h, w = img.shape[:2]
    ch = int(h * rng.uniform(0.6, 1.0))
    cw = min(w, int(ch * size[0] / size[1]))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    return cv2.resize(img[y:y + ch, x:x + cw], size, interpolation=cv2.INTER_AREA)


def video_frames(face: np.ndarray, bg: np.ndarray, seconds: float, rng: np.random.Generator,
                 fps: float = FPS):
    """Yield BGR frames: ``face`` drifting and zooming over ``bg``."""
    import cv2

    h, w = bg.shape[:2]
    base = rng.uniform(0.55, 0.75) * h           # face photo height in px
    zoom_hz, zoom = rng.uniform(0.1, 0.35), rng.uniform(0.05, 0.18)
    move_hz, amp = rng.uniform(0.1, 0.4), rng.uniform(0.05, 0.15) * w
    phase = rng.uniform(0, 2 * np.pi, 2)
    for i in range(int(round(seconds * fps))):
        t = i / fps
        fh = int(base * (1 + zoom * np.sin(2 * np.pi * zoom_hz * t + phase[0])))
        fw = int(fh * face.shape[1] / face.shape[0])
        f = cv2.resize(face, (fw, fh), interpolation=cv2.INTER_AREA)
        cx = w / 2 + amp * np.sin(2 * np.pi * move_hz * t + phase[1])
        x0, y0 = int(np.clip(cx - fw / 2, 0, w - fw)), int(np.clip((h - fh) / 2, 0, h - fh))
        img = bg.copy()
        img[y0:y0 + fh, x0:x0 + fw] = f[:h - y0, :w - x0]
        yield img


def speak(text: str, voice: str = "en-us", speed_wpm: int = 160, pitch: int = 50,
          sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """espeak-ng speech for ``text`` as float32 mono samples at ``sample_rate``.

    Raises:
        BackendUnavailable: espeak-ng is missing or fails.
    """
    import soundfile
    from scipy.signal import resample_poly

    _require()
    cmd = ["espeak-ng", "-v", voice, "-s", str(int(speed_wpm)), "-p", str(int(pitch)),
           "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise BackendUnavailable(f"espeak-ng failed ({proc.stderr.decode(errors='replace')[:200]});"
                                 " check the espeak-ng installation")
    x, sr = soundfile.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != sample_rate:
        g = np.gcd(int(sr), int(sample_rate))
        x = resample_poly(x, sample_rate // g, int(sr) // g).astype(np.float32)
    return x


def write_clip(folder: str, name: str, label: float, rng: np.random.Generator,
               faces: list[np.ndarray] | None = None, min_s: float = 3.4,
               max_s: float = 5.9) -> dict:
    """Write ``name.avi`` + ``name.wav`` + ``name.srt`` for one clip.

    Args:
        label: > 0 reads positive sentences, < 0 negative ones.
        rng: draws the sentences, voice, face, background and motion.
        faces: :func:`face_photos` (pass it when writing many clips).
        min_s, max_s: the clip's duration range.

    Returns:
        ``{"media": path, "label", "seconds", "sentences", "voice"}``.
    """
    from . import testmedia

    faces = faces if faces is not None else face_photos()
    pool = POSITIVE if label > 0 else NEGATIVE
    voice = VOICES[rng.integers(len(VOICES))]
    speed, pitch = int(rng.integers(140, 181)), int(rng.integers(35, 71))
    target = rng.uniform(min_s, max_s)
    lead = rng.uniform(0.2, 0.5)
    parts, cues, t = [np.zeros(int(lead * SAMPLE_RATE), np.float32)], [], lead
    for k in rng.permutation(len(pool)):
        x = speak(pool[k], voice, speed, pitch)
        if cues and t + len(x) / SAMPLE_RATE + 0.2 > target:
            break
        cues.append((t, t + len(x) / SAMPLE_RATE, pool[k]))
        parts.append(x)
        t += len(x) / SAMPLE_RATE
        gap = rng.uniform(0.2, 0.4)
        parts.append(np.zeros(int(gap * SAMPLE_RATE), np.float32))
        t += gap
    seconds = float(np.clip(max(t, target), min_s, max_s))
    audio = np.concatenate(parts)[:int(seconds * SAMPLE_RATE)]
    audio = np.pad(audio, (0, int(seconds * SAMPLE_RATE) - len(audio)))
    cues = [(a, min(b, seconds - 0.05), s) for a, b, s in cues if a < seconds - 0.3]
    os.makedirs(folder, exist_ok=True)
    stem = os.path.join(folder, name)
    testmedia.write_wav(stem + ".wav", audio, SAMPLE_RATE)
    testmedia.write_srt(stem + ".srt", cues)
    face = faces[rng.integers(len(faces))]
    bg = background(BACKGROUNDS[rng.integers(len(BACKGROUNDS))], rng)
    _write_video(stem + ".avi", video_frames(face, bg, seconds, rng))
    return {"media": stem + ".avi", "label": float(label), "seconds": seconds,
            "sentences": [c[2] for c in cues], "voice": voice}


def _write_video(path: str, frames) -> None:
    import cv2

    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), FPS, SIZE)
    if not vw.isOpened():
        raise BackendUnavailable(f"{path}: OpenCV cannot write MJPG video here")
    for img in frames:
        vw.write(img)
    vw.release()


def split_plan(n_clips: int, n_valid: int, n_test: int,
               rng: np.random.Generator) -> list[tuple[float, str]]:
    """``(label, split)`` per clip: half +2, half -2, each split as balanced as it can be."""
    if n_clips < n_valid + n_test + 2:
        raise ValueError(f"--clips {n_clips}: need at least {n_valid + n_test + 2} "
                         f"({n_valid} valid + {n_test} test + 2 train)")
    labels = np.where(np.arange(n_clips) % 2 == 0, LABEL, -LABEL)
    pos, neg = list(rng.permutation(np.flatnonzero(labels > 0))), \
        list(rng.permutation(np.flatnonzero(labels < 0)))
    split = ["train"] * n_clips
    for name, n in (("test", n_test), ("valid", n_valid)):
        first, second = (pos, neg) if len(pos) >= len(neg) else (neg, pos)
        for j in range(n):  # alternate, starting with the larger pool
            split[(first if j % 2 == 0 else second).pop()] = name
    return [(float(labels[i]), split[i]) for i in range(n_clips)]


def build_clip_set(out: str, n_clips: int = 26, seed: int = 0, n_valid: int = 4,
                   n_test: int = 7, min_s: float = 3.4, max_s: float = 5.9) -> str:
    """Write ``n_clips`` labelled clips and ``clips.csv`` into ``out``; returns the CSV path.

    Labels are +2 / -2 (half each); the ``split`` column puts ``n_valid`` clips in valid,
    ``n_test`` in test and the rest in train. The same ``seed`` gives the same clips.

    Raises:
        BackendUnavailable: scikit-image, OpenCV, soundfile, scipy or espeak-ng is missing.
    """
    _require()
    rng = np.random.default_rng(seed)
    faces = face_photos()
    media = os.path.join(out, "media")
    rows = ["media,transcript,label,split"]
    for i, (label, split) in enumerate(split_plan(n_clips, n_valid, n_test, rng)):
        name = f"s{seed}_{i:02d}"
        write_clip(media, name, label, rng, faces, min_s, max_s)
        rows.append(f"media/{name}.avi,,{label:g},{split}")
    path = os.path.join(out, "clips.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    return path


@click.command(cls=OneLineCommand, tool="realmedia",
               context_settings={"help_option_names": ["-h", "--help"]},
               epilog="\b\nExample:\n  python -m hrlf.runtime.capture.realmedia /tmp/clips "
                      "--clips 26 --seed 1\n  hrlf-train --data /tmp/clips/clips.csv --out "
                      "runs/clips")
@click.argument("out", metavar="OUT_DIR")
@click.option("--clips", type=click.IntRange(3), default=26, show_default=True,
              help="How many clips.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the clip set.")
@click.option("--valid", type=click.IntRange(1), default=4, show_default=True,
              help="Clips in the valid split.")
@click.option("--test", type=click.IntRange(1), default=7, show_default=True,
              help="Clips in the test split.")
def main(out, clips, seed, valid, test) -> None:
    """Build a labelled clip set in OUT_DIR (face photographs and espeak-ng speech; needs
    scikit-image and espeak-ng) and print the path of its clips.csv."""
    try:
        click.echo(build_clip_set(out, clips, seed, valid, test))
    except ValueError as e:
        raise InputError(str(e)) from None


if __name__ == "__main__":
    main(prog_name="python -m hrlf.runtime.capture.realmedia")
