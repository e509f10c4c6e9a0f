"""Files shipped inside the package: the demo model (``demo/``), built by
``tools/make_demo_model.sh`` from synthetic data (see README)."""
from __future__ import annotations

import os

from ...errors import ArtifactError


def demo_model_dir() -> str:
    """Folder of the built-in demo model (model.onnx + spec.json)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo")
    if not os.path.isfile(os.path.join(path, "spec.json")):
        raise ArtifactError(f"{path}: the built-in demo model is missing from this install; "
                            "reinstall hrlf or pass a MODEL_DIR")
    return path
