"""The repository that hrlf-export --triton writes, served by the real tritonserver.

The server is nvidia-pytriton's ``tritonserver`` (Python backend) from its own environment
(``tools/install_triton_server.sh``; .ci/run installs it), started here on loopback with
random free ports and killed at teardown.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from hrlf.export.triton import PYTHON_MODEL, config_pbtxt
from hrlf.export.triton_server import INSTALL_HINT, TritonServer, default_env, free_port
from hrlf.errors import BackendUnavailable
from tests.conftest import zero_feeds

ENV = default_env()
pytestmark = pytest.mark.skipif(
    not os.path.isfile(os.path.join(ENV, "bin", "python")),
    reason=f"no tritonserver environment at {ENV}; {INSTALL_HINT}")
HRLF_RUN = os.path.join(os.path.dirname(sys.executable), "hrlf-run")


@pytest.fixture(scope="module")
def server(exported):
    srv = TritonServer(str(exported[2]), (PYTHON_MODEL,))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def replay(tmp_path_factory, export_spec):
    """A 12 s synthetic recording of the exported model's spec, as a replay file."""
    from hrlf.runtime.stream_sources import save_replay
    from hrlf.runtime.synthetic import SyntheticConfig, generate_recordings
    from tests.conftest import EXPORT_DIMS

    rec = generate_recordings(SyntheticConfig(duration_s=12.0, dims=EXPORT_DIMS), "test", n=1)[0]
    path = tmp_path_factory.mktemp("replay") / "rec.npz"
    save_replay(str(path), rec)
    return path


