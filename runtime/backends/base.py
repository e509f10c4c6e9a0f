"""The backend protocol and a registry of lazily imported backends.

A backend runs one model on a batch: ``run(feeds) -> scores`` where ``feeds`` is a dict of
numpy arrays keyed by the model's input names and scores is a float32 ``(B,)`` array. I/O is
numpy only, so the streaming core never sees torch, CUDA or TensorRT objects.

``--backend auto`` tries TensorRT, then ONNX Runtime (or OpenVINO where it measures faster,
:mod:`hrlf.runtime.backends.choice`), then PyTorch, and logs why it skipped each one it did
not pick; naming a backend never falls back silently. ``triton`` (a Triton server over gRPC)
is only used when named.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Callable, Protocol

import numpy as np

from . import BACKEND_ALIASES
from ...errors import BackendUnavailable, InputError, suggest
from ..spec import ModelSpec

log = logging.getLogger("hrlf.runtime")


class Backend(Protocol):
    """What the runtime needs from an inference backend.

    Attributes:
        name: short description for output lines, e.g. ``ort-cpu-fp32``.
        spec: the model's spec.
        max_batch: the largest batch ``run`` accepts.
    """

    name: str
    spec: ModelSpec
    max_batch: int

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray: ...

    def close(self) -> None: ...


#: name -> "module:function" opening the backend: ``fn(model_dir, spec, **opts) -> Backend``
REGISTRY: dict[str, str] = {
    "trt": "hrlf.runtime.backends.trt:open_backend",
    "openvino": "hrlf.runtime.backends.openvino:open_backend",
    "ort": "hrlf.runtime.backends.ort:open_backend",
    "triton": "hrlf.runtime.backends.triton:open_backend",
}
#: Backends outside the torch-free core register under this entry-point group (the
#: package's own ``torch`` reference backend lives in ``hrlf.train``; see pyproject.toml).
PLUGIN_GROUP = "hrlf.backends"
#: where each plugin backend named here comes from, for the error when none is registered
PLUGIN_EXTRA = {"torch": "train"}
AUTO_ORDER = ("trt", "ort", "torch")
#: the library each auto candidate needs: auto skips a candidate whose library is not
#: installed without importing its backend module (trt's pulls in the engine cache)
AUTO_NEEDS = {"trt": "tensorrt", "ort": "onnxruntime", "torch": "torch"}
#: Not auto candidates of their own: a remote server is a deployment choice, not a
#: fallback; OpenVINO replaces ONNX Runtime in auto only where it measures faster for the
#: batch sizes in use (:mod:`hrlf.runtime.backends.choice`).
NAMED_ONLY = ("openvino", "triton")
BACKENDS = ("auto",) + AUTO_ORDER + NAMED_ONLY


def _factory(name: str) -> Callable:
    if name in REGISTRY:
        mod, fn = REGISTRY[name].split(":")
        return getattr(importlib.import_module(mod), fn)
    from importlib.metadata import entry_points

    eps = entry_points()
    found = (eps.select(group=PLUGIN_GROUP, name=name) if hasattr(eps, "select")  # 3.10+
             else [e for e in eps.get(PLUGIN_GROUP, ()) if e.name == name])
    for ep in found:
        return ep.load()
    raise BackendUnavailable(f"backend '{name}': no plugin registered under '{PLUGIN_GROUP}'; "
                             f"reinstall hrlf with pip install 'hrlf[{PLUGIN_EXTRA.get(name, 'dev')}]'")


def open_backend(name: str, model_dir: str, spec: ModelSpec, **opts) -> Backend:
    """Open backend ``name`` (or the best available one for ``auto``).

    Raises:
        InputError: unknown backend name.
        BackendUnavailable: the named backend (or, for auto, every backend) cannot run here.
    """
    if name not in BACKENDS:
        raise InputError(f"backend '{name}': unknown{suggest(name, BACKENDS, BACKEND_ALIASES)}; "
                         f"choose one of {', '.join(BACKENDS)}")
    if name != "auto":
        return _factory(name)(model_dir, spec, **opts)
    reasons = []
    for candidate in AUTO_ORDER:
        if importlib.util.find_spec(AUTO_NEEDS[candidate]) is None:
            why = f"{AUTO_NEEDS[candidate]} is not installed"
            log.info("backend auto: skipped %s: %s", candidate, why)
            reasons.append(f"{candidate}: {why}")
            continue
        try:
            backend = _factory(candidate)(model_dir, spec, **opts)
        except (BackendUnavailable, ImportError) as e:
            log.info("backend auto: skipped %s: %s", candidate, e)
            reasons.append(f"{candidate}: {e}")
            continue
        if candidate == "ort":  # OpenVINO where it measures faster (backends.choice)
            from .choice import prefer

            backend = prefer(backend, model_dir, spec, **opts)
        log.info("backend auto: picked %s (%s)", candidate, backend.name)
        return backend
    raise BackendUnavailable("backend auto: no backend can run this model (" + " | ".join(reasons)
                             + "); install onnxruntime or export the model with hrlf-export")
