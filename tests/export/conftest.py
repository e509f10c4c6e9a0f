"""Export fixtures: one small run, exported once per test session (the dynamo export
takes ~10 s, so every test that can reuses it)."""
from __future__ import annotations

import pytest

DIMS = {"text": 8, "audio": 6, "vision": 5}


@pytest.fixture(scope="session")
def export_spec():
    """Spec of a small synthetic dataset: frames per window 8 / 40 / 20."""
    from hrlf.runtime.synthetic import SyntheticConfig, make_synthetic

    ds = make_synthetic(SyntheticConfig(videos={"train": 4, "valid": 2, "test": 2},
                                        duration_s=6.0, dims=DIMS))
    return ds.spec(ds.splits["train"].norm())


@pytest.fixture(scope="session")
def make_student():
    """Factory: a small student whose scores span the output range (an untrained head
    outputs ~0 everywhere, which would make parity trivially true)."""
    import torch

    from hrlf.train.model import HRLFNet, ModelConfig

    def make(seed: int = 0, dims: dict | None = None):
        torch.manual_seed(seed)
        net = HRLFNet(ModelConfig(dims=dict(dims or DIMS), d=16, heads=2, layers=2)).eval()
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
