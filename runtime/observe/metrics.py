"""The Prometheus exposition: one custom collector that reads the runtime's counters when
Prometheus scrapes (nothing is counted twice, and the counters equal the run's summary).

Series (all ``hrlf_``; counters end in ``_total``, times are ``_seconds``). Totals are
always there; for a hub they include every stream it ever had (removed streams' counts are
kept):

==========================================  ===============================================
``frames_received_total``                   frames pushed (``received``)
``frames_used_total``                       frames that fell into a scored window
``frames_dropped_total{reason}``            frames dropped, by reason (``dropped``)
``frames_pending``                          frames buffered, not yet used or dropped
``source_drops_total{reason}``              input a source discarded (``source_drops``)
``segments_total``                          windows scored (``segments``)
``segments_dropped_total{reason}``          windows lost: ``backend_error``, ``backlog``,
                                            ``callback_queue_full``, ``close_timeout``,
                                            ``output_error``... (``segments_dropped``)
``no_data_windows_total``                   live windows in which nothing arrived
``empty_windows_total``                     windows skipped without frames (files)
``callback_errors_total``                   ``on_result`` exceptions
``modality_present_total{modality}``        scored windows that had the modality
``modality_absent_total{modality,reason}``  windows without it, by reason (``absent``)
``streams_with_modality{modality}``         open streams whose latest window had it
``latency_seconds{stage}``                  histogram per scored window: ``wait``,
                                            ``pack``, ``infer``, ``total``
``backend_batch_size``                      histogram: windows per backend call
``backend_failures_total``,                 failed calls; outages (a server gone);
``backend_outages_total``, ``backend_up``   1 unless an outage is in progress
``backend_reconnects_total``                remote backends' reconnects (Triton)
``streams``                                 open streams (``hrlf-run``: 1 while running)
``results_queued``                          results waiting for a callback or reader
``ready``                                   1 when ``/readyz`` would answer 200
``build_info{version,kind,backend}``        1
==========================================  ===============================================

A hub adds ``streams_added_total``, ``streams_removed_total``, ``streams_failed``,
``backend_batch_retries_total`` (a failed batch retried stream by stream),
``hub_waiting_windows`` (due windows waiting to fill a batch) and ``delivery_threads``,
``delivery_busy_threads``, ``delivery_waiting_streams``. ``hrlf-run`` with a live source
adds per track (``track`` = its modality: ``vision`` for a camera or RTSP stream):
``source_connected``, ``source_lost_total``, ``source_stalls_total``,
``source_reconnects_total``, ``source_reconnect_attempts_total``, and
``source_events_total{modality}``.

Per stream (label ``stream``: the hub's stream name; ``hrlf-run``: its source URI without
credentials) while there are at most ``stream_labels`` (default 32) open streams, else none
(cardinality stays bounded; the totals are always there): ``stream_frames_received_total``,
``stream_frames_dropped_total{reason}``, ``stream_segments_total``,
``stream_segments_dropped_total{reason}``, ``stream_no_data_windows_total``,
``stream_modality_present{modality}`` (the latest window: 1 or 0) and ``stream_score`` (the
latest score).
"""
from __future__ import annotations

from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, InfoMetricFamily)

from hrlf import __version__
from hrlf.runtime.observe.health import readiness
from hrlf.runtime.observe.observer import STAGES
from hrlf.runtime.observe.targets import results_queued
from hrlf.runtime.spec import MODALITIES

P = "hrlf_"
#: (key in stats(), series name, help) of the plain totals
INTS = (("received", "frames_received", "Frames pushed into the streams."),
        ("used", "frames_used", "Frames that fell into a scored window."),
        ("segments", "segments", "Windows scored."),
        ("no_data", "no_data_windows", "Live windows in which no modality had a frame."),
        ("empty_windows", "empty_windows", "Windows skipped because no frame fell in them."),
        ("callback_errors", "callback_errors", "Exceptions raised by on_result callbacks."))
BY_REASON = (("dropped", "frames_dropped", "Frames dropped, by reason."),
             ("source_drops", "source_drops", "Input a source discarded before it became a "
                                              "frame, by reason."),
             ("segments_dropped", "segments_dropped", "Windows lost before delivery, by reason."))
TRACK = (("lost", "source_lost", "Times a device or stream was lost."),
         ("stalls", "source_stalls", "Times a device or stream stalled (open, no data)."),
         ("reconnects", "source_reconnects", "Successful reconnects."),
         ("reconnect_attempts", "source_reconnect_attempts", "Reconnect attempts."))


def _family(cls, name: str, doc: str, value, labels=None):
    """A family of one sample (``labels`` None) or of one sample per ``value`` item."""
    fam = cls(P + name, doc, labels=labels and list(labels))
    if labels is None:
        fam.add_metric([], value)
    else:
        for key, v in sorted(value.items()):
            fam.add_metric(list(key) if isinstance(key, tuple) else [key], v)
    return fam


def _counter(name: str, doc: str, value, labels=None) -> CounterMetricFamily:
    return _family(CounterMetricFamily, name, doc, value, labels)


def _gauge(name: str, doc: str, value, labels=None) -> GaugeMetricFamily:
    return _family(GaugeMetricFamily, name, doc, value, labels)


