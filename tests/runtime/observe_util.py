"""Real parts for the metrics tests: Debian's Prometheus and Chromium on loopback, what a
process listens on, and a hub fed in real time from the demo recording."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout_s: float, step_s: float = 0.1):
    """Poll ``cond`` until it returns something true (returned) or the deadline passes
    (returns the last falsy value)."""
    deadline = time.monotonic() + timeout_s
    while True:
        v = cond()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step_s)


def get(url: str, timeout_s: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def listening_ports(pid: int) -> list[int]:
    """TCP ports the process ``pid`` listens on (its socket inodes in /proc/net/tcp{,6})."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and cols[9] in inodes:
                    ports.append(int(cols[1].split(":")[1], 16))
    return ports


def samples(url: str) -> dict:
    """``{(name, ((label, value), ...)): value}`` of one /metrics scrape."""
    from prometheus_client.parser import text_string_to_metric_families

    code, body = get(url)
    assert code == 200, body
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


class Prometheus:
    """Debian's ``prometheus`` scraping ``targets`` every ``interval`` on loopback."""

    def __init__(self, tmp_path, targets: list[str], interval: str = "1s"):
        if not os.path.exists(PROMETHEUS):
            pytest.skip("prometheus is not installed (apt-get install prometheus; see "
                        ".ci/apt-packages)")
        self.dir = tmp_path / "prometheus"
        self.dir.mkdir()
        cfg = self.dir / "prometheus.yml"
        cfg.write_text(json.dumps({  # YAML is a superset of JSON
            "global": {"scrape_interval": interval, "scrape_timeout": interval},
            "scrape_configs": [{"job_name": "hrlf",
                                "static_configs": [{"targets": targets}]}]}))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(self.dir / "log.txt", "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)
        # ready, and its scrape loop knows the targets (discovery sends them after ~5 s):
        # from then on every target is scraped each interval, from its first second up
        if not wait_until(lambda: self._ready() and self._targets(), 60.0, 0.2):
            self.stop()
            pytest.fail(f"prometheus did not become ready: {(self.dir / 'log.txt').read_text()[-800:]}")

    def _targets(self) -> bool:
        code, body = get(f"{self.url}/api/v1/targets")
        return code == 200 and bool(json.loads(body)["data"]["activeTargets"])

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            return True  # fails below
        try:
            return get(self.url + "/-/ready", 2.0)[0] == 200
        except OSError:
            return False

    def api(self, path: str, **params) -> list:
        code, body = get(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}")
        data = json.loads(body)
        assert code == 200 and data["status"] == "success", data
        return data["data"]["result"]

    def value(self, query: str) -> float | None:
        """The latest sample of ``query`` (one series), or None."""
        res = self.api("query", query=query)
        return float(res[0]["value"][1]) if res else None

    def by(self, query: str, label: str) -> dict:
        return {r["metric"].get(label): float(r["value"][1]) for r in self.api("query", query=query)}

    def series(self, query: str, start: float, end: float, step: str = "1s") -> list[float]:
        res = self.api("query_range", query=query, start=start, end=end, step=step)
        return [float(v) for _, v in res[0]["values"]] if res else []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def last(name: str, labels: str = "") -> str:
    """The last value of a counter scraped before its target went away (no staleness)."""
    return f"last_over_time({name}{{{labels}}}[10m])"


class Feeder:
    """Pushes the demo recording into hub streams at real-time pace on a thread; vision of
    every stream goes silent over ``vision_gap`` (seconds of the recording)."""

    def __init__(self, streams, rec: dict, seconds: float, vision_gap=(None, None)):
        self.streams, self.rec, self.seconds, self.gap = streams, rec, seconds, vision_gap
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "Feeder":
        self.thread.start()
        return self

    def _run(self) -> None:
        t0, idx = time.monotonic(), {m: 0 for m in self.rec}
        while (now := time.monotonic() - t0) < self.seconds:
            for m, (ts, xs) in self.rec.items():
                j, k = idx[m], int(np.searchsorted(ts, now, "right"))
                idx[m] = k
                if k <= j or (m == "vision" and self.gap[0] is not None
                              and self.gap[0] <= now < self.gap[1]):
                    continue
                for s in self.streams:
                    s.push_many(m, ts[j:k], xs[j:k])
            time.sleep(0.02)
        self.done.set()


def chromium(url: str, user_dir, *args: str, timeout_s: float = 90.0) -> str:
    """Run headless Chromium on ``url`` (``--dump-dom`` or ``--screenshot=``); its stdout."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install chromium; see .ci/apt-packages)")
    p = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={user_dir}", *args, url],
                       capture_output=True, text=True, timeout=timeout_s)
    assert p.returncode == 0, p.stderr[-1500:]
    return p.stdout


def demo_recording(spec, seconds: float) -> dict:
    """The demo stream's frames, per modality: ``{modality: (times, float32 frames)}``."""
    from hrlf.runtime.sources import open_source

    rec = open_source("demo:0", spec, duration_s=seconds).rec
    return {m: (np.asarray(rec.times[m], np.float64), np.asarray(rec.frames[m], np.float32))
            for m in rec.times}
