"""Torch-free runtime and the shared vocabulary (spec, protocol, metrics, data).

Importing this package never imports torch: an edge box installs numpy, onnxruntime and
click only.
"""
from hrlf.runtime.errors import (ArtifactError, BackendUnavailable, DataError, HrlfError,
                                 InputError, ParityError, SpecError)
from hrlf.runtime.spec import MODALITIES, ModalitySpec, ModelSpec, OutputSpec

__all__ = ["ArtifactError", "BackendUnavailable", "DataError", "HrlfError", "InputError",
           "ParityError", "SpecError", "MODALITIES", "ModalitySpec", "ModelSpec", "OutputSpec"]
