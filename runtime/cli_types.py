"""click parameter types shared by the hrlf CLIs (click and the standard library only)."""
from __future__ import annotations

import math

import click

from ..errors import suggest

from .backends import BACKEND_ALIASES  # noqa: F401 (re-exported for the CLIs)


class HintChoice(click.Choice):
    """``click.Choice`` that suggests the closest choice, or the choice an alias names
    (``onnx`` -> ``ort``), in its one-line error."""

    def __init__(self, choices, aliases: dict | None = None, case_sensitive: bool = True):
        super().__init__(choices, case_sensitive)
        self.aliases = dict(aliases or {})

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            listed = ", ".join(repr(str(c)) for c in self.choices)
            did = suggest(str(value), [str(c) for c in self.choices], self.aliases)
            self.fail(f"{value!r} is not one of {listed}{did}.", param, ctx)


class FiniteRange(click.FloatRange):
    """A float option in a range that also refuses NaN and Inf (FloatRange lets NaN by)."""

    def convert(self, value, param, ctx):
        v = super().convert(value, param, ctx)
        if not math.isfinite(v):
            self.fail(f"{v} is not a finite number.", param, ctx)
        return v
