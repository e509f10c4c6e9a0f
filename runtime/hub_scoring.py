"""How a hub scores the jobs of many streams: as few backend calls as possible, and a
failed call costs only the stream that caused it (an outage costs every row of it)."""
from __future__ import annotations

import time

from hrlf.runtime.backend_guard import BackendFailed
from hrlf.runtime.hub_stream import Job, concat_feeds


class Scoring:
    """Mixin of :class:`~hrlf.runtime.hub.Hub`: scoring jobs through the guarded backend."""

    def _score_jobs(self, jobs: list[Job]) -> None:
        """Score jobs of any streams in as few backend calls as possible; deliver results."""
        entries = [(j, n) for j in jobs for n, (kind, _, _) in enumerate(j.plan)
                   if kind == "batch"]
        for j in jobs:
            j.scores = [None] * len(j.plan)
        t0 = time.perf_counter()
        batch = sum(j.rows for j in jobs)
        error = self._run_entries(entries)
        infer_s = time.perf_counter() - t0
        t_done = self._monotonic()
        for j in jobs:
            j.stream.finish_job(j, j.scores, infer_s, batch, t_done, error)

    def _run_entries(self, entries: list) -> BackendFailed | None:
        """Fill ``job.scores`` for every batch entry, ``max_batch`` rows per call; a failed
        call is retried stream by stream so that only the failing stream's rows are lost
        (an outage is not retried: every row of it is lost). Returns the last failure."""
        chunk, rows, error = [], 0, None
        for e in entries + [None]:
            n = 0 if e is None else len(e[0].plan[e[1]][1])
            if chunk and (e is None or rows + n > self.max_batch):
                failed = self._call(chunk)
                error = failed or error
                if failed is not None and not failed.outage \
                        and len({id(j.stream) for j, _ in chunk}) > 1:
                    self.counts["batch_failures"] += 1
                    by_stream: dict = {}
                    for je in chunk:
                        by_stream.setdefault(id(je[0].stream), []).append(je)
                    for part in by_stream.values():
                        error = self._call(part) or error
                chunk, rows = [], 0
            if e is not None:
                chunk.append(e)
                rows += n
        return error

    def _call(self, chunk: list) -> BackendFailed | None:
        """One backend call for ``chunk``; None when it succeeded."""
        feeds = concat_feeds([j.plan[n][2][0] for j, n in chunk])
        try:
            with self._infer_lock:
                scores = self._guard.run(feeds)
        except BackendFailed as e:  # counted per stream by finish_job, logged by the guard
            return e
        self.counts["calls"] += 1
        self.counts["rows"] += len(scores)
        at = 0
        for j, n in chunk:
            k = len(j.plan[n][1])
            j.scores[n] = scores[at:at + k]
            at += k
        return None
