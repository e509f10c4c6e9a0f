"""Shared fixtures and markers. Skip reasons are computed once, here."""
from __future__ import annotations

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
MOSI_DEFAULT = REPO.parent / "shared" / "data" / "mosi" / "mosi_utterance.npz"


def _gpu_reason() -> str | None:
    try:
        from cuda.bindings import driver  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cuda as driver  # older cuda-python
        except ImportError:
            return "cuda-python is not installed"
    try:
        err, = driver.cuInit(0)[:1]
        if int(err) != 0:
            return f"no CUDA driver/GPU on this machine (cuInit: {err})"
        err, n = driver.cuDeviceGetCount()
        return None if int(err) == 0 and n > 0 else "no CUDA GPU on this machine"
    except Exception as e:  # a missing libcuda raises from inside the binding
        return f"no CUDA driver on this machine ({type(e).__name__})"


def _trt_reason() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except Exception as e:
        return (f"tensorrt cannot be imported ({type(e).__name__}); its library wheels are not "
                "installable on this machine")
    return None


GPU_SKIP = _gpu_reason()
TRT_SKIP = _trt_reason()


def pytest_collection_modifyitems(config, items):
    slow_ok = os.environ.get("HRLF_SLOW") == "1" or config.getoption("-m") in ("slow",)
    for item in items:
        # markers, not keywords: a folder named tests/gpu must not count as the marker
        if item.get_closest_marker("gpu") and GPU_SKIP:
            item.add_marker(pytest.mark.skip(reason=GPU_SKIP))
        if item.get_closest_marker("trt") and TRT_SKIP:
            item.add_marker(pytest.mark.skip(reason=TRT_SKIP))
        if item.get_closest_marker("slow") and not slow_ok:
            item.add_marker(pytest.mark.skip(reason="slow test; run with HRLF_SLOW=1 or -m slow"))


@pytest.fixture(scope="session")
def mosi_path() -> str:
    """The shared CMU-MOSI npz (HRLF_DATA overrides); skips only when the file is absent."""
    p = os.environ.get("HRLF_DATA") or str(MOSI_DEFAULT)
    if os.path.isdir(p):
        p = os.path.join(p, "mosi_utterance.npz")
    if not os.path.isfile(p):
        pytest.skip(f"MOSI data not found at {p} (set HRLF_DATA)")
    return p


@pytest.fixture(scope="session")
def tiny_synthetic():
    """A small synthetic dataset (seconds to build) for fast tests."""
    from hrlf.runtime.synthetic import SyntheticConfig, make_synthetic

    cfg = SyntheticConfig(videos={"train": 16, "valid": 4, "test": 4}, duration_s=12.0)
    return make_synthetic(cfg)
