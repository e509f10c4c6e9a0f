"""Triton under faults, on loopback with the real tritonserver: frozen (SIGSTOP), killed,
restarted on the same port, restarted on a repository whose model.onnx was swapped, and
the serving wrapper stopped by SIGTERM. ``hrlf-run --backend triton`` is fed through stdin
by the test, so each fault lands between known frames; every wait is bounded.

What must hold: the stream survives every outage (windows of failed calls are counted as
``backend_error``, later windows are scored again after a reconnect), the run ends with a
summary, a swapped model is never scored, and nothing is left listening or on disk.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from hrlf.export.triton import PYTHON_MODEL
from hrlf.export.triton_server import INSTALL_HINT, TritonServer, default_env, free_port
from tests.conftest import is_error_line, EXPORT_DIMS

ENV = default_env()
pytestmark = pytest.mark.skipif(
    not os.path.isfile(os.path.join(ENV, "bin", "python")),
    reason=f"no tritonserver environment at {ENV}; {INSTALL_HINT}")
HRLF_RUN = os.path.join(os.path.dirname(sys.executable), "hrlf-run")
RATES = {"text": 4, "audio": 20, "vision": 10}
HANG_S = 120.0  # hang detectors, not timing asserts


def frames(t0: float, t1: float) -> str:
    """JSON lines of every modality's frames in [t0, t1), in time order."""
    ev = []
    for m, rate in RATES.items():
        k0, k1 = int(round(t0 * rate)), int(round(t1 * rate))
        ev += [((k + 0.5) / rate, m) for k in range(k0, k1)]
    return "".join(json.dumps({"t": t, "modality": m, "x": [0.1] * EXPORT_DIMS[m]}) + "\n"
                   for t, m in sorted(ev))


