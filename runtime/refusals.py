"""What ``Session.push`` returns: accepted, or refused with a reason and a one-line message.

``push`` returns a :class:`Pushed`: true when the frame was accepted, false when it was
refused, with ``reason`` (a :class:`Refusal`, a ``str`` enum whose values are the drop
reasons counted in ``stats()["dropped"]``) and ``message`` (one line naming the thing, what
is wrong and the fix)::

    ok = session.push("Audio", t, x)
    if not ok:
        print(ok.reason, ok.message)   # unknown_modality  push: modality 'Audio' is ...

With ``SessionConfig(strict=True)`` a refusal the caller caused (:data:`CALLER_MISTAKES`)
raises :class:`~hrlf.errors.InputError` with that message instead.
"""
from __future__ import annotations

import enum

import numpy as np

from ..errors import InputError, suggest
from .spec import MODALITIES


class Refusal(str, enum.Enum):
    """Why ``push`` refused a frame (the value is the drop reason in ``stats()``)."""

    UNKNOWN_MODALITY = "unknown_modality"
    MALFORMED_FRAME = "malformed_frame"
    WRONG_DIM = "wrong_dim"
    NONFINITE = "nonfinite"
    OVERFLOW = "overflow"
    BAD_TIMESTAMP = "bad_timestamp"
    NOT_TRAINED = "not_trained"
    CONDITION = "condition"
    DROP_SCHEDULE = "drop_schedule"
    CLOCK_JUMP = "clock_jump"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    LATE = "late"

    def __str__(self) -> str:
        return self.value


#: refusals the caller caused (strict mode raises on these); the others are stream timing
#: or the session's policy, which a live stream meets in normal operation
CALLER_MISTAKES = frozenset({Refusal.UNKNOWN_MODALITY, Refusal.MALFORMED_FRAME,
                             Refusal.WRONG_DIM, Refusal.NONFINITE, Refusal.OVERFLOW,
                             Refusal.BAD_TIMESTAMP})

_WHY = {
    Refusal.MALFORMED_FRAME: "is {what}, not real numbers; pass {dim} floats (a float32 "
                             "array of shape ({dim},))",
    Refusal.WRONG_DIM: "has shape {shape}, the model expects ({dim},); check the featurizer "
                       "against spec.json features.{m}.dim",
    Refusal.NONFINITE: "holds NaN or Inf; drop or repair such frames before pushing",
    Refusal.OVERFLOW: "has values beyond float32's range; scale the features",
    Refusal.BAD_TIMESTAMP: "has timestamp {t!r}, not seconds in [0, 1e10]; pass a real "
                           "number of seconds",
    Refusal.NOT_TRAINED: "is not used: the model was trained without {m} (spec.json "
                         "modalities_off); push the other modalities",
    Refusal.CONDITION: "is not used: the session's condition keeps other modalities",
    Refusal.DROP_SCHEDULE: "falls in a scheduled drop of {m}",
    Refusal.CLOCK_JUMP: "at t={t!r} is further than max_jump_s from the stream's time (a "
                        "clock jump; 3 in a row re-anchor the stream)",
    Refusal.DUPLICATE: "repeats the timestamp t={t!r} of the previous {m} frame",
    Refusal.OUT_OF_ORDER: "at t={t!r} is earlier than the previous {m} frame; push each "
                          "modality in time order",
    Refusal.LATE: "at t={t!r} is older than the next window to score; push frames sooner "
                  "(or raise grace_s)",
}


class Pushed:
    """The outcome of one ``push``: truthy when accepted; else ``reason`` and ``message``."""

    __slots__ = ("reason", "_modality", "_t", "_x", "_dim")

    def __init__(self, reason: str | None = None, modality=None, t=None, x=None,
                 dim: int | None = None):
        self.reason = None if reason is None else Refusal(reason)
        keep = reason in (Refusal.WRONG_DIM, Refusal.MALFORMED_FRAME)  # for the message only
        self._modality, self._t, self._x, self._dim = modality, t, x if keep else None, dim

    @property
    def accepted(self) -> bool:
        return self.reason is None

    def __bool__(self) -> bool:
        return self.reason is None

    def __eq__(self, other) -> bool:  # == True / == False as the bool push returned before
        if isinstance(other, bool):
            return bool(self) is other
        if isinstance(other, Pushed):
            return self.reason == other.reason
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.reason)

    def __int__(self) -> int:  # sum(push(...) for ...) counts the accepted frames
        return int(self.reason is None)

    def __add__(self, other):
        return int(self) + other

    __radd__ = __add__

    @property
    def message(self) -> str:
        """One line: ``push: <modality> frame <what is wrong>; <fix>`` ('' when accepted)."""
        if self.reason is None:
            return ""
        m = self._modality
        if self.reason is Refusal.UNKNOWN_MODALITY:
            return (f"push: modality {m!r} is unknown{suggest(str(m).lower(), MODALITIES)}; "
                    "use 'text', 'audio' or 'vision'")
        what = type(self._x).__name__
        shape = tuple(np.shape(self._x)) if self.reason is Refusal.WRONG_DIM else None
        return f"push: {m} frame " + _WHY[self.reason].format(
            what=what, shape=shape, dim=self._dim, m=m, t=self._t)

    def __repr__(self) -> str:
        return "Pushed(accepted)" if self.reason is None else f"Pushed({self.reason.value!r})"


ACCEPTED = Pushed()


def refuse(reason: str, modality, t, x, dim: int | None, strict: bool) -> Pushed:
    """The refusal of one frame (already counted); raises in strict mode for a caller's
    mistake."""
    out = Pushed(reason, modality, t, x, dim)
    if strict and out.reason in CALLER_MISTAKES:
        raise InputError(out.message)
    return out
