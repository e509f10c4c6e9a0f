"""``haarface-v1``: OpenCV's Haar frontal-face cascade plus a fixed 198-d face descriptor.

Per video frame: detect faces on a copy scaled to at most 320 px wide (scale factor 1.1,
3 neighbours, faces at least 8 % of the shorter side), keep the largest, and describe it:

=======  ====  ===========================================================================
slice    dim   what
=======  ====  ===========================================================================
0:4      4     box centre x, centre y, width, height, as fractions of the frame size
4:6      2     mean and std of the face's gray levels / 255
6:70     64    8x8 downsampled face, z-normalized (mean 0, std 1)
70:198   128   HOG-style: 4x4 cells of the 32x32 face, 8 unsigned orientation bins, L2-normed
=======  ====  ===========================================================================

A frame without a face yields no frame (the caller counts a ``no_face`` drop), never zeros.
The runtime and training sample video at the featurizer's 10 Hz with :class:`RateGate`.

The cascade is ``haarcascade_frontalface_default.xml`` from ``cv2.data.haarcascades``
(opencv-python(-headless) 4.x). OpenCV 5.0 moved ``CascadeClassifier`` to opencv-contrib and
its wheels ship no cascade files; then building the featurizer raises
:class:`BackendUnavailable` with one line (``$HRLF_HAAR_CASCADE`` may point to the XML).
"""
from __future__ import annotations

import math
import os

import numpy as np

from ...errors import BackendUnavailable, import_optional, unavailable_reason_of
from .catalog import HAARFACE, HAARFACE_V2

CASCADE_FILE = "haarcascade_frontalface_default.xml"
_PATCH = 32
_CELLS = 4
_BINS = 8


def import_cv2():
    """Import OpenCV or raise BackendUnavailable (one line)."""
    return import_optional("cv2", "OpenCV",
                           "pip install 'opencv-python-headless<5' (hrlf[capture])")


def cascade_path(cv2=None) -> str:
    """Path of the frontal-face cascade XML.

    Raises:
        BackendUnavailable: this OpenCV has no CascadeClassifier or no cascade file.
    """
    cv2 = cv2 or import_cv2()
    name = HAARFACE.name
    if not hasattr(cv2, "CascadeClassifier"):
        raise BackendUnavailable(
            f"vision featurizer {name}: OpenCV {cv2.__version__} has no CascadeClassifier (moved "
            "to opencv-contrib in 5.x, whose wheels ship no cascade files); pip install "
            "'opencv-python-headless>=4.8,<5'")
    candidates = [os.environ.get("HRLF_HAAR_CASCADE", "")]
    data = getattr(getattr(cv2, "data", None), "haarcascades", "")
    if data:
        candidates.append(os.path.join(data, CASCADE_FILE))
    for path in candidates:
        if path and os.path.isfile(path):
            return path
    raise BackendUnavailable(f"vision featurizer {name}: {CASCADE_FILE} not found in "
                             f"cv2.data.haarcascades ({data or 'absent'}); install "
                             "'opencv-python-headless>=4.8,<5' or set HRLF_HAAR_CASCADE to "
                             "the file")


class RateGate:
    """Pass the first frame of every ``1 / rate_hz`` slot (video at 30 fps -> 10 Hz)."""

    def __init__(self, rate_hz: float = HAARFACE.rate_hz):
        self.rate_hz = rate_hz
        self._slot = None

    def __call__(self, t: float) -> bool:
        slot = math.floor(t * self.rate_hz + 1e-6)
        if self._slot is not None and slot <= self._slot:
            return False
        self._slot = slot
        return True

    def reset(self) -> None:
        self._slot = None


class HaarFaceFeaturizer:
    """Frame (BGR or gray uint8) -> 198-d face descriptor, or None without a face.

    Args:
        detect_width: the frame is scaled down to at most this width for detection.
        min_face_frac: smallest face, as a fraction of the frame's shorter side.

    Raises:
        BackendUnavailable: OpenCV, its CascadeClassifier or the cascade file is missing.
    """

    info = HAARFACE
    name = HAARFACE.name
    dim = HAARFACE.dim
    rate_hz = HAARFACE.rate_hz

    def __init__(self, detect_width: int = 320, min_face_frac: float = 0.08):
        self.cv2 = import_cv2()
        path = cascade_path(self.cv2)
        self.cascade = self.cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise BackendUnavailable(f"vision featurizer {self.name}: could not load {path}; "
                                     "reinstall opencv-python-headless")
        self.detect_width = int(detect_width)
        self.min_face_frac = float(min_face_frac)

    def detect(self, gray: np.ndarray) -> tuple[int, int, int, int] | None:
        """The largest face box ``(x, y, w, h)`` in full-frame pixels, or None."""
        small, scale = self._small(gray)
        return _full_frame(self._detect_small(small), scale)

    def _small(self, gray: np.ndarray) -> tuple[np.ndarray, float]:
        """The frame downscaled to ``detect_width`` (never up), and that scale."""
        h, w = gray.shape[:2]
        scale = min(1.0, self.detect_width / float(w))
        small = self.cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))),
                                interpolation=self.cv2.INTER_AREA) if scale < 1.0 else gray
        return small, scale

    def _detect_small(self, small):
        """The largest face box on the small image, or None."""
        side = max(12, int(self.min_face_frac * min(small.shape[:2])))
        boxes = self.cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=3,
                                              minSize=(side, side))
        if len(boxes) == 0:
            return None
        return max((tuple(int(v) for v in b) for b in boxes), key=lambda b: b[2] * b[3])

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        """Descriptor (198,) float32 of the largest face in ``frame``, or None."""
        frame = np.asarray(frame)
        if frame.ndim != 2 and not (frame.ndim == 3 and frame.shape[2] in (1, 3, 4)):
            raise ValueError(f"frame of shape {frame.shape} is not an image")
        if frame.ndim == 2 or frame.shape[2] == 1:
            gray = frame.reshape(frame.shape[:2])
        else:
            code = self.cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else self.cv2.COLOR_BGRA2GRAY
            gray = self.cv2.cvtColor(frame, code)
        gray = np.ascontiguousarray(gray, np.uint8)
        box = self.detect(gray)
        if box is None:
            return None
        return describe(self.cv2, gray, box)


