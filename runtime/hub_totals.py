"""Counts summed over many streams, cheaply: a hub's totals over its live streams and,
folded in once at removal, every stream it ever removed (memory stays flat however many
streams come and go)."""
from __future__ import annotations

from collections import Counter
from operator import attrgetter

import numpy as np

#: the integer counters of :class:`~hrlf.runtime.buffers.Accounting` that are summed
INTS = ("received", "used", "segments", "no_data", "empty_windows", "slots_out_of_range",
        "callback_errors")
COUNTERS = ("dropped", "segments_dropped", "source_drops")
_READ = attrgetter(*INTS)


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
        """Add many streams' counts: one C-level read of each stream's integers, its
        counters only when it has any (most streams drop nothing), sums in numpy."""
        rows, read = [], _READ
        for s in streams:
            a, bs = s.acct, s.buffers
            pending = bs["text"].unused + bs["audio"].unused + bs["vision"].unused
            if a.dropped or a.segments_dropped or a.source_drops:
                with a.lock:
                    row = read(a)
                    for k in COUNTERS:
                        self.counters[k].update(getattr(a, k))
                    dropped = sum(a.dropped.values())
            else:
                row, dropped = read(a), 0
            rows.append(row + (pending, dropped))
            self.failed_streams += s._failure is not None
        if not rows:
            return
        m = np.array(rows, np.int64)
        for k, v in zip(INTS, m[:, :len(INTS)].sum(0).tolist()):
            self.ints[k] += v
        received, used = m[:, INTS.index("received")], m[:, INTS.index("used")]
        pending, dropped = m[:, -2], m[:, -1]
        self.pending += int(pending.sum())
        self.accounting_ok &= bool((received == used + dropped + pending).all())

    def merged(self, other: "Totals") -> dict:
        """Self plus ``other``, as a stats dict."""
        out = {k: self.ints[k] + other.ints[k] for k in INTS}
        for k in COUNTERS:
            out[k] = dict(self.counters[k] + other.counters[k])
        out["pending"] = self.pending + other.pending
        out["accounting_ok"] = self.accounting_ok and other.accounting_ok
        out["failed_streams"] = self.failed_streams + other.failed_streams
        return out
