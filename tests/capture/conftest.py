"""Fixtures for capture tests: media written by the tests, fake devices, a stand-in face
featurizer for machines whose OpenCV has no Haar cascade (OpenCV 5.x)."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from hrlf.runtime.featurizers import HAARFACE
from hrlf.runtime.featurizers.vision import unavailable_reason

HAAR_SKIP = unavailable_reason()


@pytest.fixture(scope="session")
def haar():
    """The real ``haarface-v1`` featurizer; skips (with the one-line reason) where it can't run."""
    if HAAR_SKIP:
        pytest.skip(HAAR_SKIP)
    from hrlf.runtime.featurizers.vision import HaarFaceFeaturizer

    return HaarFaceFeaturizer()


class StubFace:
    """Stands in for haarface-v1 when only the plumbing is under test: a 198-d vector of
    the frame's mean colour, or None for a frame that is all background (no face)."""

    name, dim, rate_hz = HAARFACE.name, HAARFACE.dim, HAARFACE.rate_hz

    def __call__(self, frame):
        frame = np.asarray(frame, np.float32)
        gray = frame.mean(axis=2) if frame.ndim == 3 else frame
        if gray.std() < 1.0:
            return None
        return np.full(self.dim, frame.mean() / 255.0, np.float32)


@pytest.fixture
def face_featurizer(monkeypatch):
    """The real featurizer where OpenCV has Haar cascades, else :class:`StubFace`."""
    from hrlf.runtime import featurizers as fz

    if HAAR_SKIP:
        monkeypatch.setattr(fz, "make_vision", lambda name=HAARFACE.name, **kw: StubFace())
        return "stub"
    return "haar"


@pytest.fixture
def stub_face(monkeypatch):
    """Always the stub (live-capture plumbing tests do not need face detection)."""
    from hrlf.runtime import featurizers as fz

    monkeypatch.setattr(fz, "make_vision", lambda name=HAARFACE.name, **kw: StubFace())


class FakeCapture:
    """A ``cv2.VideoCapture`` stand-in: ``script`` says per read whether a frame comes.

    Frames are random (std > 0) 32x32 BGR images; after the script ends reads fail forever
    (an unplugged device). ``period_s`` paces reads like a camera does.
    """

    def __init__(self, n_ok: int, period_s: float = 0.002):
        self.n_ok, self.period_s, self.reads, self.released = n_ok, period_s, 0, False
        self.rng = np.random.default_rng(self.n_ok)

    def isOpened(self):
        return True

    def read(self):
        time.sleep(self.period_s)
        self.reads += 1
        if self.reads <= self.n_ok:
            return True, self.rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
        return False, None

    def grab(self):
        return self.read()[0]

    def release(self):
        self.released = True


class FakeStream:
    """A ``sounddevice.InputStream`` stand-in: a thread calls ``callback`` with 100 ms blocks
    of a 200 Hz tone until ``blocks`` have been delivered, then goes inactive (device lost)."""

    def __init__(self, callback, blocks: int, rate: int = 16000):
        self.callback, self.blocks, self.rate = callback, blocks, rate
        self.active, self.closed = False, False
        self._t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.active = True
        self._t.start()

    def _run(self):
        n = self.rate // 10
        for b in range(self.blocks):
            if self.closed:
                return
            t = (np.arange(n) + b * n) / self.rate
            self.callback((0.3 * np.sin(2 * np.pi * 200 * t))[:, None].astype(np.float32), n,
                          None, None)
            time.sleep(0.002)
        self.active = False

    def close(self):
        self.closed, self.active = True, False


def wait_for(pred, timeout_s: float = 10.0, step_s: float = 0.02) -> bool:
    """Poll ``pred`` until it is true or ``timeout_s`` passes."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step_s)
    return pred()


@pytest.fixture
def fakes():
    """Access to the fake classes and helpers from test modules."""
    return type("Fakes", (), {"Capture": FakeCapture, "Stream": FakeStream,
                              "wait_for": staticmethod(wait_for), "StubFace": StubFace})


@pytest.fixture(scope="session")
def capture_model(tmp_path_factory, make_student, write_run):
    """A small exported model on the capture featurizers (untrained weights, identity
    normalization, the default voice gate in its spec): what ``hrlf-run --stream
    mic|rtsp://|file:`` needs to produce result lines. Built once (the export takes ~10 s)."""
    pytest.importorskip("torch")
    from hrlf.export.api import export_model
    from hrlf.runtime import featurizers as fz
    from hrlf.runtime.spec import MODALITIES, ModelSpec

    names = fz.default_names()
    feats = {m: fz.modality_spec(names[m], 2.0) for m in MODALITIES}
    norm = {m: {"mean": (0.0,) * f.dim, "std": (1.0,) * f.dim} for m, f in feats.items()}
    spec = ModelSpec(features=feats, window_s=2.0, hop_s=1.0, norm=norm,
                     data={"source": "capture-test", "sha256": "0" * 64})
    root = tmp_path_factory.mktemp("capture_model")
    net = make_student(0, dims={m: f.dim for m, f in feats.items()})
    run = write_run(root / "run", net, spec)
    export_model(run, root / "model", fp16=False)
    return str(root / "model")
