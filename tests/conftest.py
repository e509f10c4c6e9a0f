"""Shared fixtures and markers. Skip reasons are computed once, here."""
from __future__ import annotations

import os
import pathlib
import re

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


# ---- a small exported model, built once per session (the dynamo export takes ~10 s) ----
EXPORT_DIMS = {"text": 8, "audio": 6, "vision": 5}


@pytest.fixture(scope="session")
def export_spec():
    """Spec of a small synthetic dataset: frames per window 8 / 40 / 20."""
    from hrlf.runtime.synthetic import SyntheticConfig, make_synthetic

    ds = make_synthetic(SyntheticConfig(videos={"train": 4, "valid": 2, "test": 2},
                                        duration_s=6.0, dims=EXPORT_DIMS))
    return ds.spec(ds.splits["train"].norm())


@pytest.fixture(scope="session")
def make_student():
    """Factory: a small student whose scores span the output range (an untrained head
    outputs ~0 everywhere, which would make parity trivially true)."""
    import torch

    from hrlf.train.model import HRLFNet, ModelConfig

    def make(seed: int = 0, dims: dict | None = None):
        torch.manual_seed(seed)
        net = HRLFNet(ModelConfig(dims=dict(dims or EXPORT_DIMS), d=16, heads=2, layers=2)).eval()
        with torch.no_grad():
            for name, p in net.named_parameters():
                if name.startswith(("fc", "head")):
                    p.mul_(3.0)
        return net
    return make


@pytest.fixture(scope="session")
def write_run():
    """Factory: write RUN_DIR = student.pt + spec.json (what hrlf-train leaves)."""
    from hrlf.train.checkpoint import save_network

    def write(run, net, spec):
        run.mkdir(parents=True, exist_ok=True)
        save_network(run / "student.pt", net, role="student")
        spec.save(run / "spec.json")
        return run
    return write


@pytest.fixture(scope="session")
def student(make_student):
    return make_student(0)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, write_run, student, export_spec):
    return write_run(tmp_path_factory.mktemp("run") / "run", student, export_spec)


@pytest.fixture(scope="session")
def exported(tmp_path_factory, run_dir):
    """export_model(fp16=True, triton=...) once: (report, MODEL_DIR, Triton REPO)."""
    from hrlf.export.api import export_model

    root = tmp_path_factory.mktemp("exported")
    report = export_model(run_dir, root / "model", fp16=True, triton=root / "triton",
                          max_batch=8)
    return report, root / "model", root / "triton"


@pytest.fixture(scope="session")
def onnx_model(exported):
    import onnx

    return onnx.load(str(exported[1] / "model.onnx"))


#: an error line in the text log format: ``<tool> ERROR <message>`` (hrlf.runtime.logs)
ERROR_LINE = re.compile(r"^(hrlf-(run|train|eval|export)|reproduce|realmedia|heads|triton_server) ERROR \S")


def is_error_line(line: str, tool: str | None = None) -> bool:
    """``line`` is an ERROR log line (of ``tool``, when given)."""
    return bool(ERROR_LINE.match(line)) and (tool is None or line.startswith(tool + " "))


def one_line_error(res, *needles, code=1):
    """A CliRunner result that failed (exit ``code``: 1 a user error, 2 a usage mistake)
    with exactly one ``TOOL ERROR`` line naming each needle; returns that line."""
    assert res.exit_code == code, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and is_error_line(lines[0]), res.output
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def zero_feeds(spec, n: int) -> dict:
    """A batch of ``n`` all-zero windows with every frame and modality present (the model's
    input names and shapes from ``spec``)."""
    import numpy as np

    feeds = {}
    for m in ("text", "audio", "vision"):
        t = spec.frames(m)
        feeds[m] = np.zeros((n, t, spec.dim(m)), np.float32)
        feeds[f"{m}_mask"] = np.ones((n, t), np.float32)
    feeds["modality_mask"] = np.ones((n, 3), np.float32)
    return feeds


@pytest.fixture
def tiny_fs(tmp_path):
    """Factory: a tmpfs of ``size_kb`` KiB mounted in tmp_path (a full disk on demand);
    unmounted at teardown. Skips where mounting is not allowed (not root, no
    CAP_SYS_ADMIN in a container)."""
    import subprocess

    mounted = []

    def make(size_kb: int = 64):
        where = tmp_path / f"tiny{len(mounted)}"
        where.mkdir()
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0777", "tmpfs",
                            str(where)], capture_output=True, text=True)
        if p.returncode != 0:
            why = p.stderr.strip() or "not root"
            pytest.skip(f"cannot mount a tmpfs for a full-disk test ({why}); run the tests as "
                        "root to include it")
        mounted.append(where)
        return where

    yield make
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(folder, leave_bytes: int = 0) -> None:
    """Fill the file system of ``folder`` until about ``leave_bytes`` are free."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(os.path.join(folder, "filler"), "wb") as f:
        f.write(b"\0" * max(0, free - leave_bytes))
