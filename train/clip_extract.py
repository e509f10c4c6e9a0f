"""One clip's features: extracted through the ``file:`` source's tracks (as the runtime
reads them) and cached by key as ``.npz``. Used by :mod:`hrlf.train.featurize` (which runs
it over many clips) and :mod:`hrlf.train.clips` (which builds the dataset)."""
from __future__ import annotations

import logging
import os

import numpy as np

from ..errors import DataError, HrlfError
from ..runtime import featurizers as fz
from ..runtime.spec import MODALITIES

log = logging.getLogger("hrlf.train")


def extract_clip(media: str, transcript, names: dict, asr="auto") -> dict:
    """Featurize one clip with the ``file:`` source's tracks (``asr``: the recognizer for
    a clip without transcript, an :class:`~hrlf.runtime.capture.asr_engines.AsrChoice`).

    Returns:
        ``times_<m>`` (N,), ``frames_<m>`` (N, dim), ``duration`` (s), ``no_face`` (count).
    """
    from ..runtime.capture.base import FileSource
    from ..runtime.capture.sources import file_tracks
    from ..runtime.sources import Status

    cues = [] if transcript is not None and transcript[0] == "text" else (
        transcript[1] if transcript is not None else None)
    try:
        tracks, feats, notes, _ = file_tracks(media, names, cues, asr=asr)
    except HrlfError as e:
        raise DataError(f"{media}: {e}") from None
    if not tracks:
        raise DataError(f"{media}: nothing to read ({'; '.join(notes.values())})")
    src = FileSource(f"file:{media}", tracks, feats, notes, step_s=1e9)
    events, no_face = [], 0
    while True:
        res = src.read(0.0)
        events += res.events
        no_face += sum(d.count for d in res.drops if d.reason == "no_face")
        if res.status == Status.EOS:
            break
    duration = _duration(tracks, events)
    src.close()
    out = {"duration": np.float64(duration), "no_face": np.int64(no_face)}
    for m in MODALITIES:
        ev = [e for e in events if e.modality == m]
        dim = fz.info(names[m]).dim
        out[f"times_{m}"] = np.array([e.t for e in ev], np.float64)
        out[f"frames_{m}"] = np.array([e.x for e in ev], np.float32).reshape(len(ev), dim)
    if transcript is not None and transcript[0] == "text":
        from ..runtime.featurizers.text import cue_times

        tf = fz.make_text(names["text"])
        t = cue_times(0.0, duration, tf.rate_hz)
        out["times_text"] = t
        out["frames_text"] = np.repeat(tf(transcript[1])[None], len(t), axis=0)
    return out


def _duration(tracks, events) -> float:
    d = max((e.t for e in events), default=0.0)
    for tr in tracks:
        if hasattr(tr, "fps"):
            d = max(d, tr.index / tr.fps)
        if hasattr(tr, "sr"):
            d = max(d, len(tr.x) / tr.sr)
    return float(d)


def cache_load(cache_dir: str, key: str, names: dict) -> dict | None:
    p = os.path.join(cache_dir, f"{key[:32]}.npz")
    if not os.path.isfile(p):
        return None
    try:
        with np.load(p, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        for m in MODALITIES:
            if data[f"frames_{m}"].shape[1:] != (fz.info(names[m]).dim,):
                return None
        return data
    except (OSError, ValueError, KeyError) as e:  # a stale or truncated cache entry
        log.warning("%s: unreadable feature cache (%s); re-extracting", p, e)
        return None


def cache_save(cache_dir: str, key: str, data: dict) -> None:
    p = os.path.join(cache_dir, f"{key[:32]}.npz")
    try:
        os.makedirs(cache_dir, exist_ok=True)
        tmp = f"{p}.tmp{os.getpid()}.npz"
        np.savez(tmp, **data)
        os.replace(tmp, p)
    except OSError as e:
        log.warning("%s: cannot write the feature cache (%s); continuing without it", p, e)
