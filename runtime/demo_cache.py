"""The demo stream's recording, kept next to the model after its first generation.

Generating the synthetic demo recording imports ``numpy.random`` (about 8 ms, most of the
demo stream's share of a cold start: ``bench/coldstart.py``) and computes it; the same
seed, duration and config give the same recording every time, so the first demo run saves
it in ``MODEL_DIR/.hrlf-cache/`` as one raw float64 file and a JSON index, named by what
decides it (:func:`key`: the config, seed and duration; the numpy version, since numpy
does not promise the same random streams across versions; the generator's source file by
size and time, so an edit of it is a new name). Later starts read it back with
``np.fromfile``, without importing the generator. A folder that cannot be written, a file
that cannot be read or does not match its index: generated as before
(``HRLF_MODEL_CACHE=0`` turns it off with the ORT cache). A test checks that the read-back
recording equals a fresh generation, array for array.
"""
from __future__ import annotations

import binascii
import json
import logging
import os

import numpy as np

from . import model_cache
from ..version import __version__
from .recording import Recording

log = logging.getLogger("hrlf.runtime.demo_cache")
VERSION = 1  # of the generator's output and this file layout
KEEP = 8  # demo recordings kept per model (a seed or a duration each)


def key(config: dict, seed: int, duration_s: float) -> str:
    """The file name of a demo recording: a hash of what decides it (the model's synthetic
    config, the seed, the duration, the generator's source file by size and time, hrlf's and
    numpy's versions), read without importing the generator."""
    gen = os.path.join(os.path.dirname(os.path.abspath(__file__)), "synthetic.py")
    try:
        st = os.stat(gen)
        generator = [st.st_size, st.st_mtime_ns]
    except OSError:
        generator = None
    what = json.dumps({"config": config, "seed": seed, "duration_s": duration_s,
                       "generator": generator, "hrlf": __version__, "numpy": np.__version__,
                       "v": VERSION}, sort_keys=True, default=str)
    return f"demo-{binascii.crc32(what.encode()):08x}-{len(what)}"


def load(model_dir: str, name: str) -> tuple[Recording, dict] | None:
    """``(recording, featurizers)`` kept under ``name`` (:func:`key`), or None (none kept,
    unreadable, or not matching its index)."""
    if not model_cache.enabled():
        return None
    base = os.path.join(model_cache.cache_dir(model_dir), name)
    try:
        with open(base + ".json", encoding="utf-8") as f:
            index_ = json.load(f)
        flat = np.fromfile(base + ".f64", dtype=np.float64)
        out, at = {}, 0
        for key, shape in index_["arrays"]:
            n = int(np.prod(shape))
            out[key] = flat[at:at + n].reshape(shape)
            at += n
        if at != flat.size:
            raise ValueError(f"{flat.size} values for an index of {at}")
        mods = index_["modalities"]
        rec = Recording(id=index_["id"], duration_s=float(index_["duration_s"]),
                        times={m: out[m + "_t"] for m in mods},
                        frames={m: out[m + "_x"].astype(np.float32) for m in mods},
                        knots=out["knots"], values=out["values"])
        return rec, dict(index_["featurizers"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        if not isinstance(e, FileNotFoundError):
            log.info("demo cache: %s cannot be read (%s); generating it", base, e)
        return None


def _prune(d: str) -> None:
    """Keep the :data:`KEEP` most recently written demo recordings."""
    try:
        idx = sorted(model_cache.listed(d, "demo-", ".json"), key=os.path.getmtime,
                     reverse=True)
    except OSError:  # another process pruned meanwhile
        return
    for old in idx[KEEP:]:
        for p in (old, old[:-len(".json")] + ".f64"):
            model_cache.discard(p)


def save(model_dir: str, name: str, rec: Recording, featurizers: dict) -> None:
    """Keep ``rec`` and its featurizer names under ``name`` for later starts (nothing when
    the folder cannot be written)."""
    if not model_cache.enabled():
        return
    d = model_cache.cache_dir(model_dir)
    base = os.path.join(d, name)
    arrays = [("knots", rec.knots), ("values", rec.values)]
    for m in rec.times:
        arrays += [(m + "_t", rec.times[m]), (m + "_x", rec.frames[m])]
    flat = np.concatenate([np.asarray(a, np.float64).ravel() for _, a in arrays])
    index_ = {"id": rec.id, "duration_s": rec.duration_s, "modalities": list(rec.times),
              "featurizers": featurizers,
              "arrays": [(k, list(np.shape(a))) for k, a in arrays]}
    tmp = f"{base}.tmp-{os.getpid()}"
    try:
        os.makedirs(d, exist_ok=True)
        flat.tofile(tmp + ".f64")
        with open(tmp + ".json", "w", encoding="utf-8") as f:
            json.dump(index_, f)
        os.replace(tmp + ".f64", base + ".f64")  # the data first: an index never points
        os.replace(tmp + ".json", base + ".json")  # at a file still being written
        _prune(d)
    except OSError as e:
        log.info("demo cache: %s is not writable (%s); the demo is generated at every start",
                 d, e.strerror or e)
        for p in (tmp + ".f64", tmp + ".json"):
            model_cache.discard(p)
