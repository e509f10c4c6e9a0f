"""A model folder's cache (``MODEL_DIR/.hrlf-cache/``) and the sha256 of its files.

The folder holds what a start can reuse: ONNX Runtime's optimized model
(:mod:`hrlf.runtime.backends.ort_cache`), ``auto``'s backend measurement
(:mod:`hrlf.runtime.backends.choice`), the demo recording (:mod:`hrlf.runtime.demo_cache`)
and **sha256 stamps**: hashing a model file at every start to check it against
``spec.json`` costs a read of the whole file and loading OpenSSL (about 5 ms of the demo's
cold start). :func:`sha256_stamped` hashes a file once and keeps the digest with the file's
size, modification time (ns), inode and device; while those are unchanged the digest is
taken from the stamp (a file modified in the last 2 s is not stamped, as git does). A file
rewritten in place changes its size or modification time, so this catches what the check
is for (a model and a spec from different exports, a truncated
copy); it does not defend against someone who rewrites a file and resets its timestamps.
A folder that cannot be written: the file is hashed at every start, as before.
``HRLF_MODEL_CACHE=0`` turns the whole folder off.
"""
from __future__ import annotations

import os
import time

CACHE_DIR = ".hrlf-cache"
ENV = "HRLF_MODEL_CACHE"
#: a file modified this recently is not stamped: file times tick in steps of a few ms, so
#: a rewrite right after the hash could keep the same time (git's "racy" files)
SETTLED_NS = 2_000_000_000


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "off", "false", "no")


def cache_dir(model_dir: str) -> str:
    return os.path.join(model_dir, CACHE_DIR)


def listed(d: str, prefix: str, suffix: str) -> list[str]:
    """Sorted paths of the entries of ``d`` named ``PREFIX*SUFFIX`` ([] when ``d`` cannot be
    listed). By os.listdir: glob and fnmatch are imports a start need not pay."""
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return []
    return [os.path.join(d, n) for n in names if n.startswith(prefix) and n.endswith(suffix)]


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    import hashlib  # here: OpenSSL's load is a cold start's cost when no stamp is needed

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _stamp_path(path: str) -> str:
    d, name = os.path.split(os.path.abspath(path))
    return os.path.join(d if os.path.basename(d) == CACHE_DIR else cache_dir(d), "sha256", name)


def forget(path: str | os.PathLike) -> None:
    """Remove the stamp of a file that is being removed."""
    try:
        os.remove(_stamp_path(os.fspath(path)))
    except OSError:
        pass


def discard(path: str | None) -> None:
    """Remove a file of the cache folder, and its stamp (errors ignored: best effort)."""
    if path:
        try:
            os.remove(path)
        except OSError:
            pass
        forget(path)


def _identity(st: os.stat_result) -> str:
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ino} {st.st_dev}"


def sha256_stamped(path: str | os.PathLike) -> str:
    """sha256 of ``path``, from its stamp while the file is unchanged (see the module doc)."""
    path = os.fspath(path)
    if not enabled():
        return sha256_file(path)
    stamp = _stamp_path(path)
    st = os.stat(path)
    try:
        with open(stamp, encoding="ascii") as f:
            ident, digest = f.read().rsplit(" ", 1)
        if ident == _identity(st) and len(digest) == 64:
            return digest
    except (OSError, ValueError):
        pass
    digest = sha256_file(path)
    settled = time.time_ns() - st.st_mtime_ns > SETTLED_NS
    if settled and _identity(os.stat(path)) == _identity(st):  # unchanged while it was read
        tmp = f"{stamp}.tmp-{os.getpid()}"
        try:
            os.makedirs(os.path.dirname(stamp), exist_ok=True)
            with open(tmp, "w", encoding="ascii") as f:
                f.write(f"{_identity(st)} {digest}")
            os.replace(tmp, stamp)
        except OSError:  # a read-only folder: hashed at every start
            discard(tmp)
    return digest
