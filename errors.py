"""Typed errors, shared by every layer. Every message is one line: ``<thing>: <what is
wrong>; <fix>``.

The CLIs turn an :class:`HrlfError` into one log line (``hrlf-run ERROR ...``) and exit
status 1; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Callable, Iterable


class HrlfError(Exception):
    """Base of every error a user can cause (bad input, missing file, wrong artifact)."""


class SpecError(HrlfError):
    """A model spec is invalid, of an unknown version, or disagrees with its model file."""


class ArtifactError(HrlfError):
    """A model file, checkpoint or run directory is missing, corrupt or stale."""


class DataError(HrlfError):
    """A data file is missing or its arrays do not have the documented shapes/values."""


class InputError(HrlfError):
    """A user-supplied argument or stream input is invalid."""


class BackendUnavailable(HrlfError):
    """An inference backend (TensorRT, CUDA, torch) cannot be used on this machine."""


class ParityError(HrlfError):
    """An exported model does not match its reference within tolerance."""


class ShapeError(ParityError):
    """Output shapes differ between the exported model and its reference."""


class AtolError(ParityError):
    """Outputs differ by more than the tolerance."""


def suggest(name: str, valid: Iterable[str], aliases: dict | None = None) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest valid name, or ``""``.

    ``aliases`` maps names people try to the valid one they mean (``onnx`` -> ``ort``); a
    match there wins over spelling closeness."""
    import difflib  # only on a user's mistake: off the start-up path

    alias = (aliases or {}).get(str(name).lower())
    close = [alias] if alias else difflib.get_close_matches(str(name), list(valid), n=1,
                                                            cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def import_optional(module: str, what: str, fix: str) -> ModuleType:
    """Import an optional dependency, or raise :class:`BackendUnavailable` in one line:
    ``"<what> is not installed (<ImportError>); <fix>"``."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise BackendUnavailable(f"{what} is not installed ({e}); {fix}") from None


def unavailable_reason_of(probe: Callable[[], object]) -> str | None:
    """Why ``probe()`` raises :class:`BackendUnavailable` (its one line), or None if it runs."""
    try:
        probe()
    except BackendUnavailable as e:
        return str(e)
    return None