class HrlfCollector:
    """``prometheus_client`` collector of one target (``RunTarget`` or ``HubTarget``)."""

    def __init__(self, target):
        self.target = target

    def describe(self):
        return []  # unchecked collector: the series depend on what runs

    def collect(self):
        t = self.target
        ready, _ = readiness(t)
        info = InfoMetricFamily(P + "build", "hrlf version, what is served, its backend.")
        info.add_metric([], {"version": __version__, "kind": t.kind,
                             "backend": t.backend_name()})
        yield info
        yield _gauge("ready", "1 when /readyz answers 200 (model, backend, sources).", int(ready))
        yield _gauge("start_time_seconds", "Unix time metrics started.", t.started)
        st = t.totals()
        if st is None:  # hrlf-run still loading the model
            return
        yield from self._totals(st)
        yield from self._presence()
        yield from self._histograms()
        yield from self._backend(st)
        if t.kind == "hub":
            yield from _hub(st)
        yield from _sources(st.get("source"))
        yield from self._streams()

    def _totals(self, st: dict):
        for key, name, doc in INTS:
            yield _counter(name, doc, st.get(key, 0))
        for key, name, doc in BY_REASON:
            yield _counter(name, doc, st.get(key, {}), ["reason"])
        yield _gauge("frames_pending", "Frames buffered, not yet used or dropped.",
                     st.get("pending", 0))
        yield _gauge("streams", "Open streams.", st.get("streams", 0))
        yield _gauge("results_queued", "Results waiting for a callback or a reader.",
                     results_queued(self.target.sessions()))

    def _presence(self):
        present, absent, now = self.target.observer.presence()
        yield _counter("modality_present", "Scored windows that had the modality.",
                       {m: present.get(m, 0) for m in MODALITIES}, ["modality"])
        yield _counter("modality_absent", "Windows without the modality, by reason.",
                       absent, ["modality", "reason"])
        yield _gauge("streams_with_modality", "Open streams whose latest window had the "
                     "modality.", dict(now), ["modality"])

    def _histograms(self):
        obs = self.target.observer
        obs.fold()
        lat = HistogramMetricFamily(P + "latency_seconds", "Per scored window: wait (due to "
                                    "processing), pack, infer, total (due to result).",
                                    labels=["stage"])
        for i, stage in enumerate(STAGES):
            buckets, total = obs.latency.snapshot(i)
            lat.add_metric([stage], buckets, total)
        yield lat
        buckets, total = obs.batch.snapshot()
        yield HistogramMetricFamily(P + "backend_batch_size", "Windows per successful "
                                    "backend call.", buckets=buckets, sum_value=total)

    def _backend(self, st: dict):
        guard = self.target.guard()
        g = guard.stats() if guard is not None else {"failures": 0, "outages": 0, "down": False}
        yield _counter("backend_failures", "Failed backend calls (windows dropped as "
                       "backend_error).", g["failures"])
        yield _counter("backend_outages", "Backend outages (unreachable server).", g["outages"])
        yield _gauge("backend_up", "0 while a backend outage is in progress.", int(not g["down"]))
        backend = getattr(guard, "backend", None)
        if hasattr(backend, "reconnects"):
            yield _counter("backend_reconnects", "Reconnects of a remote backend.",
                           backend.reconnects)

    def _streams(self):
        rows = []
        for name, s in self.target.labelled():
            a = s.acct.snapshot()
            st = getattr(s, "_obs_state", None)
            rows.append((name, a, st.latest if st is not None else None))
        if not rows:
            return
        simple = (("received", "frames_received"), ("segments", "segments"),
                  ("no_data", "no_data_windows"))
        for key, name in simple:
            yield _counter("stream_" + name, f"Per stream: {name.replace('_', ' ')}.",
                           {n: a[key] for n, a, _ in rows}, ["stream"])
        for key, name in (("dropped", "frames_dropped"), ("segments_dropped", "segments_dropped")):
            yield _counter("stream_" + name, f"Per stream: {name.replace('_', ' ')} by reason.",
                           {(n, k): v for n, a, _ in rows for k, v in a[key].items()},
                           ["stream", "reason"])
        yield _gauge("stream_modality_present", "Per stream: 1 when its latest window had "
                     "the modality.", {(n, m): int(r is not None and m in r.modalities)
                                       for n, _, r in rows for m in MODALITIES},
                     ["stream", "modality"])
        yield _gauge("stream_score", "Per stream: the latest sentiment score.",
                     {n: r.score for n, _, r in rows if r is not None and r.score is not None},
                     ["stream"])


def _hub(st: dict):
    yield _counter("streams_added", "Streams added to the hub.", st.get("streams_added", 0))
    yield _counter("streams_removed", "Streams removed from the hub.", st.get("streams_removed", 0))
    yield _gauge("streams_failed", "Streams stopped by their policy.", st.get("failed_streams", 0))
    yield _counter("backend_batch_retries", "Failed batches retried stream by stream.",
                   st.get("batch_failures", 0))
    yield _gauge("hub_waiting_windows", "Due windows waiting to fill a batch.",
                 st.get("waiting_rows", 0))
    d = st.get("delivery", {})
    yield _gauge("delivery_threads", "Threads running callbacks.", d.get("threads", 0))
    yield _gauge("delivery_busy_threads", "Delivery threads inside a callback.",
                 d.get("in_callback", 0))
    yield _gauge("delivery_waiting_streams", "Streams with results waiting for a delivery "
                 "thread.", d.get("waiting_streams", 0))


def _sources(src: dict | None):
    if not src:
        return
    tracks = {k: v for k, v in (src.get("tracks") or {}).items() if isinstance(v, dict)}
    if "connected" in next(iter(tracks.values()), {}):  # live tracks
        yield _gauge("source_connected", "1 while the track's device or stream delivers.",
                     {k: int(bool(v.get("connected"))) for k, v in tracks.items()}, ["track"])
        for key, name, doc in TRACK:
            yield _counter(name, doc, {k: v.get(key, 0) for k, v in tracks.items()}, ["track"])
    yield _counter("source_events", "Feature frames the source produced, by modality.",
                   src.get("events_by_modality", {}), ["modality"])
