"""Counts summed over many streams, cheaply: a hub's totals over its live streams and,
folded in once at removal, every stream it ever removed (memory stays flat however many
streams come and go)."""
from __future__ import annotations

from collections import Counter

#: the integer counters of :class:`~hrlf.runtime.buffers.Accounting` that are summed
INTS = ("received", "used", "segments", "no_data", "empty_windows", "slots_out_of_range",
        "callback_errors")
COUNTERS = ("dropped", "segments_dropped", "source_drops")


class Totals:
    """Sums of streams' accounting (see :meth:`add`)."""

    def __init__(self) -> None:
        self.ints = dict.fromkeys(INTS, 0)
        self.counters = {k: Counter() for k in COUNTERS}
        self.pending = 0
        self.accounting_ok = True
        self.failed_streams = 0

    def add(self, stream) -> None:
        """Add a stream's counts (reads its Accounting under its lock; no copies)."""
        a = stream.acct
        pending = sum(b.unused for b in stream.buffers.values())
        with a.lock:
            ints = self.ints
            for k in INTS:
                ints[k] += getattr(a, k)
            for k in COUNTERS:
                c = getattr(a, k)
                if c:
                    self.counters[k].update(c)
            ok = a.received == a.used + sum(a.dropped.values()) + pending
        self.pending += pending
        self.accounting_ok &= ok
        self.failed_streams += stream._failure is not None

    def merged(self, other: "Totals") -> dict:
        """Self plus ``other``, as a stats dict."""
        out = {k: self.ints[k] + other.ints[k] for k in INTS}
        for k in COUNTERS:
            out[k] = dict(self.counters[k] + other.counters[k])
        out["pending"] = self.pending + other.pending
        out["accounting_ok"] = self.accounting_ok and other.accounting_ok
        out["failed_streams"] = self.failed_streams + other.failed_streams
        return out
