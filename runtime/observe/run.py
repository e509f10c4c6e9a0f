"""``hrlf-run``'s observation: the metrics server (``--metrics-port``) and systemd's notify
protocol (``$NOTIFY_SOCKET``), either of which may be off; with both off nothing is opened
and nothing runs on the hot path."""
from __future__ import annotations

from hrlf.runtime import logs
from hrlf.runtime.observe.health import SystemdNotifier
from hrlf.runtime.observe.targets import RunTarget


class RunObservation:
    """Serve from before the model loads (``/readyz`` says ``loading``), observe the runner
    once it exists (:meth:`attach`), and after the run serve until the final counters
    were scraped, at most ``linger_s`` (:meth:`finish`). A context manager.

    Raises:
        InputError: ``port`` given and prometheus_client missing, or the port unusable.
    """

    def __init__(self, uri: str, port: int | None = None, address: str = "127.0.0.1",
                 linger_s: float = 0.0, environ=None):
        self.target = RunTarget(uri)
        self.server = None
        self.linger_s = float(linger_s)
        if port is not None:
            from hrlf.runtime.observe.server import ObserveServer

            self.server = ObserveServer(self.target, port, address, "--metrics-port")
            logs.tool_log().info("metrics, health and live view at %s (/metrics, /healthz, "
                                 "/readyz)", self.server.url,
                                 extra=logs.fields(metrics_url=self.server.url))
        self.notifier = SystemdNotifier(self.target, environ).start()

    def attach(self, runner) -> None:
        if self.server is not None:
            self.target.attach(runner)
        else:  # readiness for systemd only: no observer on the hot path
            self.target.runner, self.target.phase = runner, "running"

    def finish(self) -> None:
        self.target.finish()
        if self.server is not None and self.linger_s > 0:
            self.server.linger(self.linger_s)

    def close(self) -> None:
        self.notifier.stop()
        if self.server is not None:
            self.server.close()

    def __enter__(self) -> "RunObservation":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
