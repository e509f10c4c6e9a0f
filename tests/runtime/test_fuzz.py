"""Fuzzing the failure policy with hypothesis: random frames (any timestamp, dims, types,
values), random bytes and broken files through ``Session``, the line reader, the replay
loader and a real ``hrlf-run --stream stdin`` process.

Invariants: no exception but the documented ones, work bounded by the frames pushed (a
counter of window-loop steps, not a clock), received = used + dropped exactly, and every
scored window equals packing (and scoring) the same frames offline.

CI runs a bounded budget (deterministic). More: ``HRLF_FUZZ_EXAMPLES=20000 pytest
tests/runtime/test_fuzz.py`` (random seeds; the process fuzz gets a twentieth of it).
"""
from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the [dev] extra")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hrlf.runtime.buffers import Accounting  # noqa: E402
from hrlf.runtime.frames import check_time, to_frame  # noqa: E402
from hrlf.runtime.spec import MODALITIES  # noqa: E402
from hrlf.runtime.windows import Packer  # noqa: E402

from .conftest import FakeBackend  # noqa: E402

ON_DEMAND = int(os.environ.get("HRLF_FUZZ_EXAMPLES", "0"))


def budget(ci: int, share: int = 1, shrink: bool = True):
    n = max(ci, ON_DEMAND // share) if ON_DEMAND else ci
    phases = [p for p in Phase if shrink or p != Phase.shrink]
    return settings(max_examples=n, deadline=None, derandomize=not ON_DEMAND, database=None,
                    suppress_health_check=list(HealthCheck), phases=phases)


# ---- strategies -------------------------------------------------------------------------
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)
TIMES = st.one_of(
    st.tuples(st.just("next"), st.floats(0, 3)),          # forward, gaps of any size
    st.tuples(st.just("dup"), st.just(0.0)),
    st.tuples(st.just("back"), st.floats(0, 50)),
    st.tuples(st.just("jump"), st.floats(60, 1e10)),      # beyond / around the horizon
    st.tuples(st.just("abs"), ANY_FLOAT),                 # any float at all
    st.tuples(st.just("int"), st.integers(-10**30, 10**30)),
    st.tuples(st.just("odd"), st.sampled_from(["1.5", True, None, b"1", 1 + 1j, [1.0]])),
)
VALUES = st.sampled_from(["good", "good", "good", "list", "ints", "wrong_dim", "bools",
                          "strs", "complex", "none", "nan", "huge", "absurd", "f64", "scalar"])
MODS = st.one_of(st.sampled_from(MODALITIES), st.sampled_from(["smell", "", "Audio"]),
                 st.sampled_from([None, 3, b"audio"]))
OPS = st.lists(st.one_of(st.tuples(st.just("push"), MODS, TIMES, VALUES, st.integers(0, 2**16)),
                         st.tuples(st.just("advance"), st.floats(0, 5))), max_size=60)


def make_value(kind: str, dim: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=dim).astype(np.float32)
    return {"good": x, "list": x.tolist(), "ints": rng.integers(-5, 5, dim).tolist(),
            "wrong_dim": x[: max(0, dim - 1 - seed % 3)], "bools": [True] * dim,
            "strs": [str(v) for v in x], "complex": x.astype(np.complex64),
            "none": None, "nan": np.where(np.arange(dim) == seed % dim, np.nan, x),
            "huge": [1e39] * dim, "absurd": np.full(dim, 3e38, np.float32),
            "f64": x.astype(np.float64), "scalar": 1.0}[kind]


def make_time(kind, v, last):
    if kind in ("next", "jump"):
        return last + v
    if kind == "dup":
        return last
    if kind == "back":
        return last - v
    return v


