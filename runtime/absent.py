"""Why a result lacks a modality: ``Result.absent`` (modality -> reason).

Every result that lacks a modality says why, whatever the source:

* ``not_trained``: the model was trained without it (``spec.json`` ``modalities_off``);
  its frames are dropped, counted as ``not_trained``;
* ``condition``: the session keeps other modalities only (``--condition``);
* ``drop_schedule``: a scheduled outage (``--drop``) covers the window;
* what the source knows (its ``reasons(t0, t1)``): ``demo_outage`` (the demo's scripted
  outages), ``not_in_source`` (a replay file without that modality), ``device_lost``,
  ``silence``, ``no_face`` ... (capture sources);
* ``no_frames``: nothing else known; no frame of it arrived in the window.

The session's reasons come first (they are certain); a source refines ``no_frames``.
"""
from __future__ import annotations

from .spec import MODALITIES

NO_FRAMES = "no_frames"


def session_reasons(session, r) -> dict:
    """``{modality: reason}`` for the modalities ``r`` lacks, from what the session knows."""
    off = set(getattr(session.spec, "modalities_off", ()) or ())
    out = {}
    for m in MODALITIES:
        if m in r.modalities:
            continue
        if m in off:
            out[m] = "not_trained"
        elif m not in session.kept:
            out[m] = "condition"
        elif any(dm == m and a < r.t_end and b > r.t_start for dm, a, b in session.cfg.drops):
            out[m] = "drop_schedule"
        else:
            out[m] = NO_FRAMES
    return out


def annotate(session, r) -> None:
    """Fill ``r.absent`` from the session (called for every result it delivers)."""
    r.absent = session_reasons(session, r)


def annotate_source(r, source) -> None:
    """Refine ``no_frames`` in ``r.absent`` with what ``source`` knows (its
    ``reasons(t0, t1) -> {modality: reason}``, where it has one)."""
    reasons = getattr(source, "reasons", None)
    unknown = [m for m, why in r.absent.items() if why == NO_FRAMES]
    if not unknown or not callable(reasons):
        return
    why = reasons(r.t_start, r.t_end) or {}
    for m in unknown:
        if why.get(m):
            r.absent[m] = str(why[m])
