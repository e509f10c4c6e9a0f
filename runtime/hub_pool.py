"""The hub's inference threads: batches of jobs scored in parallel, each stream's in order.

ONNX Runtime (one intra-op thread) and the Triton client release the GIL while a call
runs, so ``workers`` threads keep up to ``workers`` cores busy with inference while the
hub's own thread collects and packs the next windows. A thread starts only when a batch
waits and every running one is busy, so a hub that one core keeps up with runs one call
at a time and leaves the other cores to whatever else runs.

Order: a stream's jobs are never scored by two threads at once. The hub only submits a
job whose stream has nothing in flight (:meth:`InferencePool.busy`), so every stream's
results are delivered in window order; ``close()`` waits (bounded) for a stream's jobs in
flight before it scores the last windows (:meth:`InferencePool.wait_streams`).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

log = logging.getLogger("hrlf.runtime.hub")


class InferencePool:
    """Threads that run ``score(jobs)`` for submitted batches.

    Args:
        score: scores a batch of jobs and delivers their results (must not raise; a bug
            that does is logged).
        workers: most batches scored at once.
        done: called (outside the pool's lock) after each batch, so the hub can submit
            the next one.
        name: thread name prefix.
    """

    def __init__(self, score: Callable[[list], None], workers: int,
                 done: Callable[[], None] = lambda: None, name: str = "hrlf-hub-infer"):
        self.score, self.workers, self.done, self.name = score, max(1, int(workers)), done, name
        self.cv = threading.Condition(threading.Lock())
        self.queue: deque = deque()
        self.threads = self.running = 0
        self.rows_out = 0  # rows queued or being scored
        self.inflight: dict[int, int] = {}  # id(stream) -> its jobs queued or being scored
        self.stopping = False
        self.batches = 0

    def free(self) -> int:
        """Batches that could start now (idle or not yet started threads)."""
        with self.cv:
            return self.workers - self.running - len(self.queue)

    def busy(self, stream) -> bool:
        """True while a job of ``stream`` is queued or being scored."""
        return id(stream) in self.inflight

    def submit(self, jobs: list) -> None:
        with self.cv:
            self.queue.append(jobs)
            self.rows_out += sum(j.rows for j in jobs)
            for j in jobs:
                k = id(j.stream)
                self.inflight[k] = self.inflight.get(k, 0) + 1
            idle = self.threads - self.running - (len(self.queue) - 1)
            if idle <= 0 and self.threads < self.workers and not self.stopping:
                self.threads += 1
                threading.Thread(target=self._work, daemon=True,
                                 name=f"{self.name}-{self.threads}").start()
            self.cv.notify()

    def wait_streams(self, streams, deadline: float) -> bool:
        """Wait until no job of ``streams`` is in flight, at most until ``deadline``
        (monotonic). False: timed out."""
        keys = {id(s) for s in streams}
        with self.cv:
            while keys & self.inflight.keys():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cv.wait(min(left, 0.1))
        return True

    def drain(self, deadline: float) -> bool:
        """Wait until every submitted batch was scored (False: ``deadline`` passed)."""
        with self.cv:
            while self.queue or self.running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cv.wait(min(left, 0.1))
        return True

    def stop(self) -> None:
        """Let the threads exit once the queue is empty."""
        with self.cv:
            self.stopping = True
            self.cv.notify_all()

    def stats(self) -> dict:
        with self.cv:
            return {"workers": self.workers, "threads": self.threads, "running": self.running,
                    "queued_batches": len(self.queue), "rows_in_flight": self.rows_out,
                    "batches": self.batches}

    def _work(self) -> None:
        while True:
            with self.cv:
                while not self.queue and not self.stopping:
                    self.cv.wait()
                if not self.queue:
                    self.threads -= 1
                    return
                jobs = self.queue.popleft()
                self.running += 1
            try:
                self.score(jobs)
            except Exception:  # a bug, not a stream's input: log it, keep serving
                log.exception("hub inference thread: scoring a batch failed")
            finally:
                with self.cv:
                    self.running -= 1
                    self.batches += 1
                    self.rows_out -= sum(j.rows for j in jobs)
                    for j in jobs:
                        k = id(j.stream)
                        n = self.inflight[k] - 1
                        if n:
                            self.inflight[k] = n
                        else:
                            del self.inflight[k]
                    self.cv.notify_all()
                self.done()
