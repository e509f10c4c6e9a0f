"""A hypothesis state machine drives the Hub/Session API as embedders do: streams and lone
sessions come and go, frames are pushed from the main thread and from others, streams are
removed or closed from other threads and from inside their own callbacks, a callback
closes the whole hub, callbacks raise (``ValueError``, ``SystemExit``,
``KeyboardInterrupt``) or block. Whatever the order:

* nothing hangs: every call returns within a hang detector's limit, and ``close()`` with
  a blocked callback gives up after its ``timeout_s`` (``timed_out``);
* every scored segment is handed out exactly once, in order, or counted as not delivered
  (``callback_queue_full``, ``close_timeout``, ``session_stopped``), never both;
* accounting stays exact, and the hub's totals equal the sum of its streams.

CI runs a bounded budget; ``HRLF_FUZZ_EXAMPLES=N`` runs more.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from hrlf.errors import InputError
from hrlf.runtime.hub import Hub, HubConfig
from hrlf.runtime.session import Session, SessionConfig, SessionError
from tests.runtime.conftest import SMALL, FakeBackend
from tests.runtime.test_delivery_faults import wait_for

T = np.zeros(32, np.float32)
KINDS = ("plain", "raises", "exit", "interrupt", "blocks", "removes_itself", "closes_hub",
         "queue")
NOT_DELIVERED = ("callback_queue_full", "close_timeout", "session_stopped", "after_close")
HANG_S = 60.0  # a hang detector, not a timing assert
EXAMPLES = int(os.environ.get("HRLF_FUZZ_EXAMPLES", "25"))


_SPEC: list = []


def small_spec():
    """The runtime tests' small synthetic spec (made once)."""
    if not _SPEC:
        from hrlf.runtime.synthetic import make_synthetic

        data = make_synthetic(SMALL)
        _SPEC.append(data.spec(data.splits["train"].norm()))
    return _SPEC[0]


def in_thread(fn, *args):
    """Run fn in another thread; returns what it raised (or None). Fails on a hang."""
    out: list = []

    def run():
        try:
            fn(*args)
        except BaseException as e:  # noqa: BLE001 - reported to the caller
            out.append(e)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(HANG_S)
    assert not th.is_alive(), f"{getattr(fn, '__name__', fn)} hung"
    return out[0] if out else None


class Client:
    """One stream or lone session, and what its callback saw."""

    def __init__(self, machine, name: str, kind: str, lone: bool):
        self.m, self.name, self.kind, self.lone = machine, name, kind, lone
        self.seen: list[int] = []
        self.lock = threading.Lock()
        self.t = 0.0
        self.release = machine.release
        cb = None if kind == "queue" else self.on_result
        if lone:
            self.s = Session(FakeBackend(machine.spec), machine.spec, SessionConfig(),
                             on_result=cb).start()
        else:
            self.s = machine.hub.add_stream(name, on_result=cb)

    def on_result(self, r):
        with self.lock:
            self.seen.append(r.segment)
            n = len(self.seen)
        if self.kind == "raises":
            raise ValueError("callback bug")
        if self.kind == "exit" and n == 1:
            raise SystemExit(3)
        if self.kind == "interrupt" and n == 1:
            raise KeyboardInterrupt
        if self.kind == "blocks" and n == 2:
            self.release.wait(HANG_S)
        if self.kind == "removes_itself" and n == 2:
            assert self.s.close() == []
        if self.kind == "closes_hub" and n == 2:
            (self.s if self.lone else self.m.hub).close()

    def push(self, seconds: float) -> None:
        """Text frames for ``seconds`` more (file mode: a window per second comes due)."""
        for _ in range(int(seconds * 4)):
            self.t += 0.25
            try:
                self.s.push("text", self.t - 0.125, T)
            except (SessionError, SystemExit, KeyboardInterrupt):
                return  # closed, stopped, or the callback's interrupt re-raised: expected

    def close(self, timeout_s: float) -> None:
        try:
            self.s.close(timeout_s)
        except (SessionError, SystemExit, KeyboardInterrupt):
            pass

    def delivered_once(self) -> bool:
        """Every scored segment seen once (in order) or counted as not delivered."""
        st_ = self.s.stats()
        with self.lock:
            seen = list(self.seen)
        if self.kind == "queue":
            seen = [r.segment for r in self.s.results(timeout_s=0)]
            self.seen = seen
        lost = sum(st_["segments_dropped"].get(k, 0) for k in NOT_DELIVERED)
        return (seen == sorted(set(seen)) and len(seen) + lost == st_["segments"]
                and st_["accounting_ok"])


class HubMachine(RuleBasedStateMachine):
    clients = Bundle("clients")

    def __init__(self):
        super().__init__()
        self.spec = small_spec()
        self.release = threading.Event()
        self.hub = Hub(FakeBackend(self.spec), self.spec,
                       HubConfig(stream=SessionConfig(), delivery_threads=3)).start()
        self.all: list[Client] = []
        self.n = 0

    @rule(target=clients, kind=st.sampled_from(KINDS), lone=st.booleans())
    def add(self, kind, lone):
        self.n += 1
        try:
            c = Client(self, f"c{self.n}", kind, lone)
        except InputError:  # the hub was closed by a callback
            assert self.hub.closed or self.hub._closing
            return None
        self.all.append(c)
        return c

    @rule(c=clients, seconds=st.integers(1, 12), threaded=st.booleans())
    def push(self, c, seconds, threaded):
        if c is None:
            return
        if threaded:
            assert in_thread(c.push, seconds) is None
        else:
            c.push(seconds)

    @rule(c=consumes(clients), threaded=st.booleans())
    def close(self, c, threaded):
        if c is None:
            return
        remove = (lambda t: self.hub.remove(c.s, t)) if not c.lone else c.s.close
        fn = (lambda: c.close(1.0)) if c.lone else (lambda: _quiet(remove, 1.0))
        if threaded:
            in_thread(fn)
        else:
            fn()

    @rule()
    def stats_are_sums(self):
        st_ = self.hub.stats()
        assert st_["received"] == st_["used"] + sum(st_["dropped"].values()) + st_["pending"]

    @invariant()
    def never_negative_latency(self):
        for c in self.all[-3:]:
            lat = c.s.stats()["latency_ms"]
            assert all(v["p50"] >= 0 for v in lat.values())

    def teardown(self):
        try:
            t0 = time.monotonic()
            try:
                self.hub.close(timeout_s=1.0)
            except (SystemExit, KeyboardInterrupt):
                assert any(c.kind in ("exit", "interrupt") for c in self.all if not c.lone)
            for c in self.all:
                if c.lone:
                    c.close(1.0)
            assert time.monotonic() - t0 < HANG_S
            self.release.set()  # blocked callbacks return; their stream's rest was dropped
            for c in self.all:
                wait_for(c.delivered_once, 30.0, f"{c.name} ({c.kind}) exactly once")
            totals = self.hub.stats()
            hub_streams = [c for c in self.all if not c.lone]
            assert totals["segments"] == sum(c.s.stats()["segments"] for c in hub_streams)
            assert totals["accounting_ok"] and totals["pending"] == 0
        finally:
            self.release.set()


def _quiet(fn, *args):
    try:
        fn(*args)
    except (SessionError, SystemExit, KeyboardInterrupt):
        pass


TestHubAndSessionApiUnderAnyOrder = HubMachine.TestCase
TestHubAndSessionApiUnderAnyOrder.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=15, deadline=None,
    suppress_health_check=list(HealthCheck))
