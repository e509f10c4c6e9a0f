"""Fixtures for the training tests: a tiny config and one tiny trained RUN_DIR."""
from __future__ import annotations

import json

import numpy as np
import pytest

TINY = {"synthetic": {"videos": {"train": 6, "valid": 2, "test": 2}, "duration_s": 8.0},
        "model": {"layers": 1}, "batch_size": 16, "early_stop": 5}


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory) -> str:
    """Path of a JSON config for a seconds-long synthetic run."""
    p = tmp_path_factory.mktemp("cfg") / "tiny.json"
    p.write_text(json.dumps(TINY))
    return str(p)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_config) -> str:
    """A RUN_DIR trained for one epoch on tiny synthetic data via the CLI."""
    from click.testing import CliRunner

    from hrlf.train.cli import train_main

    out = tmp_path_factory.mktemp("runs") / "run"
    res = CliRunner().invoke(train_main, ["--data", "synthetic", "--out", str(out), "--epochs",
                                          "1", "--config", tiny_config, "--quiet"])
    assert res.exit_code == 0, res.output
    return str(out)


def fake_mosi(path, n=(12, 6, 8), bad: str | None = None) -> str:
    """A small npz with the MOSI layout (random features); ``bad`` array gets a NaN."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, k in zip(("train", "valid", "test"), n):
        for m, d in (("text", 100), ("audio", 73), ("vision", 100)):
            arrays[f"{split}_{m}"] = rng.normal(size=(k, d)).astype(np.float32)
        arrays[f"{split}_label"] = rng.uniform(-3, 3, k).astype(np.float32)
        arrays[f"{split}_video"] = np.array([f"v{split}{i // 3}" for i in range(k)])
        arrays[f"{split}_clip"] = np.array([f"v{split}{i // 3}_{i}" for i in range(k)])
    if bad:
        arrays[bad][0, 0] = np.nan
    np.savez(path, **arrays)
    return str(path)
