"""Which MODEL_DIR a name means: a folder made by ``hrlf-export``, or ``"demo"`` (the
built-in synthetic demo model); a RUN_DIR is refused with the export command that fixes it.
Shared by :func:`hrlf.stream`, ``Session.load`` and ``Hub.load``.
"""
from __future__ import annotations

import importlib.util
import os

from ..errors import InputError

#: The name of the built-in synthetic demo model (a folder called ``demo``: ``./demo``).
DEMO = "demo"


def resolve_model(model, backend: str = "auto", what: str = "model") -> str:
    """The MODEL_DIR to open for ``model``: a folder made by ``hrlf-export``, or ``"demo"``.

    Raises:
        InputError: no model given, a path that is not a readable folder, or a RUN_DIR
            (hrlf-train's output) where an exported MODEL_DIR is needed; one line each.
    """
    if model is None:
        raise InputError(f"{what}: no model given; pass a MODEL_DIR made by hrlf-export, or "
                         f"'{DEMO}' for the built-in synthetic demo model")
    model = os.fspath(model)
    if model == DEMO:
        from .assets import demo_model_dir

        return demo_model_dir()
    if not os.path.exists(model):
        raise InputError(f"{model}: no such file or directory; pass a MODEL_DIR made by "
                         f"hrlf-export (or '{DEMO}' for the demo model)")
    if not os.path.isdir(model):
        raise InputError(f"{model}: is a file, not a MODEL_DIR; pass the folder that holds "
                         "spec.json and model.onnx")
    if not os.access(model, os.R_OK | os.X_OK):
        raise InputError(f"{model}: permission denied; make the folder readable")
    _refuse_run_dir(model, backend)
    return model


def _refuse_run_dir(path: str, backend: str) -> None:
    """A RUN_DIR (student.pt, no model.onnx) runs only on the torch backend: say how to
    export it, with a MODEL_DIR that is not the RUN_DIR itself."""
    has = lambda name: os.path.isfile(os.path.join(path, name))  # noqa: E731
    if backend == "torch" or not has("student.pt") or has("model.onnx"):
        return
    torch = " (or score it with PyTorch: --backend torch)" \
        if importlib.util.find_spec("torch") is not None else ""
    raise InputError(f"{path}: is a RUN_DIR (hrlf-train's output), not a MODEL_DIR; export "
                     f"it first: hrlf-export {path} --out {suggest_model_dir(path)}{torch}")


def suggest_model_dir(run_dir: str) -> str:
    """``runs/mine`` -> ``models/mine``; elsewhere ``PATH-model``."""
    parts = os.path.normpath(run_dir).split(os.sep)
    if "runs" in parts[:-1]:
        i = len(parts) - 2 - parts[-2::-1].index("runs")
        return os.sep.join(parts[:i] + ["models"] + parts[i + 1:])
    return os.path.normpath(run_dir) + "-model"