def offline_feeds(spec, window_s, frames: dict, starts):
    """Pack the given frames in one go (all at once, no streaming)."""
    class Buf:
        def __init__(self, rows, dim):
            rows = sorted(rows, key=lambda r: r[0])
            self._t = np.array([r[0] for r in rows], np.float64)
            self._x = np.array([r[1] for r in rows], np.float32).reshape(len(rows), dim)

        def times(self):
            return self._t

        def frames(self):
            return self._x
    bufs = {m: Buf(frames[m], spec.dim(m)) for m in MODALITIES}
    return Packer(spec, window_s, "cpu", Accounting()).pack(bufs, starts, lambda: 0.0)[0]


# ---- Session ----------------------------------------------------------------------------
@budget(300)
@given(ops=OPS, live=st.booleans(), no_data=st.booleans(),
       geometry=st.sampled_from([(None, None), (1.0, 0.5), (0.5, 0.5)]),
       max_jump=st.sampled_from([3600.0, 30.0]))
def test_session_fuzz(make_session, small_spec, ops, live, no_data, geometry, max_jump):
    now = [0.0]
    s, be = make_session(live=live, no_data=no_data, window_s=geometry[0], hop_s=geometry[1],
                         max_jump_s=max_jump, monotonic=lambda: now[0])
    last, pushes, calls = 0.0, 0, 0
    accepted = {m: [] for m in MODALITIES}   # (stream t, frame, push index) of accepted frames
    results = []                              # (result, push index when it came out)
    for op in ops:
        if op[0] == "advance":
            now[0] += op[1]
            calls += 1
            results += [(r, pushes) for r in s.advance()]
            continue
        _, m, (tk, tv), vk, seed = op
        t = make_time(tk, tv, last)
        x = make_value(vk, small_spec.dim(m) if m in MODALITIES else 8, seed)
        if not isinstance(m, str):
            with pytest.raises(TypeError):
                s.push(m, t, x)
            continue
        pushes += 1
        if s.push(m, t, x):
            last = float(t)
            accepted[m].append((float(t), to_frame(x, small_spec.dim(m))[1], pushes))
    results += [(r, pushes) for r in s.close()]
    st_ = s.stats()
    # exact accounting: every push counted once, used or dropped
    assert st_["received"] == pushes and st_["pending"] == 0 and st_["accounting_ok"], st_
    assert st_["used"] + sum(st_["dropped"].values()) == pushes
    # work bounded by frames (not by the time span the timestamps cover)
    n_acc = sum(len(v) for v in accepted.values())
    per_frame = math.ceil(s.window_s / s.hop_s) + 1
    assert s.work_steps <= 2 * n_acc * per_frame + (calls + 2) * (s.cfg.max_inflight + 3)
    # each scored window equals offline packing of the frames pushed before it came out
    ok = [(r, p) for r, p in results if r.status == "ok"]
    assert len(ok) == st_["segments"] and sum(len(c["modality_mask"]) for c in be.calls) == len(ok)
    if st_["time_base"]["anchored"] != "zero" or st_["dropped"].get("buffer_full"):
        return  # stream time is not the pushed time: compared in the tests of re-anchoring
    rows = [(c, i) for c in be.calls for i in range(len(c["modality_mask"]))]
    for (r, p), (feeds, i) in zip(ok, rows):
        before = {m: [(t, x) for t, x, q in accepted[m] if q <= p] for m in MODALITIES}
        ref = offline_feeds(small_spec, s.window_s, before, [r.segment * s.hop_s])
        for k, v in ref.items():
            np.testing.assert_allclose(feeds[k][i], v[0], rtol=0, atol=1e-6, err_msg=k)
        assert r.t_start == pytest.approx(r.segment * s.hop_s)


# ---- bytes through the line reader, then a session --------------------------------------
@budget(200)
@given(chunks=st.lists(st.one_of(st.binary(max_size=200), st.sampled_from([
    b'{"t": 0.5, "modality": "text", "x": [' + b"0.1," * 31 + b"0.2]}",
    b'{"t": NaN, "modality": "audio", "x": []}', b"\xef\xbb\xbf{}", b"\r\n", b"\x00",
    b'{"t": 1e400, "modality": "vision", "x": [1]}'])), max_size=30))
