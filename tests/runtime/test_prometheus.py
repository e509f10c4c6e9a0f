"""A real Prometheus (Debian's package) scrapes a running ``hrlf-run`` and a ``Hub`` of many
streams on loopback; the tests read Prometheus's own HTTP API: the counters equal the run's
JSON summary exactly at the end, and a modality outage shows in the drop and presence
series while it lasts."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.runtime.observe_util import (Feeder, Prometheus, demo_recording, free_port, last,
                                        wait_until)

pytest.importorskip("prometheus_client")

REASONED = ("dropped", "source_drops", "segments_dropped")
TOTALS = (("received", "hrlf_frames_received_total"), ("used", "hrlf_frames_used_total"),
          ("segments", "hrlf_segments_total"), ("no_data", "hrlf_no_data_windows_total"),
          ("empty_windows", "hrlf_empty_windows_total"),
          ("callback_errors", "hrlf_callback_errors_total"))


def _final(prom: Prometheus, summary: dict) -> None:
    """Wait (bounded) until Prometheus stored the final scrape, then compare every counter."""
    wait_until(lambda: prom.value(last("hrlf_segments_total")) == summary["segments"], 20.0)
    for key, name in TOTALS:
        assert prom.value(last(name)) == summary[key], (name, summary)
    for key in REASONED:
        name = {"dropped": "hrlf_frames_dropped_total"}.get(key, f"hrlf_{key}_total")
        got = prom.by(f"last_over_time({name}[10m])", "reason")
        assert {k: v for k, v in got.items() if v} == summary[key], (name, got, summary[key])


def test_prometheus_scrapes_hrlf_run_and_sees_the_outage(tmp_path):
    port = free_port()
    prom = Prometheus(tmp_path, [f"127.0.0.1:{port}"])
    cmd = [os.path.join(os.path.dirname(sys.executable), "hrlf-run"), "--duration", "11",
           "--drop", "vision:2-6", "--stats-every", "0", "--metrics-port", str(port),
           "--metrics-linger", "30"]
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert f"hrlf-run INFO metrics, health and live view at http://127.0.0.1:{port}/" \
            in p.stderr
        summary = json.loads(p.stderr.strip().splitlines()[-1])["summary"]
        lines = [json.loads(x) for x in p.stdout.splitlines()]
        _final(prom, summary)
        assert summary["dropped"]["drop_schedule"] > 0
        # presence: exactly the result lines' modalities and absence reasons
        present = prom.by(last("hrlf_modality_present_total"), "modality")
        for m in ("text", "audio", "vision"):
            assert present[m] == sum(m in r["modalities"] for r in lines if r.get("score")
                                     is not None), (m, present)
        absent = {(r["metric"]["modality"], r["metric"]["reason"]): float(r["value"][1])
                  for r in prom.api("query", query=last("hrlf_modality_absent_total"))}
        want = {}
        for r in lines:
            for m, why in r.get("absent", {}).items():
                want[(m, why)] = want.get((m, why), 0) + 1
        assert absent == want and want[("vision", "drop_schedule")] >= 3, (absent, want)
        # while it lasted: vision absent from the latest window, the drop counter climbing
        # (the demo's own outages start later: audio at 8 s, vision at 12 s)
        now = prom.series('hrlf_streams_with_modality{modality="vision"}', t0, time.time())
        assert 0.0 in now and 1.0 in now and now[-1] == 1.0, now
        drops = prom.series('hrlf_frames_dropped_total{reason="drop_schedule"}', t0, time.time())
        assert len(set(drops)) >= 3 and drops == sorted(drops), drops
        lat = prom.value(last("hrlf_latency_seconds_count", 'stage="total"'))
        assert lat == summary["segments"]
    finally:
        prom.stop()


def test_prometheus_scrapes_a_hub_of_many_streams(tmp_path):
    from hrlf.runtime.hub import Hub, HubConfig
    from hrlf.runtime.session_config import SessionConfig

    port = free_port()
    prom = Prometheus(tmp_path, [f"127.0.0.1:{port}"])
    n = 40  # more than metrics_streams: totals only
    cfg = HubConfig(metrics_port=port, metrics_linger_s=30.0, metrics_streams=32,
                    stream=SessionConfig(live=True, no_data=True))
    hub = Hub.load("demo", config=cfg)
    try:
        rec = demo_recording(hub.spec, 12.0)
        hub.start()
        streams = [hub.add_stream(f"call-{i}", config=SessionConfig(
            live=True, no_data=True, drops=[("audio", 0.0, 4.0)] if i % 4 == 0 else []))
            for i in range(n)]
        t0 = time.time()
        feeder = Feeder(streams, rec, 9.0, vision_gap=(3.0, 6.5)).start()
        assert feeder.done.wait(60)
        assert prom.value("hrlf_streams") == n or wait_until(
            lambda: prom.value("hrlf_streams") == n, 10.0)
        assert prom.value('hrlf_stream_segments_total') is None  # over the label cap
        for s in streams[:10]:
            hub.remove(s)  # removed streams' counts stay in the totals
        final = hub.close().stats
        _final(prom, final)
        for key, name in (("streams_added", "hrlf_streams_added_total"),
                          ("streams_removed", "hrlf_streams_removed_total")):
            assert prom.value(last(name)) == final[key] == n
        assert final["dropped"]["drop_schedule"] > 0 and final["accounting_ok"]
        vision = prom.series('hrlf_streams_with_modality{modality="vision"}', t0, time.time())
        assert 0.0 in vision and n in vision, vision  # the gap, and before/after it
        gone = prom.by(last("hrlf_modality_absent_total", 'modality="vision"'), "reason")
        assert gone.get("no_frames", 0) >= n, gone
        batch = prom.value(last("hrlf_backend_batch_size_count"))
        assert batch and batch < final["segments"]  # cross-stream batching: fewer calls
    finally:
        hub.close()
        prom.stop()
