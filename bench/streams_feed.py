"""Feeding N demo streams at real-time pace (bench/streams.py): the recording every stream
replays, the push schedule of each wall second, and the windows due in a span."""
from __future__ import annotations

import os
import time

import numpy as np

#: the demo's windows and hop (s) and the bench's grace (s): a window is due at
#: stream start + k * HOP + WINDOW + GRACE
WINDOW_S, HOP_S, GRACE_S = 2.0, 1.0, 0.1
#: --feed batch: at most one push_batch round this often (the chunks that came due since
#: wait for it, as in a gateway that forwards what it received every few ms)
BATCH_TICK_S = float(os.environ.get("HRLF_BENCH_TICK_S", "0.005"))


def recording(spec, seconds: float) -> dict:
    """The demo stream as per-modality (times, frames) arrays, shared by every stream."""
    from hrlf.runtime.sources import Status, open_source

    src = open_source("demo:0", spec, duration_s=seconds)
    per: dict = {m: ([], []) for m in spec.modalities}
    while True:
        r = src.read(0)
        for e in r.events:
            per[e.modality][0].append(e.t)
            per[e.modality][1].append(np.asarray(e.x, np.float32))
        if r.status == Status.EOS:
            break
    return {m: (np.asarray(t), np.stack(x)) for m, (t, x) in per.items()}


def second_schedule(rec: dict, phases: np.ndarray, s: int, mods: list):
    """Every push of wall second [s, s+1) of the run: (wall offsets, stream, modality, row),
    sorted by wall time. Stream i's clock starts at wall ``phases[i]``."""
    walls, sid, mid, row = [], [], [], []
    for j, m in enumerate(mods):
        times = rec[m][0]
        lo = np.searchsorted(times, s - phases, "left")
        hi = np.searchsorted(times, s + 1 - phases, "left")
        n = hi - lo
        streams = np.repeat(np.arange(len(phases)), n)
        idx = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(lo, n)
        walls.append(phases[streams] + times[idx])
        sid.append(streams)
        mid.append(np.full(len(idx), j))
        row.append(idx)
    w = np.concatenate(walls)
    order = np.argsort(w, kind="stable")
    return w[order], np.concatenate(sid)[order], np.concatenate(mid)[order], \
        np.concatenate(row)[order]


def chunk_schedule(rec: dict, phases: np.ndarray, s: int, mods: list, chunk_s: float):
    """Every chunk released in wall second [s, s+1): (wall offsets, stream, modality, lo, hi)
    sorted by wall time. A chunk holds a modality's frames of stream time
    [c * chunk_s, (c + 1) * chunk_s) and is released when it ends (as a featurizer emits)."""
    per_s = int(round(1 / chunk_s))
    c_lo = np.ceil((s - phases) * per_s).astype(int) - 1
    c_hi = np.ceil((s + 1 - phases) * per_s).astype(int) - 1
    n = np.maximum(c_hi - c_lo, 0)
    sid = np.repeat(np.arange(len(phases)), n)
    c = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + np.repeat(c_lo, n)
    keep = c >= 0
    sid, c = sid[keep], c[keep]
    walls = phases[sid] + (c + 1) * chunk_s
    out = []
    for j, m in enumerate(mods):
        lo = np.searchsorted(rec[m][0], c * chunk_s - 1e-9, "left")
        hi = np.searchsorted(rec[m][0], (c + 1) * chunk_s - 1e-9, "left")
        ok = hi > lo
        out.append((walls[ok], sid[ok], np.full(ok.sum(), j), lo[ok], hi[ok]))
    w = np.concatenate([o[0] for o in out])
    order = np.argsort(w, kind="stable")
    return tuple(np.concatenate([o[i] for o in out])[order] for i in range(5))


def feed_second(streams, rec, phases, mods, t0, sec, chunk_s: float, lags,
                push_batch=None) -> None:
    """Push wall second ``sec`` of every stream at its timestamps (``lags``: how late the
    pushes ran, ms). ``chunk_s`` > 0: chunks of that length with ``push_many``, or, given
    ``push_batch`` (``Hub.push_batch``), every chunk due by now (2 ms ahead) in one call
    per modality, as a gateway receiving many streams would; else frame by frame. The
    schedule is made before the second starts and walked as plain lists, so that the
    feeder's own cost stays small beside the hub's."""
    if chunk_s > 0:
        walls, sid, mid, lo, hi = (a.tolist() for a in
                                   chunk_schedule(rec, phases, sec, mods, chunk_s))
    else:
        walls, sid, mid, lo = (a.tolist() for a in second_schedule(rec, phases, sec, mods))
        hi = None
    times = [rec[m][0] for m in mods]
    frames = [rec[m][1] for m in mods]
    if push_batch is not None and hi is not None:
        return _feed_batches(streams, walls, sid, mid, lo, hi, mods, times, frames, t0,
                             lags, push_batch)
    tlist = [t.tolist() for t in times]
    pushers = [(s.push_many if chunk_s > 0 else s.push) for s in streams]
    mono, sleep = time.monotonic, time.sleep
    for k, w in enumerate(walls):
        due = t0 + w
        now = mono()
        if due > now + 0.002:
            sleep(due - now)
        elif lags is not None and k % 16 == 0:
            lags.append(max(0.0, now - due) * 1e3)
        j, r = mid[k], lo[k]
        if hi is not None:
            pushers[sid[k]](mods[j], times[j][r:hi[k]], frames[j][r:hi[k]])
        else:
            pushers[sid[k]](mods[j], tlist[j][r], frames[j][r])


def _feed_batches(streams, walls, sid, mid, lo, hi, mods, times, frames, t0, lags,
                  push_batch) -> None:
    """Every chunk due by now (2 ms ahead), one ``push_batch`` per modality, in rounds at
    most every ``BATCH_TICK_S``: a chunk waits up to that long (counted in ``lags``)."""
    mono, sleep = time.monotonic, time.sleep
    k, n, last = 0, len(walls), 0.0
    while k < n:
        now = mono()
        wake = max(t0 + walls[k] - 0.002, last + BATCH_TICK_S)
        if wake > now:
            sleep(wake - now)
            now = mono()
        last = now
        if lags is not None:  # the first chunk of the round waited longest
            lags.append(max(0.0, now - t0 - walls[k]) * 1e3)
        groups: dict = {}
        while k < n and t0 + walls[k] <= now + 0.002:
            j, a, b = mid[k], lo[k], hi[k]
            g = groups.setdefault(j, ([], [], []))
            g[0].append(streams[sid[k]])
            g[1].append(times[j][a:b])
            g[2].append(frames[j][a:b])
            k += 1
        for j, (ss, ts, xs) in groups.items():
            push_batch(mods[j], ss, ts, xs)


def windows_due(phases: np.ndarray, t0: float, a: float, b: float) -> int:
    """Windows of all streams that come due in monotonic time [a, b): stream i's window
    k (k >= 0) is due at ``t0 + phases[i] + k * HOP_S + WINDOW_S + GRACE_S``."""
    first = t0 + phases + WINDOW_S + GRACE_S
    lo = np.maximum(np.ceil((a - first) / HOP_S), 0)
    hi = np.maximum(np.ceil((b - first) / HOP_S), 0)
    return int((hi - lo).sum())