def test_line_reader_fuzz(make_session, chunks):
    from hrlf.runtime.sources import Status
    from hrlf.runtime.stream_sources import LinesSource

    data = b"\n".join(chunks)
    src = LinesSource("stdin", io.BytesIO(data))
    events, drops = [], []
    for _ in range(100000):
        r = src.read(0.5)
        events += r.events
        drops += r.drops
        if r.status == Status.EOS:
            break
    else:
        raise AssertionError("reader never ended")
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the reader's lines: split on "\n" only

    def is_blank(ln):
        try:
            return not ln.decode("utf-8").strip()
        except UnicodeDecodeError:
            return False
    blank = sum(map(is_blank, lines))
    assert len(events) + len(drops) + blank == len(lines)
    s, _ = make_session()
    for e in events:
        s.push(e.modality, e.t, e.x)
    s.close()
    assert s.stats()["accounting_ok"] and s.stats()["received"] == len(events)


# ---- broken replay files ----------------------------------------------------------------
@budget(60)
@given(cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)),
                                           max_size=4))
def test_replay_npz_fuzz(tmp_path_factory, recording, small_spec, cut, flips):
    from hrlf.errors import InputError
    from hrlf.runtime.sources import Status, open_source
    from hrlf.runtime.stream_sources import save_replay

    d = tmp_path_factory.mktemp("npz")
    save_replay(str(d / "ok.npz"), recording)
    data = bytearray((d / "ok.npz").read_bytes())
    data = data[:max(1, int(len(data) * cut))]
    for pos, byte in flips:
        data[min(len(data) - 1, int(pos * len(data)))] = byte
    (d / "bad.npz").write_bytes(bytes(data))
    try:
        src = open_source(f"replay:{d / 'bad.npz'}", small_spec)
    except InputError as e:
        msg = str(e)
        assert "\n" not in msg and ("not a readable replay file" in msg or "no '<modality>_t'"
                                     in msg or "must be (N, dim)" in msg), msg
        return
    s, _ = make_session_for(small_spec)
    while (r := src.read()).status != Status.EOS:
        for e in r.events:
            s.push(e.modality, e.t, e.x)
    s.close()
    assert s.stats()["accounting_ok"]


def make_session_for(spec):
    from hrlf.runtime.session import Session
    be = FakeBackend(spec)
    return Session(be, spec), be


# ---- a real hrlf-run process ------------------------------------------------------------
JUNK = st.one_of(
    st.binary(min_size=1, max_size=60).filter(lambda b: b"\n" not in b and b"\r" not in b),
    st.sampled_from(["{broken", "[]", '{"t": 1}', '{"t": "x", "modality": "audio", "x": []}']),
    st.tuples(st.sampled_from(["wrong_dim", "nan", "unknown", "strs", "bools", "glitch"]),
              st.sampled_from([1e4, 1.7e9, 9.9e9, 1e300, -5.0, float("nan"), float("inf")])))


def junk_line(j, last_t) -> bytes:
    if isinstance(j, bytes):
        return j
    if isinstance(j, str):
        return j.encode()
    kind, far = j
    x = [0.1] * 24
    m, t = "audio", 1.0
    if kind == "wrong_dim":
        x = x[:7]
    elif kind == "nan":
        x[3] = float("nan")
    elif kind == "unknown":
        m = "smell"
    elif kind == "strs":
        x = [str(v) for v in x]
    elif kind == "bools":
        x = [True] * 24
    else:  # a valid frame far off the stream's clock: a single clock_jump / bad_timestamp
        t = last_t + far if math.isfinite(far) and far > 0 else far
    return json.dumps({"t": t, "modality": m, "x": x}).encode()


