"""One HTTP port for ``/metrics``, ``/healthz``, ``/readyz``, the live page ``/`` and its
``/api/live`` JSON (standard library ``http.server``, a thread per request).

Binds 127.0.0.1 unless told otherwise: nothing here has authentication, so a wider address
is logged as a warning (put it behind a firewall, or a proxy with TLS and auth).
"""
from __future__ import annotations

import errno
import json
import logging
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from hrlf.runtime.errors import InputError
from hrlf.runtime.observe import LOOPBACK
from hrlf.runtime.observe.health import liveness, readiness
from hrlf.runtime.observe.live import WINDOW_S, live_json

log = logging.getLogger("hrlf.runtime.observe")
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
TYPES = {"index.html": "text/html; charset=utf-8", "live.js": "text/javascript; charset=utf-8",
         "live.css": "text/css; charset=utf-8"}
INSTALL = "pip install 'hrlf[metrics]'"


def require_prometheus(what: str) -> None:
    """One line naming the extra when ``prometheus_client`` is missing."""
    import importlib.util

    try:
        found = importlib.util.find_spec("prometheus_client") is not None
    except ValueError:  # sys.modules entry is None: imports of it fail
        found = False
    if not found:
        raise InputError(f"{what}: metrics need prometheus_client, which this install lacks; "
                         f"{INSTALL}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class Handler(BaseHTTPRequestHandler):
    server_version = "hrlf"

    def log_message(self, fmt, *args) -> None:  # requests go to debug, not stderr
        log.debug("%s %s", self.address_string(), fmt % args)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        obs: ObserveServer = self.server.observe
        url = urlparse(self.path)
        try:
            if url.path == "/metrics":
                obs.scrape(self)
            elif url.path == "/healthz":
                ok, detail = liveness(obs.target)
                self._json(200 if ok else 503, {"live": ok, "detail": detail})
            elif url.path == "/readyz":
                ok, checks = readiness(obs.target)
                self._json(200 if ok else 503, {"ready": ok, "checks": checks})
            elif url.path == "/api/live":
                q = parse_qs(url.query)
                seconds = float(q.get("seconds", [WINDOW_S])[0])
                self._json(200, live_json(obs.target, min(max(seconds, 1.0), 3600.0)))
            elif url.path in ("/", "/index.html") or url.path.lstrip("/") in TYPES:
                self._static(url.path.lstrip("/") or "index.html")
            else:
                self._send(404, b"not found: try /, /metrics, /healthz, /readyz\n",
                           "text/plain; charset=utf-8")
        except (BrokenPipeError, ConnectionResetError):
            pass
        except ValueError as e:
            self._send(400, f"bad request: {e}\n".encode(), "text/plain; charset=utf-8")

    def _json(self, code: int, body: dict) -> None:
        self._send(code, json.dumps(body).encode(), "application/json")

    def _static(self, name: str) -> None:
        with open(os.path.join(STATIC, name), "rb") as f:
            self._send(200, f.read(), TYPES[name])

    def _send(self, code: int, data: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)


class ObserveServer:
    """Serves a target (``RunTarget`` / ``HubTarget``) on ``address:port`` (0: any free
    port; :attr:`url` has the one taken).

    Raises:
        InputError: prometheus_client is missing, or the address cannot be bound (in use,
            not this machine's, permission), one line naming the fix.
    """

    def __init__(self, target, port: int, address: str = "127.0.0.1", what: str = "metrics"):
        require_prometheus(what)
        from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

        from hrlf.runtime.observe.metrics import HrlfCollector

        self.target = target
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(HrlfCollector(target))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._cv = threading.Condition()
        self._marks: list[float] = []  # scrape ends (monotonic), for linger()
        self.httpd = _bind(address, int(port), what)
        self.httpd.observe = self
        host, bound = self.httpd.server_address[:2]
        self.address, self.port = address, int(bound)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        daemon=True, name="hrlf-observe")
        self._thread.start()
        if address not in LOOPBACK:
            log.warning("%s: serving on %s without authentication; anyone who can reach it "
                        "sees the metrics and the live page", what, address)

    def scrape(self, handler: Handler) -> None:
        from prometheus_client.exposition import choose_encoder

        started = time.monotonic()
        encoder, ctype = choose_encoder(handler.headers.get("Accept", ""))
        handler._send(200, encoder(self.registry), ctype)
        with self._cv:
            self._marks = (self._marks + [started])[-4:]
            self._cv.notify_all()

    def linger(self, timeout_s: float) -> bool:
        """Keep serving until a scrape that started after this call finished, at most
        ``timeout_s`` (so that Prometheus gets the final counters); True when one did."""
        t0 = time.monotonic()
        deadline = t0 + max(0.0, timeout_s)
        with self._cv:
            while not any(m >= t0 for m in self._marks):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def close(self, linger_s: float = 0.0) -> None:
        """Stop serving (idempotent), after one more scrape if one comes within
        ``linger_s``."""
        if self._thread is not None:
            if linger_s > 0:
                self.linger(linger_s)
            self.httpd.shutdown()
            self.httpd.server_close()
            self._thread.join(5.0)
            self._thread = None


def _bind(address: str, port: int, what: str):
    if not 0 <= port <= 65535:
        raise InputError(f"{what}: port {port} is out of range; use one in [0, 65535] (0 "
                         "picks a free one)")
    cls = _Server6 if ":" in address else _Server
    try:
        return cls((address, port), Handler)
    except socket.gaierror as e:
        raise InputError(f"{what}: address '{address}' does not resolve ({e.strerror}); use "
                         "an IP address of this machine, e.g. 127.0.0.1") from None
    except OSError as e:
        why = {errno.EADDRINUSE: "is in use; choose another port (0 picks a free one)",
               errno.EACCES: "needs privileges (ports below 1024); choose a port >= 1024",
               errno.EADDRNOTAVAIL: "is not an address of this machine"}.get(
                   e.errno, f"cannot be bound ({e.strerror})")
        raise InputError(f"{what}: {address}:{port} {why}") from None


def serve_hub(hub) -> ObserveServer:
    """Serve a hub's metrics, health and live page (``HubConfig.metrics_*``)."""
    from hrlf.runtime.observe.targets import HubTarget

    cfg = hub.cfg
    n = cfg.metrics_streams
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InputError(f"hub config: metrics_streams={n!r} must be a whole number >= 0")
    srv = ObserveServer(HubTarget(hub, n), cfg.metrics_port, cfg.metrics_address,
                        "hub metrics")
    log.info("hub: metrics, health and live view at %s (/metrics, /healthz, /readyz)", srv.url)
    return srv
