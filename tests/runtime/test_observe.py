"""Metrics, health and the live page (hrlf.runtime.observe) without a Prometheus server:
off means no port and no hook on the hot path; on, the scrape equals the stats; per-stream
labels stop at the cap; /readyz says why; systemd hears READY=1 and WATCHDOG=1."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from hrlf.runtime.cli import main as run_main
from hrlf.runtime.errors import BackendUnavailable, InputError
from hrlf.runtime.observe import redact
from hrlf.runtime.observe.observer import LATENCY_BUCKETS_S, Histogram
from tests.conftest import is_error_line
from tests.runtime.observe_util import get, listening_ports, samples, wait_until

HRLF_RUN = os.path.join(os.path.dirname(sys.executable), "hrlf-run")


def test_metrics_off_opens_no_port_and_hooks_nothing():
    proc = subprocess.Popen([HRLF_RUN, "--duration", "4", "--stats-every", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # a result: the run is streaming
        assert first.startswith("{"), proc.stderr.read()
        assert listening_ports(proc.pid) == []
    finally:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "metrics" not in err
    from hrlf.runtime.api import open_runner

    runner = open_runner("demo", "demo", pace="fast", duration_s=2)
    runner.run()
    assert runner.observer is None and runner.session.observer is None
    assert runner.session._guard.on_call is None


def test_runtime_runs_without_prometheus_client_when_metrics_are_off():
    code = ("import sys; sys.modules['prometheus_client'] = None\n"
            "from hrlf.runtime.cli import main\n"
            "try:\n    main(['--pace', 'fast', '--duration', '2', '--stats-every', '0'])\n"
            "except SystemExit as e:\n    assert e.code == 0, e.code\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("\n") >= 1


def test_metrics_port_without_prometheus_client_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    res = CliRunner().invoke(run_main, ["--metrics-port", "0"])
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 1 and len(lines) == 1 and is_error_line(lines[0], "hrlf-run")
    assert "pip install 'hrlf[metrics]'" in lines[0], lines


def test_metrics_port_in_use_is_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = CliRunner().invoke(run_main, ["--metrics-port", str(port)])
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 1 and len(lines) == 1, res.output
    assert f"127.0.0.1:{port} is in use; choose another port" in lines[0]


def test_hrlf_run_scrape_equals_its_summary_and_probes_answer():
    proc = subprocess.Popen([HRLF_RUN, "--metrics-port", "0", "--duration", "6", "--stats-every",
                             "0", "--drop", "audio:1-3", "--metrics-linger", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert line.startswith("hrlf-run INFO metrics, health and live view at http://127.0.0.1:")
        url = line.split(" at ")[1].split()[0]
        assert wait_until(lambda: get(url + "readyz")[0] == 200, 30.0)
        ready = json.loads(get(url + "readyz")[1])
        assert [c["name"] for c in ready["checks"]] == ["model", "backend", "stream"]
        assert json.loads(get(url + "healthz")[1]) == {"live": True, "detail": "alive"}
        page = get(url)[1].decode()
        assert '<script src="live.js">' in page and "http" not in page.split("<footer")[0]
        assert get(url + "live.js")[0] == 200 and get(url + "nope")[0] == 404
        live = wait_until(lambda: (d := json.loads(get(url + "api/live")[1]))["streams"] and d,
                          30.0)  # the first window is due after 2 s
        assert live["kind"] == "run" and live["streams"][0]["name"] == "demo"
        assert live["streams"][0]["points"][0][2] == "tav"
        while not (last := proc.stderr.readline()).startswith('{"summary"'):
            assert last, "hrlf-run ended without a summary"
        s = samples(url + "metrics")  # the run ended; it lingers until this scrape
    finally:
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    summary = json.loads(last)["summary"]
    assert s[("hrlf_frames_received_total", ())] == summary["received"]
    assert s[("hrlf_segments_total", ())] == summary["segments"]
    assert s[("hrlf_frames_dropped_total", (("reason", "drop_schedule"),))] == \
        summary["dropped"]["drop_schedule"]
    assert s[("hrlf_stream_segments_total", (("stream", "demo"),))] == summary["segments"]
    assert s[("hrlf_ready", ())] == 0  # finished: not ready any more
    assert s[("hrlf_latency_seconds_count", (("stage", "total"),))] == summary["segments"]
    assert ("process_cpu_seconds_total", ()) in s


class Flaky:
    """A backend that is unreachable while ``down`` is set (a dead server)."""

    def __init__(self, inner):
        self.inner, self.down = inner, False
        self.name, self.spec, self.max_batch = inner.name, inner.spec, inner.max_batch

    def run(self, feeds):
        if self.down:
            raise BackendUnavailable("triton: server gone; check the server")
        return self.inner.run(feeds)

    def close(self):
        self.inner.close()


def _hub(n_streams: int, labels: int, backend=None):
    from hrlf.runtime.backends.base import open_backend
    from hrlf.runtime.hub import Hub, HubConfig
    from hrlf.runtime.session_config import SessionConfig
    from hrlf.runtime.spec import ModelSpec
    from hrlf.runtime.assets import demo_model_dir

    spec = ModelSpec.load(demo_model_dir())
    be = backend or Flaky(open_backend("ort", demo_model_dir(), spec))
    hub = Hub(be, spec, HubConfig(metrics_port=0, metrics_streams=labels,
                                  stream=SessionConfig(live=False)))
    return hub.start(), [hub.add_stream(f"s{i}") for i in range(n_streams)], be


def _feed(hub, streams, t0: float, t1: float) -> None:
    rng = np.random.default_rng(int(t0))
    for m, hz in (("text", 4), ("audio", 20), ("vision", 10)):
        ts = np.arange(t0, t1, 1 / hz)
        xs = rng.standard_normal((len(ts), hub.spec.dim(m))).astype(np.float32)
        for s in streams:
            s.push_many(m, ts, xs)
    hub.advance()


def test_hub_scrape_equals_stats_and_labels_stop_at_the_cap():
    hub, streams, be = _hub(5, labels=4)
    try:
        _feed(hub, streams, 0.0, 6.0)
        url = hub.observe.url
        s = samples(url + "metrics")
        assert not any(k[0].startswith("hrlf_stream_") for k in s)  # 5 streams > cap 4
        hub.remove(streams[0])  # 4 open: per-stream series, the removed one in the totals
        s = samples(url + "metrics")
        st = hub.stats()
        assert s[("hrlf_frames_received_total", ())] == st["received"] > 0
        assert s[("hrlf_segments_total", ())] == st["segments"] > 0
        assert s[("hrlf_streams", ())] == 4 and s[("hrlf_streams_removed_total", ())] == 1
        per = {dict(k[1])["stream"]: v for k, v in s.items() if k[0] == "hrlf_stream_segments_total"}
        assert sorted(per) == ["s1", "s2", "s3", "s4"]
        assert sum(per.values()) + streams[0].stats()["segments"] == st["segments"]
        assert s[("hrlf_modality_present_total", (("modality", "audio"),))] == st["segments"]
        assert s[("hrlf_backend_batch_size_count", ())] == st["calls"]
        assert s[("hrlf_backend_batch_size_sum", ())] == st["rows"]
        assert s[("hrlf_build_info", (("backend", be.name), ("kind", "hub"),
                                      ("version", __import__("hrlf").__version__)))] == 1
    finally:
        hub.close()
    with pytest.raises(OSError):  # closed: nothing listens any more
        socket.create_connection(("127.0.0.1", hub.observe.port), timeout=2).close()


def test_readyz_says_why_during_a_backend_outage_and_recovers():
    hub, streams, be = _hub(2, labels=32)
    try:
        url = hub.observe.url
        assert get(url + "readyz")[0] == 200
        be.down = True
        _feed(hub, streams, 0.0, 4.0)
        code, body = get(url + "readyz")
        checks = {c["name"]: c for c in json.loads(body)["checks"]}
        assert code == 503 and not checks["backend"]["ok"] and checks["worker"]["ok"]
        assert "unreachable: triton: server gone" in checks["backend"]["detail"]
        s = samples(url + "metrics")
        assert s[("hrlf_backend_up", ())] == 0 and s[("hrlf_backend_outages_total", ())] == 1
        assert s[("hrlf_segments_dropped_total", (("reason", "backend_error"),))] > 0
        be.down = False
        time.sleep(hub._guard.retry_after_s)
        _feed(hub, streams, 4.0, 8.0)
        assert get(url + "readyz")[0] == 200
        hub.observe.target.add_check("queue", lambda: (False, "full"))
        checks = json.loads(get(url + "readyz")[1])["checks"]
        assert checks[-1] == {"name": "queue", "ok": False, "detail": "full"}
    finally:
        hub.close()


def test_systemd_hears_ready_and_the_watchdog(tmp_path):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen([HRLF_RUN, "--duration", "4", "--stats-every", "0"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    got = []
    try:
        while "STOPPING=1" not in got:
            got.append(sock.recv(4096).decode())
    finally:
        proc.communicate(timeout=60)
        sock.close()
    assert proc.returncode == 0
    assert got[0] == "READY=1\nSTATUS=ready" or "READY=1\nSTATUS=ready" in got, got
    assert got.count("WATCHDOG=1") >= 3, got  # every 0.5 s for ~4 s


def test_histogram_buckets_and_redaction():
    h = Histogram(LATENCY_BUCKETS_S)
    values = [0.0005, 0.001, 0.0011, 0.3, 20.0]
    h.fold(values)
    buckets, total = h.snapshot()
    want = [sum(v <= b for v in values) for b in LATENCY_BUCKETS_S] + [len(values)]
    assert [c for _, c in buckets] == want and total == pytest.approx(sum(values))
    assert buckets[-1][0] == "+Inf" and buckets[0][0] == "0.001"
    assert redact("rtsp://admin:secret@10.0.0.5:554/cam") == "rtsp://10.0.0.5:554/cam"
    assert redact("file:/calls/a.wav") == "file:/calls/a.wav"


def test_hub_metrics_config_errors_are_one_line():
    from hrlf.runtime.hub import Hub, HubConfig

    with pytest.raises(InputError, match="metrics_streams=-1 must be a whole number"):
        Hub.load("demo", config=HubConfig(metrics_port=0, metrics_streams=-1)).start()
    with pytest.raises(InputError, match="is not an address of this machine"):
        Hub.load("demo", config=HubConfig(metrics_port=0, metrics_address="10.255.255.1")).start()
