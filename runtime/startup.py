"""``hrlf-run``'s start: fewer milliseconds to the first result, and none of it lasting.

:class:`quick_start` wraps the command; while it imports numpy and ONNX Runtime and opens
the model (``bench/coldstart.py`` measures the whole start against a bare import):

* **The cyclic garbage collector pauses.** Up to an open demo model, the start runs
  dozens of collections that free almost nothing of what it makes. When the model is
  open, the objects made so far (modules, classes, the session) are moved to the
  permanent generation (:func:`gc.freeze`) and collection resumes: a long stream's full
  collections then skip them too. On the way out they are unfrozen, so a caller that
  runs the command in-process (a test, a notebook) gets its collector back as it was.
* **numpy's BLAS starts without a thread pool.** OpenBLAS starts a pool of threads, one
  per core, when numpy is imported, and its threads spin for a while after each call. The
  runtime's numpy work is small (norms, a least-squares fit of a few rows, a mel
  filterbank), and inference runs on ONNX Runtime's own threads, so
  ``OPENBLAS_NUM_THREADS=1`` is set for numpy's import only. A value the user set
  (``OPENBLAS_NUM_THREADS``, ``GOTO_NUM_THREADS``, ``OMP_NUM_THREADS``) wins, and nothing
  changes when numpy was imported before. The variable is removed again, so child
  processes (ffmpeg, a Triton server, the OpenVINO measurement) inherit the user's
  environment unchanged.

Library users are not affected: only the command-line entry point calls this.
"""
from __future__ import annotations

import gc
import os
import sys

#: the variables OpenBLAS reads for its thread count, in its order of precedence
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


def import_numpy_single_blas() -> None:
    """Import numpy with a one-thread OpenBLAS, unless the user chose a thread count."""
    if "numpy" in sys.modules or any(os.environ.get(v) for v in BLAS_THREAD_VARS):
        import numpy  # noqa: F401
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import numpy  # noqa: F401
    finally:
        os.environ.pop("OPENBLAS_NUM_THREADS", None)


class quick_start:
    """``with quick_start() as ready:`` pauses the cyclic collector and imports numpy with
    one BLAS thread; ``ready()`` (call it once the model is open) freezes what was made so
    far and resumes collection. Leaving the block resumes collection if ``ready`` was not
    called, and unfreezes (in-process callers get their collector back as it was; a caller
    that had frozen objects itself keeps them frozen)."""

    def __enter__(self):
        self._was_enabled = gc.isenabled()
        self._unfreeze = gc.get_freeze_count() == 0
        self._paused = True
        gc.disable()
        try:
            import_numpy_single_blas()
        except BaseException:  # __exit__ is not called when __enter__ fails
            self.__exit__()
            raise
        return self.ready

    def ready(self) -> None:
        if self._paused:
            self._paused = False
            gc.freeze()
            if self._was_enabled:
                gc.enable()

    def __exit__(self, *exc) -> None:
        self.ready()
        if self._unfreeze:
            gc.unfreeze()
