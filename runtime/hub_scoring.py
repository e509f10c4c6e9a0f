"""How a hub scores the jobs of many streams: as few backend calls as possible, and a
failed call costs only the stream that caused it (an outage costs every row of it)."""
from __future__ import annotations

import time

from hrlf.runtime.backend_guard import BackendFailed
from hrlf.runtime.hub_pack import pack_batch
from hrlf.runtime.hub_stream import Job


class Scoring:
    """Mixin of :class:`~hrlf.runtime.hub.Hub`: scoring jobs through the guarded backend."""

    def _score_jobs(self, jobs: list[Job]) -> None:
        """Score jobs of any streams in as few backend calls as possible; deliver results."""
        entries = [(j, n) for j in jobs for n, (kind, _, _) in enumerate(j.plan)
                   if kind == "batch"]
        for j in jobs:
            j.scores = [None] * len(j.plan)
            j.packed = [None] * len(j.plan)
        batch = sum(j.rows for j in jobs)
        infer_s = [0.0]  # backend time of the calls (packing aside)
        error = self._run_entries(entries, infer_s)
        t_done = self._monotonic()
        self._observe_delay(jobs, t_done)
        for j in jobs:
            j.stream.finish_job(j, j.scores, infer_s[0], batch, t_done, error)

    def _run_entries(self, entries: list, infer_s: list) -> BackendFailed | None:
        """Fill ``job.scores`` for every batch entry, ``max_batch`` rows per call; a failed
        call is retried stream by stream so that only the failing stream's rows are lost
        (an outage is not retried: every row of it is lost). Returns the last failure."""
        # streams with their own window length pack to other shapes: never in one call
        entries = sorted(entries, key=lambda e: _shape(e[0]))
        chunk, rows, error = [], 0, None
        for e in entries + [None]:
            n = 0 if e is None else len(e[0].plan[e[1]][1])
            if chunk and (e is None or rows + n > self.max_batch
                          or _shape(e[0]) != _shape(chunk[0][0])):
                failed = self._call(chunk, infer_s)
                error = failed or error
                if failed is not None and not failed.outage \
                        and len({id(j.stream) for j, _ in chunk}) > 1:
                    with self._count_lock:
                        self.counts["batch_failures"] += 1
                    by_stream: dict = {}
                    for je in chunk:
                        by_stream.setdefault(id(je[0].stream), []).append(je)
                    for part in by_stream.values():
                        error = self._call(part, infer_s) or error
                chunk, rows = [], 0
            if e is not None:
                chunk.append(e)
                rows += n
        return error

    def _call(self, chunk: list, infer_s: list) -> BackendFailed | None:
        """One backend call for ``chunk`` (its seconds added to ``infer_s[0]``); None when
        it succeeded."""
        rows = [(cut, j.stream.packer) for j, n in chunk for cut in j.plan[n][2]]
        feeds, bad_rows, pack_s = pack_batch(rows)
        try:
            with self._infer_lock:
                t0 = time.perf_counter()
                scores = self._guard.run(feeds)
                dt = time.perf_counter() - t0
        except BackendFailed as e:  # counted per stream by finish_job, logged by the guard
            return e
        infer_s[0] += dt
        if self.cost is not None:
            self.cost.observe(len(scores), dt)
        with self._count_lock:
            self.counts["calls"] += 1
            self.counts["rows"] += len(scores)
        at, per_row = 0, pack_s / len(rows)
        for j, n in chunk:
            k = len(j.plan[n][1])
            j.scores[n] = scores[at:at + k]
            j.packed[n] = (feeds, at, per_row)
            bad = int(bad_rows[at:at + k].sum())
            if bad:  # counted once the rows are scored (a retried call packs them again)
                with j.stream.acct.lock:
                    j.stream.acct.slots_out_of_range += bad
            at += k
        return None


def _shape(job: Job) -> tuple:
    """Frames per window of each modality (the shape a job's windows pack to)."""
    return tuple(job.stream.packer.n_frames.values())
