"""click parameter types shared by the hrlf CLIs (click and the standard library only)."""
from __future__ import annotations

import difflib
import math

import click

#: names users try for a backend -> the backend's name here
BACKEND_ALIASES = {"onnx": "ort", "onnxruntime": "ort", "onnx-runtime": "ort",
                   "tensorrt": "trt", "pytorch": "torch", "ov": "openvino"}


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
            key = str(value).lower()
            hint = self.aliases.get(key) or next(iter(difflib.get_close_matches(
                key, [str(c) for c in self.choices], n=1, cutoff=0.5)), None)
            listed = ", ".join(repr(str(c)) for c in self.choices)
            did = f" (did you mean '{hint}'?)" if hint else ""
            self.fail(f"{value!r} is not one of {listed}{did}.", param, ctx)


class FiniteRange(click.FloatRange):
    """A float option in a range that also refuses NaN and Inf (FloatRange lets NaN by)."""

    def convert(self, value, param, ctx):
        v = super().convert(value, param, ctx)
        if not math.isfinite(v):
            self.fail(f"{v} is not a finite number.", param, ctx)
        return v
