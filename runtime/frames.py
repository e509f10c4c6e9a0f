"""Validation of one pushed frame: its timestamp and its feature vector.

Only real numbers are accepted: Python ``int``/``float`` and numpy integer/floating
values or arrays. Strings (even ``"1.5"``), bools, complex numbers and ``None`` make the
frame ``malformed_frame`` (a timestamp of such a type is ``bad_timestamp``); nothing is
silently converted. Values that are finite in the input but overflow float32 on the way
in are ``overflow``, never counted as used.
"""
from __future__ import annotations

import math

import numpy as np

#: Largest timestamp accepted (seconds). Float64 still resolves 2 microseconds there, and
#: epoch time (1.7e9 s in 2024) fits until the year 2286. Beyond it: ``bad_timestamp``.
T_MAX = 1e10

_PLAIN = (float, int)
_NP_REAL = (np.floating, np.integer)
_REAL_KINDS = "fiu"


def _is_real_scalar(v) -> bool:
    tv = type(v)
    if tv is float or tv is int:
        return True
    return isinstance(v, _NP_REAL)  # np.bool_ is not an np.integer


def check_time(t) -> float | None:
    """The timestamp as a float, or None when it is not a usable one.

    A usable timestamp is a real number (not a bool or a string), finite, in [0, T_MAX].
    """
    if not _is_real_scalar(t):
        return None
    try:
        t = float(t)
    except OverflowError:  # an int beyond float range
        return None
    return t if 0.0 <= t <= T_MAX else None  # False for NaN as well


def _finite64(a: np.ndarray) -> bool:
    """Every value finite: a float64 sum of float32 values cannot overflow, so a finite sum
    means every value is finite (cheaper than isfinite().all()); wider inputs fall back to
    the exact check when their sum is not finite."""
    if math.isfinite(np.add.reduce(a, dtype=np.float64, axis=None)):
        return True
    return a.dtype.itemsize > 4 and bool(np.isfinite(a).all())


def to_frame(x, dim: int) -> tuple[str | None, np.ndarray | None]:
    """Validate a feature vector of ``dim`` real numbers.

    Returns:
        ``(None, float32 array)`` when usable, else ``(reason, None)`` with reason
        ``malformed_frame``, ``wrong_dim``, ``nonfinite`` or ``overflow``.
    """
    if isinstance(x, np.ndarray):
        if x.dtype == np.float32:
            if x.shape != (dim,):
                return "wrong_dim", None
            return (None, x) if _finite64(x) else ("nonfinite", None)
        src = x
    elif isinstance(x, (list, tuple)):
        for v in x:
            if not _is_real_scalar(v):
                return "malformed_frame", None
        try:
            src = np.asarray(x, np.float64)
        except OverflowError:  # a Python int beyond float64
            return ("overflow", None) if len(x) == dim else ("wrong_dim", None)
    else:
        try:
            src = np.asarray(x)
        except (TypeError, ValueError):
            return "malformed_frame", None
    if src.dtype.kind not in _REAL_KINDS:
        return "malformed_frame", None
    if src.shape != (dim,):
        return "wrong_dim", None
    if src.dtype.kind == "f" and not _finite64(src):
        return "nonfinite", None
    with np.errstate(over="ignore", invalid="ignore"):
        arr = src.astype(np.float32)
    if not _finite64(arr):
        return "overflow", None
    return None, arr
