"""Session settings and the errors a session raises (re-exported by session.py)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import HrlfError, InputError

CALLBACK_POLICIES = ("continue", "stop")
BACKEND_POLICIES = ("continue", "stop")
#: How long close() waits, in total, for the worker, the last windows and the callbacks.
CLOSE_TIMEOUT_S = 10.0


class SessionError(HrlfError):
    """The session stopped: its worker or its result callback failed (``__cause__``)."""


class SessionClosed(SessionError):
    """push()/start() after close()."""


@dataclass
class SessionConfig:
    """Streaming settings; ``None`` window/hop mean the spec's.

    Attributes:
        live: deadlines from the monotonic clock (True) or from the data (False).
        grace_s: live only: how long after a window's end late frames may still arrive.
        max_batch: most due windows scored in one backend call.
        max_inflight: live only: most due windows kept when inference falls behind; older
            ones are dropped and counted (``segments_dropped.backlog``).
        buffer_s: seconds of frames each modality buffer holds (drop-oldest beyond).
        condition: keep only these modalities (``la``, ``{l,v}``, ...); others are dropped.
        drops: scheduled outages ``(modality, t_from, t_to)``: frames inside are dropped.
        device: where windows are packed: ``cpu`` (numpy) or ``cuda`` (fused kernel).
        no_data: live only: deliver a ``status="no_data"`` result for every due window
            without frames (instead of skipping it), so that outages stay visible.
        max_jump_s: the clock-jump horizon (see timebase.py).
        on_callback_error: ``continue`` (count and log) or ``stop`` (the session stops).
        strict: ``push`` raises :class:`InputError` (one line) for a frame the caller got
            wrong (unknown modality, wrong dimension, not real numbers, NaN/Inf, a bad
            timestamp) instead of returning the refusal; the frame is still counted as
            dropped. Timing and policy refusals (late, duplicate, condition, ...) are
            returned either way.
            A callback that raises ``SystemExit`` or ``KeyboardInterrupt`` always stops the
            session, and the owner's next call re-raises it.
        on_backend_error: ``continue`` (windows of a failed backend call are dropped and
            counted as ``segments_dropped.backend_error``; the stream goes on) or ``stop``
            (the session stops; the next call raises ``SessionError``).
    """

    window_s: float | None = None
    hop_s: float | None = None
    live: bool = False
    grace_s: float = 0.1
    max_batch: int = 32
    max_inflight: int = 8
    buffer_s: float = 30.0
    condition: str | None = None
    drops: list = field(default_factory=list)
    device: str = "cpu"
    no_data: bool = False
    max_jump_s: float = 3600.0
    on_callback_error: str = "continue"
    strict: bool = False
    on_backend_error: str = "continue"

    def check(self) -> None:
        """Raise InputError for a setting out of range (one line naming it)."""
        for name, lo, hi in (("grace_s", 0.0, 3600.0), ("buffer_s", 0.0, 3600.0),
                             ("max_jump_s", 0.0, 1e10)):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and lo <= v <= hi):
                raise InputError(f"session config: {name}={v!r} must be a number in "
                                 f"[{lo:g}, {hi:g}]")
        for name in ("max_batch", "max_inflight"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"session config: {name}={v!r} must be a whole number >= 1")
        if self.on_callback_error not in CALLBACK_POLICIES:
            raise InputError(f"session config: on_callback_error={self.on_callback_error!r}; "
                             "use 'continue' or 'stop'")
        if self.on_backend_error not in BACKEND_POLICIES:
            raise InputError(f"session config: on_backend_error={self.on_backend_error!r}; "
                             "use 'continue' or 'stop'")
