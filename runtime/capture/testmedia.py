"""Synthetic media for tests, benchmarks and demos: a drawn face, a tone, a transcript.

The face is drawn with OpenCV primitives (skin ellipse, hair, brows, eyes with pupils, nose,
mouth) so that OpenCV's Haar frontal-face cascade detects it from about 80 px up; the
mouth curves with the label. The audio is a voiced-like harmonic tone whose pitch,
loudness and tremolo rise with the label, so a model can learn the label from either.
"""
from __future__ import annotations

import os
import zlib

import numpy as np

SKIN = (150, 170, 210)
BACKGROUND = (90, 110, 100)


def draw_face(img: np.ndarray, cx: int, cy: int, size: int, smile: float = 0.0) -> np.ndarray:
    """Draw a face ``size`` px tall-ish centred at ``(cx, cy)`` on a BGR image, in place.

    Args:
        smile: -1 (frown) .. 1 (smile): the mouth's curvature.
    """
    import cv2

    s = size
    cv2.ellipse(img, (cx, cy), (int(s * 0.42), int(s * 0.55)), 0, 0, 360, SKIN, -1)
    cv2.ellipse(img, (cx, cy - int(s * 0.42)), (int(s * 0.44), int(s * 0.2)), 0, 180, 360,
                (30, 30, 40), -1)
    for dx in (-1, 1):
        ex, ey = cx + dx * int(s * 0.17), cy - int(s * 0.1)
        cv2.ellipse(img, (ex, ey - int(s * 0.09)), (int(s * 0.1), int(s * 0.025)), 0, 0, 360,
                    (40, 40, 60), -1)
        cv2.ellipse(img, (ex, ey), (int(s * 0.08), int(s * 0.045)), 0, 0, 360, (235, 235, 235), -1)
        cv2.circle(img, (ex, ey), int(s * 0.035), (30, 20, 20), -1)
        cv2.ellipse(img, (ex, ey + int(s * 0.02)), (int(s * 0.1), int(s * 0.06)), 0, 0, 180,
                    (120, 135, 170), 2)
    nose = np.array([[cx, cy - int(s * 0.05)], [cx - int(s * 0.06), cy + int(s * 0.13)],
                     [cx + int(s * 0.06), cy + int(s * 0.13)]], np.int32)
    cv2.fillPoly(img, [nose], (130, 150, 190))
    my, w = cy + int(s * 0.28), int(s * 0.18)
    smile = float(np.clip(smile, -1, 1))
    a0, a1 = (0, 180) if smile >= 0 else (180, 360)
    cv2.ellipse(img, (cx, my - int(smile * s * 0.05)), (w, int(s * 0.02 + abs(smile) * s * 0.05)),
                0, a0, a1, (60, 50, 150), -1)
    return img


def video_frames(seconds: float, fps: float, size=(320, 240), label: float = 0.0,
                 face: bool = True):
    """Yield BGR frames: a face swaying left and right (or an empty background)."""
    w, h = size
    for i in range(int(round(seconds * fps))):
        img = np.empty((h, w, 3), np.uint8)
        img[:] = BACKGROUND
        if face:
            draw_face(img, w // 2 + int(0.05 * w * np.sin(i / fps * 2.0)), h // 2,
                      int(h * 0.45), smile=label / 3.0)
        yield img


def write_video(path: str, seconds: float, fps: float = 15.0, size=(320, 240),
                label: float = 0.0, face: bool = True) -> str:
    """Write an MJPG ``.avi`` (OpenCV's always-available codec) and return its path."""
    import cv2

    vw = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), float(fps), tuple(size))
    if not vw.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write MJPG video here")
    for img in video_frames(seconds, fps, size, label, face):
        vw.write(img)
    vw.release()
    return path


def tone(seconds: float, label: float = 0.0, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A harmonic tone whose pitch, loudness and tremolo rise with ``label`` in [-3, 3]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    f0 = 160.0 + 25.0 * label + 8.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in (1, 2, 3, 4))
    amp = (0.12 + 0.03 * (label + 3)) * (1 + 0.3 * np.sin(2 * np.pi * (2.0 + 0.5 * label) * t))
    x = amp * voiced + 0.005 * rng.standard_normal(len(t))
    return np.clip(x, -1, 1).astype(np.float32)


def write_wav(path: str, samples: np.ndarray, sample_rate: int = 16000) -> str:
    """Write float samples as a 16-bit PCM ``.wav``."""
    import soundfile

    soundfile.write(path, samples, sample_rate, subtype="PCM_16")
    return path


def write_srt(path: str, cues) -> str:
    """Write ``[(start_s, end_s, text), ...]`` as SubRip."""
    def ts(x):
        ms = int(round(x * 1000))
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    with open(path, "w", encoding="utf-8") as f:
        for i, (a, b, text) in enumerate(cues, 1):
            f.write(f"{i}\n{ts(a)} --> {ts(b)}\n{text}\n\n")
    return path


POSITIVE = ("what a wonderful day", "I love this, it is great")
NEGATIVE = ("this is terrible", "I hate it, awful and sad")


def write_clip(folder: str, name: str, label: float, seconds: float = 3.0, fps: float = 15.0,
               size=(320, 240), face: bool = True, transcript: bool = True,
               sample_rate: int = 16000) -> str:
    """Write ``name.avi`` + sidecar ``name.wav`` (+ ``name.srt``); returns the video path."""
    os.makedirs(folder, exist_ok=True)
    stem = os.path.join(folder, name)
    write_video(stem + ".avi", seconds, fps, size, label, face)
    seed = zlib.crc32(name.encode()) % 1000
    write_wav(stem + ".wav", tone(seconds, label, sample_rate, seed=seed), sample_rate)
    if transcript:
        words = POSITIVE if label > 0 else NEGATIVE
        half = seconds / 2
        write_srt(stem + ".srt", [(0.1, half, words[0]), (half, seconds - 0.1, words[1])])
    return stem + ".avi"
