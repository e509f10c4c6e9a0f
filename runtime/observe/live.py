"""``/api/live``: what the live page draws (JSON), built when the page asks (once a second)."""
from __future__ import annotations

import math
import time

from hrlf import __version__
from hrlf.runtime.observe.health import readiness
from hrlf.runtime.spec import MODALITIES

#: seconds of stream time the page draws by default (``?seconds=`` up to the ring's length)
WINDOW_S = 300.0
_TOTALS = ("segments", "received", "used", "no_data", "empty_windows", "pending", "streams",
           "streams_added", "streams_removed", "callback_errors")


def _num(v):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else round(v, 4)


def _points(obs, seconds: float) -> list:
    with obs.lock:
        pts = list(obs.ring)
    if not pts:
        return []
    t_last = pts[-1][0]
    return [[round(t, 3), _num(score), "".join(m[0] for m in mods), dict(absent)]
            for t, score, mods, absent in pts if t >= t_last - seconds]


def live_json(target, seconds: float = WINDOW_S) -> dict:
    """The page's data: readiness, totals, presence, and each drawn stream's recent points
    ``[t_end, score or null, modalities present as initials ("tav"), {modality: reason}]``."""
    ready, checks = readiness(target)
    st = target.totals() or {}
    present, absent, now = target.observer.presence()
    streams = []
    for obs in target.observer.streams():
        if obs.ring is None:
            continue
        r = obs.latest
        streams.append({"name": obs.name, "points": _points(obs, seconds),
                        "modalities": list(r.modalities) if r is not None else [],
                        "absent": dict(r.absent) if r is not None else {}})
    streams.sort(key=lambda s: s["name"])
    totals = {k: st[k] for k in _TOTALS if k in st}
    for k in ("dropped", "segments_dropped", "source_drops"):
        totals[k] = dict(st.get(k, {}))
    return {"kind": target.kind, "version": __version__, "backend": target.backend_name(),
            "ready": ready, "checks": checks, "time": time.time(),
            "score_range": list(target.score_range()), "modalities": list(MODALITIES),
            "totals": totals,
            "presence": {"present": {m: present.get(m, 0) for m in MODALITIES},
                         "absent": [[m, why, n] for (m, why), n in sorted(absent.items())],
                         "streams_with": dict(now)},
            "streams": streams, "streams_open": st.get("streams", len(streams))}
