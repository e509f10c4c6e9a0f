"""``hrlf-run``'s observation: the metrics server (``--metrics-port``) and systemd's notify
protocol (``$NOTIFY_SOCKET``), either of which may be off; with both off nothing is opened
and nothing runs on the hot path."""
from __future__ import annotations

import os

from .. import logs


class RunObservation:
    """Serve from before the model loads (``/readyz`` says ``loading``), observe the runner
    once it exists (:meth:`attach`), and after the run serve until the final counters
    were scraped, at most ``linger_s`` (:meth:`finish`). A context manager.

    Raises:
        InputError: ``port`` given and prometheus_client missing, or the port unusable.
    """

    def __init__(self, uri: str, port: int | None = None, address: str = "127.0.0.1",
                 linger_s: float = 0.0, environ=None):
        self.target = self.server = self.notifier = None
        self.linger_s = float(linger_s)
        environ = os.environ if environ is None else environ
        if port is None and not environ.get("NOTIFY_SOCKET"):
            return  # both off: nothing served, nothing imported on the way to a result
        from .health import SystemdNotifier
        from .targets import RunTarget

        self.target = RunTarget(uri)
        if port is not None:
            from .server import ObserveServer

            self.server = ObserveServer(self.target, port, address, "--metrics-port")
            logs.tool_log().info("metrics, health and live view at %s (/metrics, /healthz, "
                                 "/readyz)", self.server.url,
                                 extra=logs.fields(metrics_url=self.server.url))
        self.notifier = SystemdNotifier(self.target, environ).start()

    def attach(self, runner) -> None:
        if self.target is None:
            return
        if self.server is not None:
            self.target.attach(runner)
        else:  # readiness for systemd only: no observer on the hot path
            self.target.runner, self.target.phase = runner, "running"

    def finish(self) -> None:
        if self.target is None:
            return
        self.target.finish()
        if self.server is not None and self.linger_s > 0:
            self.server.linger(self.linger_s)

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.stop()
        if self.server is not None:
            self.server.close()

    def __enter__(self) -> "RunObservation":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
