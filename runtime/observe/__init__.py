"""Operating many streams: Prometheus metrics, health probes and a live page, on one port.

Off by default. ``hrlf-run --metrics-port 9108`` or ``HubConfig(metrics_port=9108)`` serve,
on 127.0.0.1 unless told otherwise (``--metrics-address``):

* ``/metrics``: Prometheus text (or OpenMetrics) exposition (:mod:`.metrics`), read from the
  counters the runtime keeps anyway, at scrape time;
* ``/healthz`` (the process and its worker are alive) and ``/readyz`` (model loaded, backend
  reachable, every live source delivering; reasons in the JSON body) (:mod:`.health`);
* ``/``: a live page drawing each stream's sentiment over the last minutes, with the
  modalities present and why the others are absent, and the totals (``/api/live`` is its
  JSON; everything it needs ships in ``static/``).

What runs on the hot path is :class:`~hrlf.runtime.observe.observer.Observer`: a few list
appends per delivered result (presence, latency), folded into histogram buckets at scrape
time. ``prometheus_client`` (``pip install 'hrlf[metrics]'``) is imported only when metrics
are served; health and the systemd notifier need the standard library only.
"""
from __future__ import annotations

#: the default port of ``--metrics-port`` examples (Prometheus' exporter registry lists no
#: hrlf; 9108 is what the README uses)
EXAMPLE_PORT = 9108
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def redact(uri: str) -> str:
    """``rtsp://user:secret@cam/x`` -> ``rtsp://cam/x``: no credentials in labels or pages."""
    uri = str(uri)
    scheme, sep, rest = uri.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return uri
    host = rest.split("/", 1)
    host[0] = host[0].rsplit("@", 1)[1]
    return f"{scheme}://{'/'.join(host)}"
