"""Stream sources, opened by URI (jetson-utils ``videoSource`` style).

A source yields :class:`Event` (one timestamped feature frame of one modality) and
:class:`Drop` (something unusable it had to discard, with a reason) from ``read()``,
together with a :class:`Status`: ``OK``, ``TIMEOUT`` (nothing yet), ``EOS`` (finished)
or ``ERROR`` (a failure it has already reported as drops; the runtime keeps going).

``open_source(uri, spec)`` dispatches on the URI's scheme through a registry of lazy
factories, so a source whose libraries are missing costs nothing until it is asked for.
"""
from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ..errors import InputError, suggest


class Status(enum.Enum):
    OK = "ok"
    TIMEOUT = "timeout"
    EOS = "eos"
    ERROR = "error"


@dataclass
class Event:
    """One feature frame: ``x`` is (dim,) array-like, ``t`` seconds on the source's clock."""

    t: float
    modality: str
    x: Any


@dataclass
class Drop:
    """Input the source discarded before it became an event (counted by reason)."""

    reason: str
    detail: str = ""
    count: int = 1


@dataclass
class ReadResult:
    status: Status
    events: list = field(default_factory=list)  # list[Event]
    drops: list = field(default_factory=list)   # list[Drop]


class Source(Protocol):
    """What the runtime needs from a source.

    Attributes:
        uri: what the user asked for.
        live: True when the world paces the source (camera, microphone); False when the
            runtime may read it as fast as it likes (files, replay, demo).
        featurizers: modality -> featurizer name the source's frames come from; checked
            against the model spec at start-up.

    Optional: ``status_reasons() -> list[str]``, why data is missing right now (e.g.
    ``device_lost``, ``silence``); ``hrlf-run`` adds them to its ``no_data`` lines.
    """

    uri: str
    live: bool
    featurizers: dict

    def read(self, timeout_s: float) -> ReadResult: ...

    def close(self) -> None: ...


#: scheme -> "module:function" (lazy) or a callable ``factory(uri, spec, **opts) -> Source``
_REGISTRY: dict[str, Any] = {
    "demo": "hrlf.runtime.stream_sources:open_demo",
    "replay": "hrlf.runtime.stream_sources:open_replay",
    "stdin": "hrlf.runtime.stream_sources:open_stdin",
    "camera": "hrlf.runtime.capture.sources:open_camera",
    "mic": "hrlf.runtime.capture.sources:open_mic",
    "file": "hrlf.runtime.capture.sources:open_file",
    "rtsp": "hrlf.runtime.capture.sources:open_rtsp",
}


def register_source(scheme: str, factory: str | Callable) -> None:
    """Add or replace a scheme (``factory`` may be ``"module:function"`` for a lazy import)."""
    _REGISTRY[scheme] = factory


def scheme_of(uri: str) -> str:
    """``camera0`` -> ``camera``, ``replay:x.npz`` -> ``replay``, ``rtsp://h`` -> ``rtsp``."""
    head = uri.split(":", 1)[0] if ":" in uri else uri
    return head.rstrip("0123456789") or head


def open_source(uri: str, spec, **opts) -> Source:
    """Open a source by URI.

    Raises:
        InputError: unknown scheme (with the closest valid one) or a source that cannot
            start (no device, missing file, missing library), in one line.
    """
    scheme = scheme_of(uri)
    factory = _REGISTRY.get(scheme)
    if factory is None:
        raise InputError(f"source '{uri}': unknown kind{_suggest_uri(uri, scheme)}; use one of "
                         "demo, replay:PATH, stdin, camera0, mic, file:PATH, rtsp://...")
    if isinstance(factory, str):
        mod, fn = factory.split(":")
        try:
            factory = getattr(importlib.import_module(mod), fn)
        except ImportError as e:
            raise InputError(f"source '{uri}': not available in this install ({e}); "
                             f"{CAPTURE_FIX}") from None
    return factory(uri, spec, **opts)


#: how to get the capture sources (camera, mic, file:, rtsp://) on a runtime-only install
CAPTURE_FIX = "pip install 'hrlf[capture]'"


def _suggest_uri(uri: str, scheme: str) -> str:
    """`` (did you mean 'camera0'?)`` for ``cam0``: the closest kind, written as a URI
    (its device number or path kept)."""
    hint = suggest(scheme, _REGISTRY)
    if not hint:
        return ""
    kind = hint.split("'")[1]
    rest = uri[len(uri.split(":", 1)[0]):] if ":" in uri else uri[len(scheme):]
    if kind in ("camera", "mic"):
        digits = rest.lstrip(":")
        number = digits if digits.isdigit() else "0" if kind == "camera" else ""
        return f" (did you mean '{kind}{number}'?)"
    if kind in ("replay", "file"):
        path = rest[1:] if rest.startswith(":") else ""
        return f" (did you mean '{kind}:{path or 'PATH'}'?)"
    if kind == "rtsp":
        return " (did you mean 'rtsp://HOST/PATH'?)"
    return hint
