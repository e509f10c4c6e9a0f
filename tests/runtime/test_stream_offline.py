"""Streaming equals offline: replaying the MOSI test split through hrlf-run's session under a
condition reproduces hrlf-eval's per-clip scores and metrics for that condition."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from hrlf.runtime.backends.base import open_backend
from hrlf.runtime.metrics import regression_metrics
from hrlf.runtime.runner import Runner
from hrlf.runtime.session import Session, SessionConfig
from hrlf.runtime.sources import open_source
from hrlf.runtime.spec import ModelSpec


@pytest.fixture(scope="module")
def mosi_run(tmp_path_factory, mosi_path, make_student, write_run):
    """A MOSI-shaped student (scores spread over the range), exported and evaluated."""
    from hrlf.export.api import export_model
    from hrlf.runtime.datasets import MOSI_DIMS, load_mosi
    from hrlf.train.cli import eval_main

    ds = load_mosi(mosi_path)
    spec = ds.spec(ds.splits["train"].norm())
    root = tmp_path_factory.mktemp("mosi")
    run = write_run(root / "run", make_student(1, dims=MOSI_DIMS), spec)
    export_model(run, root / "model", fp16=False)
    r = CliRunner().invoke(eval_main, [str(run), "--data", mosi_path, "--out",
                                       str(root / "eval"), "--no-plots"])
    assert r.exit_code == 0, r.output
    return root / "model", root / "eval", mosi_path


@pytest.mark.parametrize("cond", ["lav", "la", "v"])
def test_replay_reproduces_eval(mosi_run, cond):
    model_dir, eval_dir, mosi_path = mosi_run
    spec = ModelSpec.load(model_dir)
    offline = np.load(eval_dir / "predictions.npz")
    want = json.load(open(eval_dir / "eval.json"))["models"]["run"][cond]  # keyed by RUN_DIR name
    session = Session(open_backend("ort", str(model_dir), spec, precision="fp32"), spec,
                      SessionConfig(condition=cond))
    lines = []
    runner = Runner(open_source(f"replay:{mosi_path}#test", spec), session, lines.append,
                    stats_every_s=0, log=open("/dev/null", "w"))
    st = runner.run()
    out = [json.loads(x) for x in lines]
    assert [o["segment"] for o in out] == list(range(752))
    scores = np.array([o["score"] for o in out])
    np.testing.assert_allclose(scores, offline[f"score_{cond}"], atol=1e-4, rtol=0)
    got = regression_metrics(scores, offline["label"])
    for k in ("f1", "acc2", "f1_has0", "acc2_has0", "acc7", "mae", "corr"):
        assert got[k] == pytest.approx(want[k], abs=1e-4), k
    assert st["vs_truth"]["mae"] == pytest.approx(want["mae"], abs=1e-4)
    assert st["accounting_ok"] and st["used"] == 752 * len(cond)
