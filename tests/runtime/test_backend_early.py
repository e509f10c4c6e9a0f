"""The backend opened on a thread while the source opens (runtime/backend_early.py)."""
from __future__ import annotations

import pytest

from hrlf.errors import InputError
from hrlf.runtime.backend_early import EarlyBackend, live_of_scheme


class Fake:
    def __init__(self, batch, opened):
        self.batch, self.closed = batch, False
        opened.append(self)

    def close(self):
        self.closed = True


def test_the_early_backend_is_used_when_its_batch_matches_else_reopened():
    opened: list = []
    early = EarlyBackend(lambda b: Fake(b, opened), 32)
    be = early.take(32)
    assert be.batch == 32 and not be.closed and len(opened) == 1
    early = EarlyBackend(lambda b: Fake(b, opened), 32)
    be = early.take(1)  # the source turned out live: batches of 1
    assert be.batch == 1 and opened[1].closed and not be.closed and len(opened) == 3


def test_an_error_opening_it_reaches_the_caller_and_discard_closes_it():
    def fail(b):
        raise InputError("backend 'x': unknown")

    with pytest.raises(InputError, match="unknown"):
        EarlyBackend(fail, 1).take(1)
    EarlyBackend(fail, 1).discard()  # a failing source: the backend's own error is dropped
    opened: list = []
    EarlyBackend(lambda b: Fake(b, opened), 1).discard()
    assert opened[0].closed


def test_only_kinds_whose_liveness_is_known_open_early():
    assert live_of_scheme("camera") is True and live_of_scheme("mic") is True
    assert live_of_scheme("demo") is False and live_of_scheme("file") is False
    assert live_of_scheme("stdin") is None and live_of_scheme("mykind") is None


def test_a_missing_source_closes_the_backend_opened_beside_it(tmp_path, monkeypatch):
    from hrlf.runtime import api
    from hrlf.runtime.backends import base

    closed = []
    real = base.open_backend

    def spy(*a, **k):
        be = real(*a, **k)
        orig = be.close
        be.close = lambda: (closed.append(be), orig())[1]
        return be

    monkeypatch.setattr(base, "open_backend", spy)
    with pytest.raises(InputError, match="nothing.npz"):
        api.open_runner("demo", f"replay:{tmp_path}/nothing.npz")
    assert len(closed) == 1
