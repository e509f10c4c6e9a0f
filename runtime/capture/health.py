"""Why a modality is absent, over time: the capture side's answer to "no data or hung?".

Tracks record spans of stream time in which their modality had no frames for a known
reason; the runtime asks :meth:`Health.reasons` for a window and attaches the answer to the
window's result line (``"absent": {"audio": "silence", ...}``), also when a window has no
data at all. Reasons:

=================  ==========================================================================
reason             meaning
=================  ==========================================================================
``silence``        audio: the voice-activity gate found no speech
``no_speech``      text: speech recognition heard no words (or nothing was voiced)
``no_transcript``  text: the file has no transcript and speech recognition is off
``no_face``        vision: frames arrived but no face was detected
``device_lost``    a device or stream stopped delivering and is being reopened
``stall``          a stream stayed open but delivered nothing for ``--stall-s``
``starting``       a device was opened and has not delivered its first block yet
``unavailable``    the source has no such track, or its library is missing (see ``detail``)
``no_frames``      nothing arrived and the source knows no reason
=================  ==========================================================================
"""
from __future__ import annotations

import math
import threading

REASONS = ("silence", "no_speech", "no_transcript", "no_face", "device_lost", "stall",
           "starting", "unavailable", "no_frames")
#: spans older than this behind the newest are forgotten
KEEP_S = 300.0


class Health:
    """Thread-safe spans ``(t_from, t_to, reason)`` per modality, plus standing reasons."""

    def __init__(self):
        self._lock = threading.Lock()
        self._spans: dict[str, list[list]] = {}
        self._open: dict[str, tuple[float, str]] = {}
        self.standing: dict[str, str] = {}  # modality -> reason for the whole stream
        self.detail: dict[str, str] = {}    # modality -> one line (why, for the summary)

    def set_standing(self, modality: str, reason: str, detail: str = "") -> None:
        """``modality`` is absent for the whole stream (no track, no transcript, ...)."""
        with self._lock:
            self.standing[modality] = reason
            if detail:
                self.detail[modality] = detail

    def mark(self, modality: str, t_from: float, t_to: float, reason: str) -> None:
        """``modality`` had no frames over ``[t_from, t_to)`` because of ``reason``."""
        if not t_to > t_from:
            return
        with self._lock:
            spans = self._spans.setdefault(modality, [])
            if spans and spans[-1][2] == reason and t_from - spans[-1][1] <= 0.011:
                spans[-1][1] = max(spans[-1][1], t_to)
            else:
                spans.append([t_from, t_to, reason])
            newest = spans[-1][1]
            while spans and spans[0][1] < newest - KEEP_S:
                spans.pop(0)

    def begin(self, modality: str, t: float, reason: str) -> None:
        """An outage starts at ``t`` and lasts until :meth:`end` (e.g. ``device_lost``)."""
        with self._lock:
            self._open.setdefault(modality, (t, reason))

    def end(self, modality: str, t: float) -> None:
        """The outage of ``modality`` (if any) ended at ``t``."""
        with self._lock:
            start = self._open.pop(modality, None)
        if start is not None:
            self.mark(modality, start[0], t, start[1])

    def outage(self, modality: str) -> str | None:
        """The reason of the outage ``modality`` is in now, or None."""
        with self._lock:
            o = self._open.get(modality)
        return o[1] if o else None

    def reasons(self, t_from: float, t_to: float) -> dict[str, str]:
        """Per modality, the reason covering most of ``[t_from, t_to)`` (open outages and
        standing reasons included); modalities with no known reason are left out."""
        out = dict(self.standing)
        with self._lock:
            cover: dict[str, dict[str, float]] = {}
            for m, spans in self._spans.items():
                for a, b, r in spans:
                    ov = min(b, t_to) - max(a, t_from)
                    if ov > 0:
                        cover.setdefault(m, {}).setdefault(r, 0.0)
                        cover[m][r] += ov
            for m, (a, r) in self._open.items():
                ov = t_to - max(a, t_from)
                if ov > 0 or math.isinf(t_to):
                    cover.setdefault(m, {}).setdefault(r, 0.0)
                    cover[m][r] += max(ov, 0.0) + 1e-6  # an open outage wins a tie
        for m, by in cover.items():
            out.setdefault(m, max(by, key=by.get))
        return out
