"""What every track of a recording shares: :class:`Track` (events held past ``until_t``
for the next poll) and the ``#channel=N`` check. Used by the soundfile and OpenCV tracks
(:mod:`hrlf.runtime.capture.media`) and the PyAV ones (:mod:`hrlf.runtime.capture.avmedia`).
"""
from __future__ import annotations

from ...errors import InputError
from ..sources import Event


def check_channel(path: str, channel: int | None, n: int) -> None:
    """Raise InputError when ``channel`` is not one of the ``n`` channels of ``path``."""
    if channel is not None and not 0 <= channel < n:
        raise InputError(f"{path}#channel={channel}: the file has {n} channel"
                         f"{'s' if n != 1 else ''} (0..{n - 1}); pick one of them")


class Track:
    """Holds events produced past ``until_t`` for the next poll."""

    modality = ""
    done = False
    health = None  # a Health where absence spans are recorded (set by the source)

    def __init__(self):
        self._pending: list[Event] = []
        self.counts = {"frames": 0}

    def _split(self, events: list[Event], until_t: float) -> list[Event]:
        self._pending.extend(events)
        out = [e for e in self._pending if e.t < until_t]
        self._pending = [e for e in self._pending if e.t >= until_t]
        self.counts["frames"] += len(out)
        return out

    @property
    def exhausted(self) -> bool:
        return self.done and not self._pending

    def close(self) -> None:
        pass
