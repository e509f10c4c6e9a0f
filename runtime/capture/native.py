"""Native-library noise: FFmpeg, OpenCV and ALSA write to stderr themselves; they do so only
with ``hrlf-run -v`` (errors then). Without ``-v`` the runtime's own one-line messages say
what went wrong."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger("hrlf.capture")
_ALSA_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                 ctypes.c_int, ctypes.c_char_p)


@functools.lru_cache(maxsize=1)
def _silent_alsa():
    """An ALSA error handler that prints nothing (kept alive for the process's lifetime)."""
    return _ALSA_HANDLER(lambda *a: None)


def configure(verbose: bool = False) -> None:
    """Route (or mute) the native libraries' own log output; idempotent."""
    try:
        import av

        av.logging.set_level(av.logging.ERROR if verbose else None)
    except ImportError:
        pass
    try:
        import cv2

        lg = cv2.utils.logging
        lg.setLogLevel(lg.LOG_LEVEL_ERROR if verbose else lg.LOG_LEVEL_SILENT)
    except (ImportError, AttributeError):
        pass
    if not verbose:
        name = ctypes.util.find_library("asound")
        if name:
            try:
                ctypes.cdll.LoadLibrary(name).snd_lib_error_set_handler(_silent_alsa())
            except (OSError, AttributeError) as e:
                log.debug("cannot mute ALSA (%s)", e)
