"""Torch-free runtime and the shared vocabulary (spec, protocol, metrics, data).

Importing this package never imports torch: an edge box installs numpy, onnxruntime and
click only. The streaming API is imported on first use (``hrlf.runtime.Session``)::

    from hrlf.runtime import Session, SessionConfig, stream

    with stream("demo", "demo", pace="fast") as results:       # one call, an iterator
        for r in results: ...
    session = Session.load("models/mine", config=SessionConfig(strict=True))  # frame by frame
"""
from ..errors import (ArtifactError, BackendUnavailable, DataError, HrlfError,
                                 InputError, ParityError, SpecError)
from .spec import MODALITIES, ModalitySpec, ModelSpec, OutputSpec

#: name -> module of the streaming API, imported on first use (numpy, onnxruntime)
_LAZY = {"Session": "session", "SessionConfig": "session_config", "SessionError":
         "session_config", "SessionClosed": "session_config", "Hub": "hub",
         "HubConfig": "hub", "Result": "sinks", "Pushed": "refusals", "Refusal": "refusals",
         "stream": "api", "ResultStream": "api", "DEMO": "model_dir"}

__all__ = ["ArtifactError", "BackendUnavailable", "DataError", "HrlfError", "InputError",
           "ParityError", "SpecError", "MODALITIES", "ModalitySpec", "ModelSpec", "OutputSpec",
           *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"hrlf.runtime.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hrlf.runtime' has no attribute '{name}'")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
