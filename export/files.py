"""Atomic folder writes: build in a temp folder next to the target, then rename."""
from __future__ import annotations

import os
import shutil
import tempfile


def make_temp_dir(final: str) -> str:
    """A temp folder beside ``final`` (same filesystem, so the rename is atomic).

    ``mkdtemp`` makes it private (0700); it gets the permissions a plain ``mkdir`` would.
    """
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.tmp-",
                           dir=os.path.dirname(final) or ".")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    return tmp


def replace_dir(tmp: str, final: str) -> None:
    """``os.replace`` for folders: move an old ``final`` aside, rename, delete the old."""
    old = None
    if os.path.lexists(final):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.old-",
                               dir=os.path.dirname(final) or ".")
        os.replace(final, os.path.join(old, "x"))
    os.replace(tmp, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)
