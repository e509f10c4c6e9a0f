"""Where a source's timestamps sit on the session's stream time, and what a jump does.

Policy (README, *Failure policy*):

* The session works on *stream time* ``t - origin``. The origin is 0, except:

  - **live start**: a live session's first frame more than ``ANCHOR_S`` (60 s) away from
    the session clock (epoch time from ``time.time()``, time since boot, ...) anchors the
    stream: that frame is taken as "now" (origin = t - clock). Logged once, reported in
    ``stats()["time_base"]``.
  - **re-anchor**: see below.

* A frame more than ``max_jump_s`` ahead of or behind the stream's latest accepted frame
  (live: the later of that frame and the session clock) is dropped as ``clock_jump``. One
  glitch therefore costs one frame and never makes the later frames ``late``.
* When ``confirm`` such frames come in a row (no accepted frame between them) and agree
  with each other (all within ``max_jump_s`` of the first), the source's clock really
  moved: the stream **re-anchors**. The third frame is accepted and placed one window
  after the last frame before the jump (live: at the session clock, if later), results
  keep reporting times on the source's new clock, and ``reanchors`` is counted. The
  windows skipped over are not walked: work stays proportional to frames.
"""
from __future__ import annotations

import math
from typing import Callable

#: A live stream's first timestamp this far from the session clock anchors the stream.
ANCHOR_S = 60.0


class Timebase:
    """Maps source timestamps to stream time; applies the jump policy.

    Args:
        max_jump_s: the horizon; a jump beyond it is ``clock_jump`` (or a re-anchor).
        confirm: frames in a row beyond the horizon that re-anchor the stream.
    """

    def __init__(self, max_jump_s: float, confirm: int = 3):
        if not (max_jump_s > 0 and math.isfinite(max_jump_s)):
            raise ValueError("max_jump_s must be a positive number of seconds")
        self.max_jump_s, self.confirm = float(max_jump_s), max(1, int(confirm))
        self.origin = 0.0
        self.anchored = "zero"  # "zero" | "first_frame" | "reanchored"
        self.reanchors = 0
        self._run: list[float] = []  # source times of consecutive frames beyond the horizon

    def place(self, t: float, latest: float | None, now: float | None,
              target: Callable[[], float]) -> tuple[str | None, float]:
        """Stream time of a frame at source time ``t``.

        Args:
            t: the frame's (validated) source timestamp.
            latest: stream time of the latest accepted frame (None: none yet).
            now: the session clock (live) or None (deadlines from the data).
            target: returns where a re-anchored frame goes (after every window used).

        Returns:
            ``(None, stream_t)`` to go on with the usual checks, or ``("clock_jump", nan)``.
        """
        s = t - self.origin
        ref = latest if now is None else (now if latest is None else max(latest, now))
        if ref is None:
            return None, s
        if latest is None and now is not None and abs(s - now) > ANCHOR_S:
            self.origin, self.anchored = t - now, "first_frame"  # live start, epoch etc.
            return None, now
        if abs(s - ref) <= self.max_jump_s:
            return None, s
        if self._run and abs(t - self._run[0]) > self.max_jump_s:
            self._run = []  # this glitch disagrees with the earlier ones: a new run
        self._run.append(t)
        if len(self._run) < self.confirm:
            return "clock_jump", math.nan
        self._run = []
        to = target()
        self.origin, self.anchored = t - to, "reanchored"
        self.reanchors += 1
        return None, to

    def accepted(self) -> None:
        """A frame was accepted: a run of jumps is broken."""
        if self._run:
            self._run = []

    def stats(self) -> dict:
        return {"origin_s": self.origin, "anchored": self.anchored,
                "max_jump_s": self.max_jump_s, "reanchors": self.reanchors}
