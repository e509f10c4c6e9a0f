"""``/healthz`` and ``/readyz``, and systemd's notify protocol (standard library only).

* **live** (``/healthz``, a Kubernetes liveness probe, systemd's watchdog): the process
  answers and its loop is stepping: ``hrlf-run``'s read loop stepped within
  :data:`LOOP_STALL_S` (not checked while the model loads or the last windows flush), a
  hub's worker thread is running. Restarting helps only when this fails.
* **ready** (``/readyz``, a readiness probe): every check below passes; the JSON body
  lists each with its detail, so the reason is in the probe's answer:

  - ``model``: loaded (``hrlf-run`` serves while it loads: a TensorRT build takes minutes);
  - ``backend``: reachable: no outage in progress (a dead Triton server, see
    ``backend_guard.py``), the stream not stopped by its policy;
  - ``source:<track>`` (live sources): delivering; a stalled or lost device or RTSP stream
    that is reconnecting with backoff is *not* ready, with its reason (``stall``,
    ``device_lost``, ``starting``) and the reconnect attempts;
  - ``stream`` (``hrlf-run``): running, not finished; ``worker`` (a hub): started, not
    closed; plus any ``add_check(name, fn)`` of the embedder.

systemd: with ``Type=notify`` (``$NOTIFY_SOCKET``) ``hrlf-run`` says ``READY=1`` once ready,
and with ``WatchdogSec=`` (``$WATCHDOG_USEC``) sends ``WATCHDOG=1`` at half the interval
while live, so a hung loop is restarted (README, *Health*).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time

from hrlf.runtime.observe import redact

log = logging.getLogger("hrlf.runtime.observe")

#: ``hrlf-run``'s loop not stepping for this long is a hang (a read waits at most 0.02 s;
#: a backend call at most its timeout)
LOOP_STALL_S = 60.0


def _check(name: str, ok: bool, detail: str) -> dict:
    return {"name": name, "ok": bool(ok), "detail": str(detail)}


def _backend(target) -> dict:
    guard = target.guard()
    if guard is None:
        return _check("backend", False, "not opened yet")
    g = guard.stats()
    if g["down"]:
        return _check("backend", False, f"{target.backend_name()} unreachable: {g['last_error']} "
                      f"({g['failures']} failed calls; retrying every {guard.retry_after_s:g} s)")
    return _check("backend", True, f"{target.backend_name()} ({g['failures']} failed calls)")


def source_checks(source) -> list[dict]:
    """One check per track of a live source: delivering, or why not."""
    tracks = getattr(source, "tracks", None)
    health = getattr(source, "health", None)
    if not tracks:
        return [_check("source", True, "live input (no device to watch)")]
    out = []
    for tr in tracks:
        why = health.outage(tr.modality) if health is not None else None
        connected = bool(getattr(tr, "connected", True))
        if connected and why is None:
            out.append(_check(f"source:{tr.modality}", True, f"{redact(tr.name)}: delivering"))
            continue
        why = why or "device_lost"
        n = tr.counts.get("reconnect_attempts", 0)
        state = "connected, no data yet" if connected else \
            f"reconnecting with backoff ({n} attempts so far)"
        out.append(_check(f"source:{tr.modality}", False, f"{redact(tr.name)}: {why}; {state}"))
    return out


def readiness(target) -> tuple[bool, list[dict]]:
    """``(ready, checks)`` of a RunTarget or HubTarget (see the module docstring)."""
    checks = []
    if target.kind == "run":
        r = target.runner
        checks.append(_check("model", r is not None, "loading the model" if r is None else
                             f"{target.backend_name()}"))
        if r is not None:
            checks.append(_backend(target))
            if r.failure is not None or r.session._failure is not None:
                checks.append(_check("stream", False, str(r.failure or r.session._failure)))
            else:
                checks.append(_check("stream", target.phase == "running",
                                     "the stream ended" if target.phase == "finished" else
                                     "running"))
            for src in target.live_sources():
                checks += source_checks(src)
    else:
        hub = target.hub
        checks.append(_check("model", True, target.backend_name()))
        checks.append(_backend(target))
        checks.append(_worker(hub))
    for name, fn in list(target.checks.items()):
        try:
            ok, detail = fn()
        except Exception as e:  # an embedder's check that fails is a failed check
            ok, detail = False, f"{type(e).__name__}: {e}"
        checks.append(_check(name, ok, detail))
    return all(c["ok"] for c in checks), checks


def _worker(hub) -> dict:
    th = hub._thread
    if hub.closed or hub._closing:
        return _check("worker", False, "the hub is closed")
    if th is None:
        return _check("worker", False, "not started: call Hub.start()")
    return _check("worker", th.is_alive(), "running" if th.is_alive() else "the worker died")


def liveness(target) -> tuple[bool, str]:
    """``(live, detail)``: the process and its loop are alive."""
    if target.kind == "hub":
        th = target.hub._thread
        if th is not None and not th.is_alive() and not target.hub._stop:
            return False, "the hub's worker thread died"
        return True, "alive"
    r = target.runner
    if r is None or target.phase != "running" or r.flushing:
        return True, target.phase if r is None or not r.flushing else "flushing"
    age = time.monotonic() - r.heartbeat
    if age > LOOP_STALL_S:
        return False, f"the run loop has not stepped for {age:.0f} s"
    return True, "alive"


class SystemdNotifier:
    """``READY=1`` once ready, ``WATCHDOG=1`` every half ``$WATCHDOG_USEC`` while live, and
    ``STOPPING=1`` at the end; a no-op without ``$NOTIFY_SOCKET``."""

    def __init__(self, target, environ=None):
        env = os.environ if environ is None else environ
        self.target, self.path = target, env.get("NOTIFY_SOCKET", "")
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_s = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and mine else 0.0
        self._stop = threading.Event()
        self._thread = None
        self.ready_sent = False

    def send(self, msg: str) -> None:
        if not self.path:
            return
        addr = "\0" + self.path[1:] if self.path.startswith("@") else self.path
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(msg.encode(), addr)
        except OSError as e:  # systemd gone: nothing to tell
            log.debug("sd_notify %s failed: %s", msg, e)

    def start(self) -> "SystemdNotifier":
        if self.path and self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name="hrlf-sd-notify")
            self._thread.start()
        return self

    def _run(self) -> None:
        step = min(1.0, self.watchdog_s) if self.watchdog_s else 0.5
        last_dog = -float("inf")
        while True:
            if not self.ready_sent and readiness(self.target)[0]:
                self.send("READY=1\nSTATUS=ready")
                self.ready_sent = True
            now = time.monotonic()
            if self.watchdog_s and now - last_dog >= self.watchdog_s and \
                    liveness(self.target)[0]:
                self.send("WATCHDOG=1")
                last_dog = now
            if self._stop.wait(step):
                return

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(5.0)
            self.send("STOPPING=1")
            self._thread = None
