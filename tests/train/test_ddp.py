import os
import shutil
import socket
import subprocess
import sys

import pytest

from hrlf.train.checkpoint import load_run


@pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(
    os.path.join(os.path.dirname(sys.executable), "torchrun")), reason="torchrun not installed")
def test_torchrun_two_processes(tmp_path, tiny_config):
    out = tmp_path / "ddp"
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as s:  # a free port: other test runs may hold torchrun's default
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run(
        [torchrun if os.path.exists(torchrun) else "torchrun", "--nnodes", "1",
         "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
         "--nproc_per_node", "2", "-m", "hrlf.train.cli", "--data", "synthetic", "--out",
         str(out), "--epochs", "1", "--config", tiny_config, "--quiet"],
        capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    net, spec = load_run(out)
    assert spec.metrics["model"] == "hrlf"
    import json

    log = json.load(open(out / "train_log.json"))
    assert len(log["student"]["history"]) == 1
    assert set(log["student"]["history"][0]["train"]) >= {"task", "hmi", "hal", "kd"}
