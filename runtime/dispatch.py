"""Per-stream delivery of results to callbacks, on a small pool of delivery threads.

Every stream that has an ``on_result`` callback owns an :class:`Outbox`: a bounded queue
of its results, drained in order by one delivery thread at a time. The threads come from a
:class:`DeliveryPool` (one per ``Hub``, shared by its streams; one of a single thread per
``Session``). Nothing else runs a callback, and no lock of a session or a hub is held
while one runs, so a callback may call anything of the API (``push``, ``close()``,
``hub.remove()``, ``hub.close()``), and:

* a slow or blocked callback delays only its own stream: its outbox fills and, beyond
  ``capacity``, the oldest results are dropped and counted; the pool starts another
  thread (up to ``max_threads``) when every thread has been inside one callback for longer
  than ``stall_s`` while other streams wait;
* ``Outbox.close(timeout_s)`` waits for the stream's queue to drain, at most
  ``timeout_s``; what is left then is dropped and counted, and it says so. From inside the
  stream's own callback it returns at once: the last results follow when it returns.

The pool never dies of a callback: :meth:`Outbox.close` and the counting are the caller's
(``deliver`` must not raise; sessions catch every ``BaseException`` of the user's code).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

log = logging.getLogger("hrlf.runtime.dispatch")

#: Results a stream's outbox holds before it drops the oldest.
OUTBOX_CAPACITY = 256
#: Results one thread delivers from a stream before it lets other streams have a turn.
TURN = 32
#: A delivery thread with nothing to do for this long exits (an unclosed session leaks none).
IDLE_EXIT_S = 10.0
_IDLE, _QUEUED, _RUNNING = 0, 1, 2


class Outbox:
    """One stream's queue of results for its callback (see the module docstring).

    Args:
        pool: the pool whose threads drain it.
        deliver: called with each item, on a pool thread; must not raise.
        dropped: called with ``(reason, n)`` for items dropped: ``callback_queue_full``
            (the queue overflowed), ``close_timeout`` (left when close timed out) or
            ``after_close`` (put after close).
        capacity: most items held.
    """

    def __init__(self, pool: "DeliveryPool", deliver: Callable, dropped: Callable[[str, int], None],
                 capacity: int = OUTBOX_CAPACITY):
        self.pool, self.deliver, self.dropped = pool, deliver, dropped
        self.capacity = capacity
        self.items: deque = deque()
        self.state = _IDLE
        self.runner: int | None = None  # ident of the thread delivering it now
        self.closed = False
        self.waiters = 0

    def put(self, item) -> None:
        """Queue an item for the callback (never blocks)."""
        reason = None
        with self.pool.cv:
            if self.closed:
                reason = "after_close"
            else:
                if len(self.items) >= self.capacity:
                    self.items.popleft()
                    reason = "callback_queue_full"
                self.items.append(item)
                if self.state == _IDLE:
                    self.pool._ready_locked(self)
        if reason is not None:
            self.dropped(reason, 1)

    def pending(self) -> int:
        with self.pool.cv:
            return len(self.items) + (self.state == _RUNNING)

    def in_callback(self) -> bool:
        """True on the thread that is delivering this outbox's item now."""
        return self.runner == threading.get_ident()

    def close(self, timeout_s: float) -> bool:
        """Wait until every queued item was delivered, at most ``timeout_s``; drop (and
        count) what is left. Returns False when it timed out. Idempotent."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        pool = self.pool
        with pool.cv:
            if self.closed:
                return True
            if self.in_callback():  # our own callback: the rest follows when it returns
                return True
            self.waiters += 1
            try:
                while self.items or self.state == _RUNNING:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    pool.done.wait(min(left, 0.1))
                    pool._grow_locked()
            finally:
                self.waiters -= 1
            left_over = len(self.items)
            timed_out = bool(left_over) or self.state == _RUNNING
            self.items.clear()
            self.closed = True
        if left_over:
            self.dropped("close_timeout", left_over)
        return not timed_out


class DeliveryPool:
    """Threads that drain outboxes (see the module docstring).

    Args:
        name: thread name prefix.
        max_threads: most delivery threads (a blocked callback holds one).
        stall_s: a callback running this long no longer counts as serving the others.
    """

    def __init__(self, name: str = "hrlf-deliver", max_threads: int = 16, stall_s: float = 0.2):
        self.name, self.max_threads, self.stall_s = name, max(1, int(max_threads)), stall_s
        lock = threading.Lock()
        self.cv = threading.Condition(lock)  # delivery threads wait here for work
        self.done = threading.Condition(lock)  # Outbox.close waits here for its queue
        self.ready: deque[Outbox] = deque()
        self.threads = 0
        self.idle = 0
        self.busy: dict[int, float] = {}  # thread ident -> when its current item started
        self.stopping = False
        self.blocked_peak = 0  # most threads seen inside one callback past stall_s

    def outbox(self, deliver: Callable, dropped: Callable[[str, int], None],
               capacity: int = OUTBOX_CAPACITY) -> Outbox:
        return Outbox(self, deliver, dropped, capacity)

    def _ready_locked(self, box: Outbox) -> None:
        box.state = _QUEUED
        self.ready.append(box)
        if self.idle:
            self.cv.notify()
        else:
            self._grow_locked()

    def _grow_locked(self) -> None:
        """Start a thread when work waits and no thread is free to take it."""
        if not self.ready or self.idle or self.stopping or self.threads >= self.max_threads:
            return
        now = time.monotonic()
        stuck = sum(1 for t0 in self.busy.values() if now - t0 > self.stall_s)
        self.blocked_peak = max(self.blocked_peak, stuck)
        if self.threads == 0 or stuck == self.threads:
            self.threads += 1
            threading.Thread(target=self._work, daemon=True,
                             name=f"{self.name}-{self.threads}").start()

    def poke(self) -> None:
        """Check for stalled threads (called now and then by whoever schedules work)."""
        with self.cv:
            self._grow_locked()

    def stats(self) -> dict:
        with self.cv:
            now = time.monotonic()
            return {"threads": self.threads, "in_callback": len(self.busy),
                    "blocked": sum(1 for t0 in self.busy.values() if now - t0 > self.stall_s),
                    "waiting_streams": len(self.ready)}

    def stop(self) -> None:
        """Let the threads exit once no work is queued (blocked ones when they return)."""
        with self.cv:
            self.stopping = True
            self.cv.notify_all()

    def _work(self) -> None:
        me = threading.get_ident()
        with self.cv:
            self.idle += 1
        while True:
            with self.cv:
                end = time.monotonic() + IDLE_EXIT_S
                while not self.ready and not self.stopping and time.monotonic() < end:
                    self.cv.wait(max(0.0, end - time.monotonic()))
                if not self.ready:  # stopping, or idle for long: a put starts one again
                    self.idle -= 1
                    self.threads -= 1
                    return
                box = self.ready.popleft()
                self.idle -= 1
                box.state, box.runner = _RUNNING, me
            self._turn(box, me)

    def _turn(self, box: Outbox, me: int) -> None:
        """Deliver up to TURN items of one outbox, then requeue it or mark it idle."""
        for _ in range(TURN):
            with self.cv:
                if not box.items:
                    break
                item = box.items.popleft()
                self.busy[me] = time.monotonic()
            try:
                box.deliver(item)
            except BaseException:  # noqa: BLE001 - deliver() catches the user's; a bug here
                log.exception("result delivery failed")
            finally:
                with self.cv:
                    self.busy.pop(me, None)
        with self.cv:
            box.runner = None
            if box.items and not box.closed:
                box.state = _QUEUED
                self.ready.append(box)
            else:
                box.state = _IDLE
            self.idle += 1
            if box.waiters:
                self.done.notify_all()