class Run:
    """hrlf-run --stream stdin --pace fast (a dump: windows scored as frames arrive, not by
    the wall clock) --backend triton, its stdout lines collected as they come."""

    def __init__(self, model_dir, url, *extra):
        self.proc = subprocess.Popen(
            [HRLF_RUN, str(model_dir), "--stream", "stdin", "--backend", "triton",
             "--triton-url", url, "--triton-timeout", "1", "--stats-every", "0", "--pace", "fast",
             *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"})
        self.lines: list = []
        self.err: list = []
        self.t = 0.0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.err.append(self.proc.stderr.read()),
                         daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(json.loads(line))

    def feed(self, seconds: float) -> None:
        self.proc.stdin.write(frames(self.t, self.t + seconds))
        self.proc.stdin.flush()
        self.t += seconds

    def feed_until_scored(self, what: str) -> None:
        """Feed a second at a time until a new line arrives (the backend answers again)."""
        n, end = len(self.lines), time.monotonic() + HANG_S
        while time.monotonic() < end:
            self.feed(1.0)
            wait_until(lambda: len(self.lines) > n, 3.0, raise_=False)
            if len(self.lines) > n:
                return
        pytest.fail(f"no result after {what}")

    def finish(self, close_stdin: bool = True) -> tuple[int, str, dict]:
        if close_stdin:
            self.proc.stdin.close()
        self.proc.wait(HANG_S)
        wait_until(lambda: self.err, 10.0)
        err = self.err[0]
        summary = json.loads([x for x in err.splitlines() if x.startswith('{"summary"')][-1])
        return self.proc.returncode, err, summary["summary"]


def wait_until(cond, timeout_s: float, raise_: bool = True) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    if raise_:
        raise AssertionError("timed out")
    return False


@pytest.fixture(scope="module")
def swapped_repo(exported, tmp_path_factory):
    """A copy of the repository whose model.onnx has other weights: (as swapped, with its
    config.pbtxt's onnx_sha256 made to match the new file)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from hrlf.runtime.spec import sha256_file

    root = tmp_path_factory.mktemp("swapped")
    swapped, consistent = root / "swapped", root / "consistent"
    shutil.copytree(exported[2], swapped)
    path = swapped / PYTHON_MODEL / "1" / "model.onnx"
    model = onnx.load(str(path))
    init = next(i for i in model.graph.initializer
                if i.data_type == 1 and numpy_helper.to_array(i).size > 8)
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + np.float32(0.5),
                                          init.name))
    onnx.save(model, str(path))
    shutil.copytree(swapped, consistent)
    cfg = consistent / PYTHON_MODEL / "config.pbtxt"
    old = json.loads((exported[1] / "spec.json").read_text())["artifacts"]["model.onnx"]
    old = old["sha256"] if isinstance(old, dict) else old
    cfg.write_text(cfg.read_text().replace(old, sha256_file(path)))
    return swapped, consistent


def test_stream_survives_freeze_kill_restart_and_refuses_a_swapped_model(exported,
                                                                         swapped_repo):
    srv = TritonServer(str(exported[2]), (PYTHON_MODEL,)).start()
    port = srv.grpc_port
    run = Run(exported[1], srv.grpc_url)
    servers = [srv]
    try:
        run.feed_until_scored("start-up")
        os.killpg(srv.proc.pid, signal.SIGSTOP)  # frozen: calls time out after 1 s
        run.feed(3.0)
        time.sleep(3.0)  # the frozen windows time out (1 s), the next ones fail at once
        os.killpg(srv.proc.pid, signal.SIGCONT)
        run.feed_until_scored("SIGCONT")
        os.killpg(srv.proc.pid, signal.SIGKILL)  # killed: connection refused
        srv.proc.wait(30)
        run.feed(2.0)
        srv = TritonServer(str(exported[2]), (PYTHON_MODEL,)).start(grpc_port=port)
        servers.append(srv)
        run.feed_until_scored("a restart on the same port")
        scored_before_swap = len(run.lines)
        srv.stop(signal.SIGKILL)
        srv = TritonServer(str(swapped_repo[1]), (PYTHON_MODEL,)).start(grpc_port=port)
        servers.append(srv)
        run.feed(6.0)  # every call now answers with another model's sha256: refused
        code, err, st = run.finish()
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
        for s in servers:
            s.stop(signal.SIGKILL)
    assert code == 0 and "Traceback" not in err, err
    assert st["accounting_ok"] and st["pending"] == 0
    assert st["segments_dropped"]["backend_error"] >= 3, st
    assert st["segments"] == len(run.lines) == scored_before_swap
    assert "serves ONNX" in err and "is back after" in err
    segs = [r["segment"] for r in run.lines]
    assert segs == sorted(set(segs))  # in order, none twice


def test_sigterm_during_a_stall_ends_with_the_summary(exported):
    with TritonServer(str(exported[2]), (PYTHON_MODEL,)) as srv:
        run = Run(exported[1], srv.grpc_url)
        run.feed_until_scored("start-up")
        os.killpg(srv.proc.pid, signal.SIGSTOP)
        try:
            run.feed(3.0)
            time.sleep(0.5)  # the run is inside a call to the frozen server
            run.proc.send_signal(signal.SIGTERM)
            code, err, st = run.finish(close_stdin=False)
        finally:
            os.killpg(srv.proc.pid, signal.SIGCONT)
            if run.proc.poll() is None:
                run.proc.kill()
    assert code == 0 and "SIGTERM: stopping" in err and "Traceback" not in err, err
    assert st["accounting_ok"] and st["segments_dropped"].get("backend_error", 0) >= 1


def test_on_backend_error_stop_ends_with_summary_and_one_error(exported):
    with TritonServer(str(exported[2]), (PYTHON_MODEL,)) as srv:
        run = Run(exported[1], srv.grpc_url, "--on-backend-error", "stop")
        run.feed_until_scored("start-up")
        os.killpg(srv.proc.pid, signal.SIGSTOP)
        try:
            run.feed(4.0)
            code, err, st = run.finish()
        finally:
            os.killpg(srv.proc.pid, signal.SIGCONT)
    errors = [x for x in err.splitlines() if is_error_line(x)]
    assert code == 1 and len(errors) == 1 and "on_backend_error='stop'" in errors[0], err
    assert st["segments"] >= 1 and st["segments_dropped"]["backend_error"] >= 1


def _hrlf_run_one_line(model_dir, url):
    p = subprocess.run([HRLF_RUN, str(model_dir), "--backend", "triton", "--triton-url", url,
                        "--pace", "fast"], capture_output=True, text=True, timeout=HANG_S)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 1 and len(lines) == 1 and is_error_line(lines[0]), p.stderr
    return lines[0]


def test_swapped_model_file_never_serves(exported, swapped_repo):
    """The file alone swapped: model.py refuses to load it and the client says why. File
    and config both changed: the model loads, and the client refuses what it reports."""
    import tritonclient.grpc as grpcclient

    swapped, consistent = swapped_repo
    with TritonServer(str(swapped), ()) as srv:
        with pytest.raises(Exception, match="the file was replaced"):
            grpcclient.InferenceServerClient(srv.grpc_url).load_model(PYTHON_MODEL)
        line = _hrlf_run_one_line(exported[1], srv.grpc_url)
        assert "is not ready" in line and "the file was replaced" in line
    with TritonServer(str(consistent), (PYTHON_MODEL,)) as srv:
        line = _hrlf_run_one_line(exported[1], srv.grpc_url)
        assert "serves ONNX" in line and "spec.json is for" in line


#: 127.0.0.1, ::1 and ::ffff:127.0.0.1 as /proc/net/tcp{,6} write them
LOOPBACK = ("0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F")


def ours(tmp) -> list[str]:
    """Temp entries of the wrapper (onnxruntime inside the server writes its own .ses)."""
    return [e for e in os.listdir(tmp) if e.startswith("hrlf-triton-")]


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} writes them) listening on ``port``."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                out.append(local.split(":")[0])
    return out


def test_serving_wrapper_binds_loopback_forwards_sigterm_and_cleans_up(exported, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    grpc, http, metrics = free_port(), free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hrlf.export.triton_server", str(exported[2]),
                             "--grpc-port", str(grpc), "--http-port", str(http),
                             "--metrics-port", str(metrics)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env={**os.environ, "TMPDIR": str(tmp)})
    try:
        line = proc.stderr.readline()  # the one log format: TOOL LEVEL message, on stderr
        assert line.startswith(f"triton_server INFO serving {exported[2]} at 127.0.0.1:{grpc}"), \
            (line, proc.stderr)
        for port in (grpc, http, metrics):  # every endpoint on loopback only
            wait_until(lambda: _listening(port), 30.0)  # HTTP/metrics may bind after gRPC
            addrs = _listening(port)
            assert addrs and all(a in LOOPBACK for a in addrs), (port, addrs)
        assert ours(tmp)  # the server's private backend folder
        proc.send_signal(signal.SIGTERM)
        proc.wait(HANG_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read()
    assert proc.returncode == 0 and "SIGTERM: tritonserver stopped" in err, err
    assert ours(tmp) == []  # no temp folder left
    for port in (grpc, http, metrics):  # nothing listening any more
        assert not _listening(port)
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0


def test_serving_wrapper_rejects_a_bad_port_in_one_line(exported):
    p = subprocess.run([sys.executable, "-m", "hrlf.export.triton_server", str(exported[2]),
                        "--grpc-port", "70000"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "'--grpc-port': 70000 is not in the range" in p.stderr
    assert p.stderr.startswith("triton_server ERROR ") and len(p.stderr.splitlines()) == 1
    assert "Traceback" not in p.stderr