def describe(cv2, gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The 198-d descriptor of face ``box`` in ``gray`` (see module docstring)."""
    H, W = gray.shape
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(W, x + w), min(H, y + h)
    crop = gray[y0:y1, x0:x1]
    face = cv2.resize(crop, (_PATCH, _PATCH), interpolation=cv2.INTER_AREA).astype(np.float32)
    geom = np.array([(x + w / 2) / W, (y + h / 2) / H, w / W, h / H], np.float32)
    photo = np.array([face.mean() / 255.0, face.std() / 255.0], np.float32)
    small = face.reshape(8, 4, 8, 4).mean(axis=(1, 3)).reshape(-1)  # (64,)
    small = (small - small.mean()) / (small.std() + 1e-6)
    return np.concatenate([geom, photo, small.astype(np.float32), hog(face)]).astype(np.float32)


def hog(face: np.ndarray) -> np.ndarray:
    """(128,) orientation histograms of a (32, 32) float image: 4x4 cells x 8 bins, L2-normed."""
    gy, gx = np.gradient(face)
    mag = np.hypot(gx, gy)
    ang = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned orientation in [0, pi)
    b = np.minimum((ang / np.pi * _BINS).astype(np.int64), _BINS - 1)
    cell = _PATCH // _CELLS
    cy, cx = np.divmod(np.arange(_PATCH * _PATCH), _PATCH)
    idx = ((cy // cell) * _CELLS + (cx // cell)) * _BINS + b.reshape(-1)
    hist = np.bincount(idx, weights=mag.reshape(-1), minlength=_CELLS * _CELLS * _BINS)
    return (hist / (np.linalg.norm(hist) + 1e-6)).astype(np.float32)


def unavailable_reason() -> str | None:
    """Why ``haarface-v1`` cannot run here (one line), or None when it can."""
    return unavailable_reason_of(HaarFaceFeaturizer)


class TrackedFaceFeaturizer(HaarFaceFeaturizer):
    """``haarface-v2``: the ``haarface-v1`` descriptor, found faster (≤ 10 ms per 640x480
    frame on one core; ``bench/capture.py`` measures it on photographs).

    The Haar cascade runs on a copy at most ``detect_width`` (200) px wide, every
    ``redetect_every``-th frame; in between, the face is followed by normalized
    cross-correlation of its appearance at the last detection within a search region 1.5x
    its size around the last box (a match below ``min_match`` ends the track and the frame
    is detected afresh). Where the cascade misses a face the track still matches, the track
    is kept, for at most ``max_track`` frames since the last detection. Frames are expected
    in stream order: the track is state.

    Raises:
        BackendUnavailable: OpenCV, its CascadeClassifier or the cascade file is missing.
    """

    info = HAARFACE_V2
    name = HAARFACE_V2.name

    def __init__(self, detect_width: int = 200, min_face_frac: float = 0.08,
                 redetect_every: int = 4, min_match: float = 0.6, max_track: int = 10):
        super().__init__(detect_width, min_face_frac)
        self.redetect_every, self.min_match = int(redetect_every), float(min_match)
        self.max_track = int(max_track)
        self.reset()

    def reset(self) -> None:
        """Forget the track (a new stream or a cut)."""
        self._box = None      # (x, y, w, h) on the small image
        self._tmpl = None     # the face as last *detected* (tracking never drifts from it)
        self._age = 0         # frames since that detection

    def detect(self, gray: np.ndarray) -> tuple[int, int, int, int] | None:
        small, scale = self._small(gray)
        box = None
        if self._box is not None and self._age % self.redetect_every:
            box = self._track(small)
        if box is None:
            found = self._detect_small(small)
            if found is not None:
                box, self._age = found, 0
                x, y, bw, bh = box
                self._tmpl = small[y:y + bh, x:x + bw].copy()
            elif self._box is not None and self._age < self.max_track:
                box = self._track(small)  # the cascade missed a face the track still holds
        self._age += 1
        self._box = box
        if box is None:
            self._tmpl = None
        return _full_frame(box, scale)

    def _track(self, small):
        x, y, bw, bh = self._box
        H, W = small.shape[:2]
        mx, my = bw // 2, bh // 2
        x0, y0 = max(0, x - mx), max(0, y - my)
        x1, y1 = min(W, x + bw + mx), min(H, y + bh + my)
        region = small[y0:y1, x0:x1]
        if region.shape[0] < bh or region.shape[1] < bw or self._tmpl is None:
            return None
        res = self.cv2.matchTemplate(region, self._tmpl, self.cv2.TM_CCOEFF_NORMED)
        _, score, _, (dx, dy) = self.cv2.minMaxLoc(res)
        if not score >= self.min_match:
            return None
        return (x0 + dx, y0 + dy, bw, bh)


def _full_frame(box, scale: float):
    """A box on the downscaled image in full-frame pixels (None stays None)."""
    if box is None:
        return None
    x, y, bw, bh = box
    return (round(x / scale), round(y / scale), round(bw / scale), round(bh / scale))
