"""Atomic folder writes: build in a temp folder next to the target, then rename.

Temp folders are named ``.<name>.tmp-<pid>-<random>`` (and ``.<name>.old-<pid>-<random>``
for the folder being replaced), so a later run can tell the leftovers of a killed process
(SIGKILL, power loss: nothing could clean up) from those of one still running:
:func:`clean_stale` removes the first and reports the second.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile

log = logging.getLogger("hrlf.export")


def make_temp_dir(final: str) -> str:
    """A temp folder beside ``final`` (same filesystem, so the rename is atomic).

    ``mkdtemp`` makes it private (0700); it gets the permissions a plain ``mkdir`` would.
    """
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.tmp-{os.getpid()}-",
                           dir=os.path.dirname(final) or ".")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


def replace_dir(tmp: str, final: str) -> None:
    """``os.replace`` for folders: move an old ``final`` aside, rename, delete the old."""
    old = None
    if os.path.lexists(final):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.old-{os.getpid()}-",
                               dir=os.path.dirname(final) or ".")
        os.replace(final, os.path.join(old, "x"))
    os.replace(tmp, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _owner(entry: str, prefix: str) -> int | None:
    """The pid in ``<prefix><pid>-<random>``; None for names without one (older versions)."""
    head = entry[len(prefix):].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a leftover of an earlier process that had our pid is still stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def clean_stale(final: str) -> dict[str, list[str]]:
    """Remove the temp folders that killed runs left beside ``final``.

    A ``.old-`` folder whose ``final`` is gone holds the previous ``final`` (the kill came
    between the two renames of :func:`replace_dir`): it is moved back, not deleted.
    Folders of a process that is still running are left alone and reported.

    Returns:
        ``{"removed": [...], "restored": [...], "in_use": [...]}`` (paths).
    """
    parent, name = os.path.dirname(final) or ".", os.path.basename(final)
    done: dict[str, list[str]] = {"removed": [], "restored": [], "in_use": []}
    try:
        entries = sorted(os.listdir(parent))
    except OSError:
        return done
    for kind in ("old", "tmp"):  # restore an old folder before judging anything else
        prefix = f".{name}.{kind}-"
        for entry in (e for e in entries if e.startswith(prefix)):
            path = os.path.join(parent, entry)
            pid = _owner(entry, prefix)
            if pid is not None and _alive(pid):
                done["in_use"].append(path)
                log.warning("%s: in use by a running process (pid %d); left alone", path, pid)
                continue
            inner = os.path.join(path, "x")
            if kind == "old" and not os.path.lexists(final) and os.path.isdir(inner):
                os.replace(inner, final)
                done["restored"].append(final)
                log.warning("restored %s from %s: an earlier run was killed while replacing "
                            "it", final, path)
            shutil.rmtree(path, ignore_errors=True)
            done["removed"].append(path)
            log.warning("removed %s, left by an earlier run that was killed%s", path,
                        f" (pid {pid})" if pid is not None else "")
    return done