def _hrlf_run(model_dir, *args):
    out = subprocess.run([HRLF_RUN, str(model_dir), "--stats-every", "0", *map(str, args)],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    return out


def test_streams_through_triton_equal_in_process(server, exported, replay):
    model_dir = exported[1]
    runs = {}
    for backend in ("ort", "triton"):
        out = _hrlf_run(model_dir, "--stream", f"replay:{replay}", "--backend", backend,
                        "--triton-url", server.grpc_url, "--drop", "audio:3-6")
        assert out.returncode == 0, out.stderr
        summary = json.loads(out.stderr.strip().splitlines()[-1])["summary"]
        runs[backend] = ([json.loads(x) for x in out.stdout.splitlines()], summary)
    (ort_res, ort_sum), (tri_res, tri_sum) = runs["ort"], runs["triton"]
    assert tri_res[0]["backend"] == "triton-hrlf_python" and len(tri_res) == len(ort_res) >= 10
    for a, b in zip(ort_res, tri_res):
        assert (a["segment"], a["modalities"], a["frames"]) == (b["segment"], b["modalities"],
                                                               b["frames"])
        assert abs(a["score"] - b["score"]) <= 1e-5
    assert tri_sum["accounting_ok"] and tri_sum["pending"] == 0
    assert tri_sum["received"] == tri_sum["used"] + sum(tri_sum["dropped"].values())
    assert tri_sum["dropped"] == ort_sum["dropped"] and tri_sum["dropped"]["drop_schedule"] > 0
    assert tri_sum["segments"] == ort_sum["segments"] == len(tri_res)


def test_batched_scores_equal_onnxruntime(server, exported, export_spec):
    """Batches above max_batch_size are split; every row equals onnxruntime within 1e-5."""
    from hrlf.runtime.backends.base import open_backend

    rng = np.random.default_rng(0)
    n, feeds = 13, {}
    for m in ("text", "audio", "vision"):
        t = export_spec.frames(m)
        feeds[m] = rng.normal(size=(n, t, export_spec.dim(m))).astype(np.float32)
        feeds[f"{m}_mask"] = (rng.random((n, t)) > 0.3).astype(np.float32)
    feeds["modality_mask"] = (rng.random((n, 3)) > 0.3).astype(np.float32)
    ort_be = open_backend("ort", str(exported[1]), export_spec)
    tri = open_backend("triton", str(exported[1]), export_spec, triton_url=server.grpc_url)
    assert tri.max_batch == 8  # the model's max_batch_size caps the client
    np.testing.assert_allclose(tri.run(feeds), ort_be.run(feeds), atol=1e-5, rtol=0)
    tri.close()


def test_server_view_of_every_generated_config(server, exported, export_spec, tmp_path):
    """hrlf_python loads; the onnxruntime and tensorrt configs pass the server's parsing and
    validation and fail only for the missing backend library (not on PyPI)."""
    import tritonclient.grpc as grpcclient
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    repo = exported[2]
    cfg = grpcclient.InferenceServerClient(server.grpc_url).get_model_config(
        PYTHON_MODEL, as_json=True)["config"]
    assert cfg["backend"] == "python" and cfg["max_batch_size"] == 8
    assert "dynamic_batching" in cfg and [i["name"] for i in cfg["input"]][-1] == "modality_mask"
    from hrlf.runtime.spec import ModelSpec

    sha = ModelSpec.load(exported[1]).artifacts["model.onnx"]
    assert cfg["parameters"]["onnx_sha256"]["string_value"] == sha
    trt = tmp_path / "repo"
    shutil.copytree(repo, trt)
    (trt / "hrlf_trt" / "1").mkdir(parents=True)
    (trt / "hrlf_trt" / "1" / "model.plan").write_bytes(b"\0")  # no GPU here to build one
    (trt / "hrlf_trt" / "config.pbtxt").write_text(
        config_pbtxt(export_spec, "hrlf_trt", "tensorrt_plan", 8))
    for name in ("hrlf_onnx", "hrlf_python", "hrlf_trt"):  # strict schema parse
        text_format.Parse((trt / name / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    with TritonServer(str(trt), (PYTHON_MODEL,)) as srv:
        client = grpcclient.InferenceServerClient(srv.grpc_url)
        for name, backend in (("hrlf_onnx", "onnxruntime"), ("hrlf_trt", "tensorrt")):
            with pytest.raises(Exception) as err:
                client.load_model(name)
            assert f"unable to find backend library for backend '{backend}'" in str(err.value)
        index = {m["name"]: m for m in client.get_model_repository_index(as_json=True)["models"]}
        assert index[PYTHON_MODEL]["state"] == "READY"


def test_bad_request_gets_its_own_error(server, exported, export_spec):
    """A malformed request is refused; the next good one is answered (the model lives)."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    from hrlf.runtime.backends.triton import TritonBackend

    be = TritonBackend(str(exported[1]), export_spec, url=server.grpc_url)
    feeds = zero_feeds(export_spec, 2)
    bad = [grpcclient.InferInput(k, list(v.shape), "FP32").set_data_from_numpy(v)
           for k, v in feeds.items() if k != "audio"]  # audio missing
    with pytest.raises(InferenceServerException):
        be.client.infer(PYTHON_MODEL, bad)
    assert be.run(feeds).shape == (2,)
    be.close()


def test_absent_server_is_one_line(exported):
    out = _hrlf_run(exported[1], "--backend", "triton", "--triton-url",
                    f"127.0.0.1:{free_port()}")
    assert out.returncode == 1
    assert out.stderr.startswith("hrlf-run ERROR triton: no server at 127.0.0.1:")
    assert len(out.stderr.strip().splitlines()) == 1


def test_reconnects_after_a_server_restart(exported, export_spec):
    """The server goes away: calls fail with one line after the timeout; it comes back on
    the same port: the same backend object scores again on a fresh channel."""
    from hrlf.runtime.backends.triton import TritonBackend

    feeds = zero_feeds(export_spec, 1)
    first = TritonServer(str(exported[2]), (PYTHON_MODEL,)).start()
    port = first.grpc_port
    be = TritonBackend(str(exported[1]), export_spec, url=first.grpc_url, timeout_s=1.0)
    want = be.run(feeds)
    first.stop()
    with pytest.raises(BackendUnavailable, match="^triton: inference on 'hrlf_python'"):
        be.run(feeds)
    second = TritonServer(str(exported[2]), (PYTHON_MODEL,))
    second.start(grpc_port=port)
    try:
        be.timeout_s = 10.0
        np.testing.assert_array_equal(be.run(feeds), want)
        assert be.reconnects >= 1
    finally:
        be.close()
        second.stop()


def test_session_and_hub_on_triton_equal_onnxruntime(server, exported):
    """Session.load(backend='triton') and a Hub of three streams on the server (one fed
    garbage too) give the in-process scores within 1e-5, with exact accounting."""
    from hrlf.runtime.hub import Hub, HubConfig
    from hrlf.runtime.session import Session, SessionConfig
    from hrlf.runtime.synthetic import SyntheticConfig, generate_recordings
    from tests.conftest import EXPORT_DIMS

    rec = generate_recordings(SyntheticConfig(duration_s=8.0, dims=EXPORT_DIMS), "test", n=1)[0]
    frames = sorted((t, m, x) for m in rec.times for t, x in zip(rec.times[m], rec.frames[m]))
    model_dir = str(exported[1])

    def session_scores(**opts):
        s = Session.load(model_dir, config=SessionConfig(), **opts)
        out = []
        for t, m, x in frames:
            s.push(m, float(t), x)
            out += s.advance()
        out += s.close()
        assert s.stats()["accounting_ok"]
        return np.array([r.score for r in out])

    want = session_scores(backend="ort")
    np.testing.assert_allclose(session_scores(backend="triton", triton_url=server.grpc_url),
                               want, atol=1e-5, rtol=0)
    hub = Hub.load(model_dir, backend="triton", triton_url=server.grpc_url,
                   config=HubConfig(max_batch=8, stream=SessionConfig()))
    streams = [hub.add_stream(f"s{i}") for i in range(3)]
    for t, m, x in frames:
        for s in streams:
            s.push(m, float(t), x)
        streams[2].push(m, float(t), np.full_like(x, np.nan))  # garbage: a repeat, NaN
        hub.step()
    got = {s.name: [r.score for r in s.close()] for s in streams}
    for s in streams:
        got[s.name] = [r.score for r in s.results(timeout_s=0)]
        np.testing.assert_allclose(got[s.name], want, atol=1e-5, rtol=0)
    stats = {p["stream"]: p for p in hub.removed_stats}
    assert all(p["accounting_ok"] for p in stats.values())
    assert stats["s2"]["dropped"] and not stats["s0"]["dropped"]
    assert hub.stats()["mean_batch"] > 1
    hub.close()
