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
        """Add one stream's counts (a removed stream's, folded in once)."""
        self.add_all([stream])

    def add_all(self, streams) -> None:
        """Add many streams' counts: plain integer sums (no container per stream, so a
        large hub's stats() starts no garbage collection), counters only for streams that
        have any (most drop nothing)."""
        rec = used = seg = nod = empty = slots = cb = pend = failed = 0
        ok = True
        counters = self.counters
        for s in streams:
            a, bs = s.acct, s.buffers
            p = bs["text"].unused + bs["audio"].unused + bs["vision"].unused
            if a.dropped or a.segments_dropped or a.source_drops:
                with a.lock:
                    for k in COUNTERS:
                        counters[k].update(getattr(a, k))
                    dropped = sum(a.dropped.values())
            else:
                dropped = 0
            r, u = a.received, a.used
            ok = ok and r == u + dropped + p
            rec += r
            used += u
            seg += a.segments
            nod += a.no_data
            empty += a.empty_windows
            slots += a.slots_out_of_range
            cb += a.callback_errors
            pend += p
            failed += s._failure is not None
        for k, v in zip(INTS, (rec, used, seg, nod, empty, slots, cb)):
            self.ints[k] += v
        self.pending += pend
        self.accounting_ok = self.accounting_ok and ok
        self.failed_streams += failed

    def merged(self, other: "Totals") -> dict:
        """Self plus ``other``, as a stats dict."""
        out = {k: self.ints[k] + other.ints[k] for k in INTS}
        for k in COUNTERS:
            out[k] = dict(self.counters[k] + other.counters[k])
        out["pending"] = self.pending + other.pending
        out["accounting_ok"] = self.accounting_ok and other.accounting_ok
        out["failed_streams"] = self.failed_streams + other.failed_streams
        return out
