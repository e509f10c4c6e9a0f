"""ONNX Runtime's optimized copy of a model, cached next to it for the next start.

Every session ONNX Runtime opens optimizes the graph first (constant folding, fusions,
layout transforms). On the demo model that is about half of the session's start (28 of
~45 ms when measured on one warm 2-core VM; ``bench/coldstart.py`` measures the start with
and without the file). ORT can save the optimized graph in its own format
(``optimized_model_filepath`` with an ``.ort`` name) and load it with optimizations off,
which gives the same kernels and so the same scores (a test checks them bit for bit).

Safety:

* **keyed** by the source file's sha256, the onnxruntime version and this CPU (the
  optimized graph holds layout choices for the CPU it was made on; ORT warns that it
  belongs to that machine), so another model, ORT or CPU never reads it;
* **verified**: the file's own sha256 is part of its name and is checked before use, so a
  truncated, corrupt or swapped file is never loaded;
* **atomic**: written under a temporary name in the same folder and renamed;
* **optional**: when the folder cannot be written (a read-only install or volume) or the
  file cannot be used, the session opens from the ONNX file as before and one INFO line on
  the ``hrlf.runtime`` logger says why. ``HRLF_MODEL_CACHE=0`` turns it off (and the
  cached backend measurement of ``auto``, :mod:`hrlf.runtime.backends.choice`).

Only CPU-only sessions use it (a GPU provider's graph is partitioned at load).
"""
from __future__ import annotations

import binascii
import functools
import logging
import os
import platform

from ..model_cache import (CACHE_DIR, ENV, cache_dir, discard, enabled,  # noqa: F401
                           listed, sha256_file, sha256_stamped)

log = logging.getLogger("hrlf.runtime")


@functools.lru_cache(maxsize=1)
def cpu_key() -> str:
    """Short hash of what decides the optimized layout: machine, CPU model and flags."""
    parts = [platform.machine()]
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("model name", "flags", "Features", "CPU part")):
                    parts.append(line.strip())
                if line.strip() == "":  # the first processor block is enough
                    break
    except OSError:
        parts.append(platform.processor())
    return f"{binascii.crc32(chr(10).join(parts).encode()):08x}"


def key(source_sha256: str, ort_version: str) -> str:
    """``<source sha 16>-ort<version>-cpu<hash>``: names the cache files of one setting."""
    return f"{source_sha256[:16]}-ort{ort_version}-cpu{cpu_key()}"


def find(model_path: str, k: str) -> str | None:
    """The verified cache file for key ``k``, or None (absent, or failing its hash)."""
    stem = os.path.splitext(os.path.basename(model_path))[0]
    for path in listed(cache_dir(os.path.dirname(model_path)), f"{stem}.{k}.", ".ort"):
        want = path[:-len(".ort")].rsplit(".", 1)[-1]
        try:
            if sha256_stamped(path)[:16] == want:
                return path
        except OSError:
            continue
        log.info("ort cache: %s fails its sha256 check; removing it", path)
        discard(path)
    return None


def temp_path(model_path: str, k: str) -> str | None:
    """A fresh temporary ``.ort`` name in the cache folder, or None when it is not writable."""
    d = cache_dir(os.path.dirname(model_path))
    stem = os.path.splitext(os.path.basename(model_path))[0]
    try:
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f".tmp-{os.getpid()}-{os.urandom(4).hex()}.{stem}.{k}.ort")
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        return path
    except OSError as e:
        log.info("ort cache: %s is not writable (%s); the model is optimized at every start",
                 d, e.strerror or e)
        return None


def commit(tmp: str, model_path: str, k: str) -> str | None:
    """Rename the file ORT wrote to its final, verifiable name; drop stale keys' files."""
    stem = os.path.splitext(os.path.basename(model_path))[0]
    d = os.path.dirname(tmp)
    try:
        if os.path.getsize(tmp) == 0:
            raise OSError("onnxruntime wrote nothing")
        final = os.path.join(d, f"{stem}.{k}.{sha256_file(tmp)[:16]}.ort")
        os.replace(tmp, final)
    except OSError as e:
        log.info("ort cache: could not keep the optimized model (%s)", e)
        discard(tmp)
        return None
    for old in listed(d, f"{stem}.", ".ort"):
        if old != final and f".{k}." not in os.path.basename(old):
            discard(old)  # another key: an older export, ORT or CPU
    return final


def open_session(ort, model_path: str, opts, providers: list, source_sha256: str | None):
    """An InferenceSession for ``model_path``, through the cache where it can be used.

    Args:
        ort: the onnxruntime module.
        model_path: the ONNX file.
        opts: SessionOptions as configured (optimization level ORT_ENABLE_ALL).
        providers: execution providers; anything but CPU alone bypasses the cache.
        source_sha256: the file's sha256 when already known (checked against spec.json).

    Returns:
        ``(session, how)`` with ``how`` one of ``"cache"`` (loaded the cached file),
        ``"wrote"`` (optimized and saved it) or ``"off"`` (no cache used).
    """
    if providers != ["CPUExecutionProvider"] or not enabled():
        return ort.InferenceSession(model_path, opts, providers=providers), "off"
    k = key(source_sha256 or sha256_file(model_path), ort.__version__)
    hit = find(model_path, k)
    if hit is not None:
        level = opts.graph_optimization_level
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return ort.InferenceSession(hit, opts, providers=providers), "cache"
        except Exception as e:  # noqa: BLE001 - any failure: the ONNX file still works
            log.info("ort cache: %s cannot be loaded (%s); using %s", hit,
                     (str(e).strip().splitlines() or [type(e).__name__])[0][:120], model_path)
            discard(hit)
        finally:
            opts.graph_optimization_level = level
    tmp = temp_path(model_path, k)
    if tmp is None:
        return ort.InferenceSession(model_path, opts, providers=providers), "off"
    opts.optimized_model_filepath = tmp
    try:
        session = ort.InferenceSession(model_path, opts, providers=providers)
    except BaseException:
        discard(tmp)
        raise
    finally:
        opts.optimized_model_filepath = ""
    final = commit(tmp, model_path, k)
    if final:
        log.info("ort cache: wrote %s", final)
    return session, "wrote" if final else "off"
