"""A Triton Inference Server model repository for the exported model.

``REPO/hrlf_onnx/1/model.onnx`` + ``config.pbtxt`` (ONNX Runtime backend),
``REPO/hrlf_python/1/model.py`` + ``model.onnx`` (Python backend running onnxruntime:
serves on any CPU box, e.g. with the ``tritonserver`` of ``nvidia-pytriton``) and, when an
engine was built, ``REPO/hrlf_trt/1/model.plan`` + ``config.pbtxt`` (TensorRT backend).
Every config carries the source ONNX's sha256 as the parameter ``onnx_sha256``. The Python
backend's ``model.py`` hashes the ``model.onnx`` it loads, refuses to load one whose
sha256 is not that parameter, and reports the hash it loaded as the output
``onnx_sha256`` with every answer that asks for it, so a client (``--backend triton``)
checks the file the server really runs against its spec, not a text in a config.
The configs are generated from the same I/O declaration as the graph: batch is Triton's
implicit first axis (``max_batch_size``), frame axes are -1, ``score (batch,)`` is declared
as ``dims: [1]`` reshaped to ``[]``, the usual way to return one value per request.
Each model folder is written to a temp folder in REPO and renamed into place.
"""
from __future__ import annotations

import os
import shutil

from .files import clean_stale, make_temp_dir, replace_dir
from ..runtime.engine_cache import TensorDecl, graph_io
from ..errors import ArtifactError
from ..runtime.spec import ModelSpec

ONNX_MODEL = "hrlf_onnx"
PYTHON_MODEL = "hrlf_python"
TRT_MODEL = "hrlf_trt"
SHA_PARAM = "onnx_sha256"
#: the Python model's extra output: the sha256 of the model.onnx it loaded, per row
SHA_OUTPUT = "onnx_sha256"
_SHA_TENSOR = ('  {\n    name: "%s"\n    data_type: TYPE_STRING\n    dims: [ 1 ]\n'
               '    reshape: { shape: [ ] }\n  }' % SHA_OUTPUT)
_PYTHON_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "triton_model.py")
_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16"}


def _tensor(d: TensorDecl) -> str:
    dims = [a if isinstance(a, int) else -1 for a in d.axes[1:]]  # drop the batch axis
    lines = [f'    name: "{d.name}"', f"    data_type: {_TYPES[d.dtype]}"]
    if dims:
        lines.append(f"    dims: [ {', '.join(map(str, dims))} ]")
    else:  # (batch,) -> one value per request
        lines += ["    dims: [ 1 ]", "    reshape: { shape: [ ] }"]
    return "  {\n" + "\n".join(lines) + "\n  }"


def config_pbtxt(spec: ModelSpec, name: str, platform: str, max_batch: int,
                 queue_delay_us: int = 500, parameters: dict[str, str] | None = None) -> str:
    """Text of a ``config.pbtxt`` for this graph.

    Args:
        spec: the model spec (feature dims).
        name: Triton model name (its folder name).
        platform: ``onnxruntime_onnx``, ``tensorrt_plan``, or ``python`` (Python backend).
        max_batch: ``max_batch_size``; dynamic batching merges requests up to it.
        queue_delay_us: how long Triton may hold a request to batch it with others.
        parameters: string parameters (``parameters`` map) for the backend and clients.
    """
    inputs, outputs = graph_io(spec)
    preferred = sorted({b for b in (1, max_batch // 2, max_batch) if b >= 1})
    params = [f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}'
              for k, v in (parameters or {}).items()]
    kind = 'backend: "python"' if platform == "python" else f'platform: "{platform}"'
    out = [_tensor(d) for d in outputs] + ([_SHA_TENSOR] if platform == "python" else [])
    return "\n".join([
        f'name: "{name}"',
        kind,
        f"max_batch_size: {max_batch}",
        "input [\n" + ",\n".join(_tensor(d) for d in inputs) + "\n]",
        "output [\n" + ",\n".join(out) + "\n]",
        "dynamic_batching {",
        f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]",
        f"  max_queue_delay_microseconds: {queue_delay_us}",
        "}",
        *(["instance_group [ { kind: KIND_CPU, count: 1 } ]"] if platform == "python" else []),
        *params,
        "",
    ])


def _stage(repo: str, name: str, platform: str, model_src: str, model_file: str,
           spec: ModelSpec, max_batch: int, parameters: dict[str, str]) -> str:
    tmp = make_temp_dir(os.path.join(repo, name))
    os.makedirs(os.path.join(tmp, "1"))
    shutil.copyfile(model_src, os.path.join(tmp, "1", model_file))
    if platform == "python":  # the Python backend runs model.py beside model.onnx
        shutil.copyfile(_PYTHON_SOURCE, os.path.join(tmp, "1", "model.py"))
    with open(os.path.join(tmp, "config.pbtxt"), "w") as f:
        f.write(config_pbtxt(spec, name, platform, max_batch, parameters=parameters))
    return tmp


def stage_repository(repo: str | os.PathLike, spec: ModelSpec, onnx_path: str,
                     engine_path: str | None, max_batch: int) -> dict[str, str]:
    """Write the model folders into temp folders inside REPO (nothing visible yet).

    Returns:
        final model folder -> staged temp folder; pass it to :func:`commit`.

    Raises:
        ArtifactError: REPO cannot be created or written.
    """
    repo = os.fspath(repo)
    staged: dict[str, str] = {}
    params = {SHA_PARAM: spec.artifacts.get("model.onnx", "")}
    models = [(ONNX_MODEL, "onnxruntime_onnx", onnx_path, "model.onnx"),
              (PYTHON_MODEL, "python", onnx_path, "model.onnx")]
    if engine_path:
        models.append((TRT_MODEL, "tensorrt_plan", engine_path, "model.plan"))
    try:
        os.makedirs(repo, exist_ok=True)
        for name in (ONNX_MODEL, PYTHON_MODEL, TRT_MODEL):  # what a killed export left
            clean_stale(os.path.join(repo, name))
        for name, platform, src, file in models:
            staged[os.path.join(repo, name)] = _stage(repo, name, platform, src, file, spec,
                                                      max_batch, params)
    except OSError as e:
        discard(staged)
        raise ArtifactError(f"{repo}: cannot write the Triton repository ({type(e).__name__}: "
                            f"{e.strerror or e}); choose a writable --triton folder") from None
    return staged


def commit(staged: dict[str, str]) -> None:
    """Swap staged folders into place (an existing model folder is replaced whole)."""
    for final, tmp in staged.items():
        replace_dir(tmp, final)


def discard(staged: dict[str, str]) -> None:
    """Remove staged temp folders."""
    for tmp in staged.values():
        shutil.rmtree(tmp, ignore_errors=True)
