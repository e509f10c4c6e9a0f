"""/readyz of ``hrlf-run`` on a real RTSP camera (GStreamer's server on loopback): ready
while it delivers, unready with the reason while the server is frozen (SIGSTOP), ready
again after it resumes; /healthz stays 200 throughout (reconnecting is not a hang)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.capture.test_live_media import rtsp_server  # noqa: F401 (the fixture)
from tests.runtime.observe_util import free_port, get, samples, wait_until

pytest.importorskip("prometheus_client")


def _ready(url: str):
    try:
        code, body = get(url + "readyz")
    except OSError:  # not listening yet
        return 0, {}
    return code, {c["name"]: c for c in json.loads(body)["checks"]}


def test_readyz_follows_a_frozen_rtsp_source(rtsp_server, capture_model):  # noqa: F811
    server, stream = rtsp_server
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "hrlf-run"), capture_model, "--stream",
         stream, "--duration", "120", "--stall-s", "2", "--asr", "off", "--stats-every", "0",
         "--metrics-port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: proc.poll() is not None or _ready(url)[0] == 200, 60.0,
                          0.5) and proc.poll() is None
        code, checks = _ready(url)
        assert checks["source:vision"]["detail"] == f"{stream}: delivering"
        server.signal(signal.SIGSTOP)  # frozen: the socket stays open, nothing arrives
        assert wait_until(lambda: _ready(url)[0] == 503, 30.0, 0.5)
        code, checks = _ready(url)
        detail = checks["source:vision"]["detail"]
        assert not checks["source:vision"]["ok"] and "stall" in detail, detail
        assert checks["model"]["ok"] and checks["backend"]["ok"]
        assert get(url + "healthz")[0] == 200
        s = samples(url + "metrics")
        assert s[("hrlf_source_connected", (("track", "vision"),))] == 0
        assert s[("hrlf_ready", ())] == 0
        server.signal(signal.SIGCONT)
        assert wait_until(lambda: _ready(url)[0] == 200, 90.0, 0.5), _ready(url)
        s = samples(url + "metrics")
        assert s[("hrlf_source_stalls_total", (("track", "vision"),))] >= 1
        assert s[("hrlf_source_reconnects_total", (("track", "vision"),))] >= 1
        assert s[("hrlf_source_connected", (("track", "vision"),))] == 1
    finally:
        server.signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
