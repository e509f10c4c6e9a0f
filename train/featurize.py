"""Featurize the clips of a clip list: cache first, then the rest in parallel, with progress.

Each clip's features are cached in ``cache_dir`` under its key (sha256 of the media, its
sidecars and transcript, and the featurizer names, which carry their versions:
:func:`hrlf.train.clips.clip_key`), so a second run reads them back and featurizes
nothing. Clips not in the cache are featurized in up to ``workers`` processes (default:
one per CPU core, at most 4, from 8 clips on; OpenCV limited to one thread each) behind a
progress bar with an ETA on a terminal (a log line elsewhere, :mod:`hrlf.train.progress`).
:data:`LAST` keeps the counts and time of the latest call for the run log.
"""
from __future__ import annotations

import os
import time

from ..runtime.cpus import usable_cpus

LAST: dict = {}


#: Fewer clips than this are featurized in-process: starting a worker (spawn, imports)
#: costs seconds, about what one clip costs.
PARALLEL_FROM = 8


def default_workers(n_todo: int) -> int:
    """One process per CPU core available to us (affinity and cgroup quota: more processes
    than a container's quota only take turns), at most 4; 1 below ``PARALLEL_FROM`` clips."""
    if n_todo < PARALLEL_FROM:
        return 1
    return max(1, min(4, usable_cpus(), n_todo))


def _init_worker() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


def _extract(args):
    from .clip_extract import extract_clip

    media, transcript, names, asr = args
    t0 = time.perf_counter()
    return extract_clip(media, transcript, names, asr), time.perf_counter() - t0


def featurize_rows(rows: list[dict], keys: list[str], names: dict, cache_dir: str,
                   progress: bool = False, workers: int | None = None, asr="auto") -> list[dict]:
    """Features of every row (see :func:`hrlf.train.clip_extract.extract_clip`), cached by key.

    Raises:
        DataError: a clip that cannot be read (one line naming it).
    """
    from .clip_extract import cache_load as _cache_load, cache_save as _cache_save
    from .progress import progress as reporter

    t0 = time.perf_counter()
    out: list = [_cache_load(cache_dir, k, names) for k in keys]
    todo = [i for i, d in enumerate(out) if d is None]
    n_workers = workers or default_workers(len(todo))
    clip_s = 0.0
    jobs = [(rows[i]["media"], rows[i]["transcript"], names, asr) for i in todo]
    if n_workers <= 1 or len(todo) <= 1:
        results = map(_extract, jobs)
        pool = None
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # spawn: the parent may hold torch/OpenMP threads that a fork would copy mid-state
        pool = ProcessPoolExecutor(n_workers, mp.get_context("spawn"), initializer=_init_worker)
        results = pool.map(_extract, jobs)
    desc = f"featurize ({len(keys) - len(todo)} cached, {n_workers} processes)"
    try:
        with reporter(progress and bool(todo), len(todo), desc, "clip") as bar:
            for i, (data, sec) in zip(todo, results):
                out[i] = data
                clip_s += sec
                _cache_save(cache_dir, keys[i], data)
                if bar is not None:
                    bar.update(1)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    LAST.clear()
    LAST.update({"clips": len(keys), "cached": len(keys) - len(todo), "featurized": len(todo),
                 "workers": n_workers if todo else 0, "seconds": round(time.perf_counter() - t0, 2),
                 "clip_seconds": round(clip_s, 2)})
    return out
