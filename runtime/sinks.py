"""Results, latency statistics and output formatting (JSON lines or text)."""
from __future__ import annotations

import json
import threading
from array import array
from dataclasses import asdict, dataclass, field

import numpy as np

FORMATS = ("jsonl", "text")


@dataclass
class Result:
    """One scored segment.

    Attributes:
        segment: window index k; the window is ``[k * hop_s, k * hop_s + window_s)``.
        t_start, t_end: the window in stream seconds.
        score: sentiment in the spec's score range ([-3, 3]); None when ``status`` is
            ``no_data``.
        label: the spec's label for the score (None with no_data).
        modalities: modalities present in the window.
        frames: valid frame slots per modality.
        latency_ms: ``wait`` (due -> processing), ``pack``, ``infer``, ``total``.
        backend: backend name, e.g. ``ort-cpu-fp32``.
        batch: windows scored in the same backend call.
        extra: fields a source adds (e.g. ``truth`` for sources that know the label).
        status: ``ok`` (scored) or ``no_data`` (a due window in which nothing arrived).
        reasons: why there is no data: ``no_frames`` plus what sources or the embedder
            attached (``device_lost``, ``silence``, ...; see ``Session.note``).
        absent: modality -> why the window lacks it (``not_trained``, ``condition``,
            ``drop_schedule``, ``no_frames``, or the source's reason such as
            ``demo_outage``, ``device_lost``, ``silence``; see :mod:`hrlf.runtime.absent`);
            empty when every modality is present.
    """

    segment: int
    t_start: float
    t_end: float
    score: float | None
    label: str | None
    modalities: list
    frames: dict
    latency_ms: dict
    backend: str
    batch: int = 1
    extra: dict = field(default_factory=dict)
    status: str = "ok"
    reasons: list = field(default_factory=list)
    absent: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        extra = d.pop("extra")
        d["t_start"], d["t_end"] = round(self.t_start, 6), round(self.t_end, 6)
        d["score"] = None if self.score is None else round(self.score, 6)
        if not self.reasons:
            del d["reasons"]
        if not self.absent:
            del d["absent"]
        d["latency_ms"] = {k: round(v, 4) for k, v in self.latency_ms.items()}
        d.update(extra)
        return d


def format_result(r: Result, fmt: str) -> str:
    if fmt == "jsonl":
        return json.dumps(r.to_dict())
    if r.status != "ok":
        return f"{r.t_start:8.2f}-{r.t_end:<8.2f} {r.status} ({', '.join(r.reasons)})"
    mods = "+".join(r.modalities) or "-"
    truth = f"  truth {r.extra['truth']:+.2f}" if "truth" in r.extra else ""
    gone = "".join(f"  no {m} ({why})" for m, why in r.absent.items())
    return (f"{r.t_start:8.2f}-{r.t_end:<8.2f} {r.score:+.2f} {r.label:<8} [{mods:<17}] "
            f"{r.latency_ms['total']:6.2f} ms{truth}{gone}")


class LatencyStats:
    """Recent per-segment latencies (ms) for p50/p99, thread-safe.

    The values live in ``array('d')`` rings, not deques of floats: the garbage collector
    walks every item of a deque on each full pass, and a hub keeps one of these per stream
    (2,000 streams x 4 x 256 floats made every full pass walk two million items); an
    array of doubles is a single object the collector does not traverse."""

    KEYS = ("wait", "pack", "infer", "total")

    def __init__(self, keep: int = 10000):
        self.lock = threading.Lock()
        self.keep = max(1, int(keep))
        self.values = {k: array("d") for k in self.KEYS}
        self._at = 0  # the slot the next value overwrites once the rings are full

    def add(self, lat: dict) -> None:
        with self.lock:
            vals = self.values
            if len(vals["total"]) < self.keep:
                for k, a in vals.items():
                    a.append(lat[k])
                return
            i = self._at
            for k, a in vals.items():
                a[i] = lat[k]
            self._at = (i + 1) % self.keep

    def summary(self) -> dict:
        with self.lock:
            arrays = {k: np.array(a, float) for k, a in self.values.items() if len(a)}
        return {k: {"p50": round(float(np.percentile(a, 50)), 4),
                    "p99": round(float(np.percentile(a, 99)), 4)} for k, a in arrays.items()}


def stats_line(stats: dict) -> str:
    """One human-readable line: segments, frames, drops by reason, latency p50/p99."""
    drops = dict(stats["dropped"])
    for k, v in stats.get("source_drops", {}).items():
        drops[f"source:{k}"] = v
    drop_txt = ", ".join(f"{k} {v}" for k, v in sorted(drops.items())) or "none"
    seg_drop = sum(stats["segments_dropped"].values())
    lat = stats["latency_ms"].get("total")
    lat_txt = f"p50 {lat['p50']:.2f} ms p99 {lat['p99']:.2f} ms" if lat else "n/a"
    extra = "".join(f", {k.replace('_', ' ')} {stats[k]}" for k in ("no_data", "callback_errors")
                    if stats.get(k))
    return (f"segments {stats['segments']} (dropped {seg_drop}, empty windows "
            f"{stats['empty_windows']}{extra}) | frames {stats['received']} used {stats['used']} | "
            f"drops: {drop_txt} | latency {lat_txt} | {stats['backend']}")