def expected_segments(ts: list, w: float, hop: float) -> list:
    """Windows a file stream emits: every window with frames that ends by the last frame,
    then (end of stream) each later window holding a frame no emitted window holds.
    Window k is [k*hop, k*hop + w), tested exactly."""
    def inside(t, k):
        return k * hop <= t < k * hop + w
    ks = sorted({k for t in ts for k in range(max(0, math.floor((t - w) / hop) - 1),
                                               math.floor(t / hop) + 2) if inside(t, k)})
    out = [k for k in ks if k * hop + w <= ts[-1]]
    used = {t for t in ts for k in out if inside(t, k)}
    for k in ks[len(out):]:
        here = {t for t in ts if inside(t, k)}
        if here - used:
            out.append(k)
            used |= here
    return out


@budget(8, share=20, shrink=False)  # a process per example: report, do not shrink
@given(start=st.sampled_from([0.0, 0.013, 1e6 + 0.25, 1.7e9]),
       gaps=st.lists(st.one_of(st.floats(0.001, 0.4), st.floats(0.4, 4), st.floats(100, 3000)),
                     min_size=1, max_size=80),
       mods=st.lists(st.sampled_from(MODALITIES), min_size=80, max_size=80),
       junk=st.lists(st.tuples(st.integers(1, 200), JUNK), max_size=25), seed=st.integers(0, 999))
def test_hrlf_run_stdin_fuzz(start, gaps, mods, junk, seed):
    from hrlf.runtime.assets import demo_model_dir
    from hrlf.runtime.backends.base import open_backend
    from hrlf.runtime.spec import ModelSpec

    spec = ModelSpec.load(demo_model_dir())
    rng = np.random.default_rng(seed)
    t, clean, lines = start, {m: [] for m in MODALITIES}, []
    last = {}
    for gap, m in zip(gaps, mods):
        t = float(np.float64(t + gap))
        if last.get(m) == t:
            continue
        last[m] = t
        x = rng.normal(size=spec.dim(m)).astype(np.float32)
        clean[m].append((t, x))
        lines.append(json.dumps({"t": t, "modality": m, "x": x.tolist()}).encode())
    glitch_at, n_lines = set(), len(lines)
    for pos, j in sorted(junk, key=lambda pj: -pj[0]):   # after clean line pos-1: never first,
        pos = min(max(1, pos), n_lines)                   # never two glitches in a row (three
        #                                                   would re-anchor: tested elsewhere)
        if isinstance(j, tuple) and j[0] == "glitch":
            if pos in glitch_at:
                continue
            glitch_at.add(pos)
        lines.insert(pos, junk_line(j, t))  # a glitch is far ahead of every clean frame
    data = b"\n".join(lines) + b"\n"
    # a pipe is live by default; --pace fast reads it as a recorded dump (data deadlines)
    proc = subprocess.run([sys.executable, "-m", "hrlf.runtime.cli", "--stream", "stdin",
                           "--pace", "fast", "--stats-every", "0"], input=data, capture_output=True,
                          timeout=120 + 0.05 * len(lines))  # a hang detector, not a timing assert
    err = proc.stderr.decode()
    assert proc.returncode == 0 and "Traceback" not in err, err[-2000:]
    summ = json.loads([x for x in err.splitlines() if x.startswith('{"summary"')][-1])["summary"]
    n_clean = sum(len(v) for v in clean.values())
    assert summ["accounting_ok"] and summ["used"] == n_clean
    assert summ["received"] == summ["used"] + sum(summ["dropped"].values())
    out = [json.loads(x) for x in proc.stdout.decode().splitlines()]
    hop, w = spec.hop_s, spec.window_s
    want = expected_segments(sorted(tt for v in clean.values() for tt, _ in v), w, hop)
    assert [o["segment"] for o in out] == want
    frames = {m: [(tt, x) for tt, x in clean[m]] for m in MODALITIES}
    feeds = offline_feeds(spec, w, frames, [k * hop for k in want])
    be = open_backend("ort", demo_model_dir(), spec, precision="fp32")
    scores = np.clip(be.run(feeds), *spec.output.score_range)
    np.testing.assert_allclose([o["score"] for o in out], scores, atol=1e-5, rtol=0)
    assert all(check_time(o["t_start"]) is not None for o in out)
