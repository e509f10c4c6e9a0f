"""Network checkpoints (``student.pt``, ``teacher.pt``) and RUN_DIR loading.

A checkpoint is a plain dict saved with ``torch.save`` and read with
``weights_only=True``: format tag and version, hrlf version, role, the architecture
(:class:`ModelConfig` as a dict) and the state dict. Anything else is refused with one line.
"""
from __future__ import annotations

import io
import os
import pickle
import zipfile

import torch

from ..version import __version__
from ..errors import ArtifactError, SpecError
from ..runtime.spec import MODALITIES, SPEC_FILE, ModelSpec
from .model import HRLFNet, ModelConfig, config_dict

FORMAT = "hrlf-network"
FORMAT_VERSION = 1
STUDENT_FILE = "student.pt"
TEACHER_FILE = "teacher.pt"


def save_network(path: str | os.PathLike, net: HRLFNet, role: str, **extra) -> None:
    """Write a network checkpoint atomically (temp file, then rename)."""
    path = os.fspath(path)
    blob = {"format": FORMAT, "format_version": FORMAT_VERSION, "hrlf_version": __version__,
            "role": role, "model_config": config_dict(net.config),
            "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}, **extra}
    save_atomic(blob, f"{path}.tmp{os.getpid()}", path)


def save_atomic(blob: dict, tmp: str, path: str) -> None:
    """``torch.save`` to ``tmp``, then rename it to ``path``; a failed write (a full disk)
    leaves no ``tmp`` behind. The bytes are written by Python, so that a full disk is an
    ``OSError`` (ENOSPC), not one of torch's C++ stream errors that do not say why."""
    buf = io.BytesIO()
    torch.save(blob, buf)
    try:
        with open(tmp, "wb") as f:
            f.write(buf.getbuffer())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def load_network(path: str | os.PathLike, role: str | None = None) -> tuple[HRLFNet, dict]:
    """Load a network checkpoint on the CPU, in eval mode.

    Returns:
        The network and the checkpoint's other fields (without the state dict).

    Raises:
        ArtifactError: missing, corrupt, foreign or incompatible checkpoint.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ArtifactError(f"{path}: is a folder, not a checkpoint file; pass the student.pt "
                            "written by hrlf-train")
    if not os.path.isfile(path):
        raise ArtifactError(f"{path}: no such file; train a model with hrlf-train first")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError,
            ValueError, AttributeError, TypeError) as e:
        raise ArtifactError(f"{path}: not a readable hrlf checkpoint ({type(e).__name__}); "
                            "pass the student.pt written by hrlf-train") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not an hrlf network checkpoint; pass the student.pt "
                            "written by hrlf-train")
    if blob.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: checkpoint format version {blob.get('format_version')!r} "
                            f"is not supported by hrlf {__version__} (supports {FORMAT_VERSION}); "
                            "re-train with this version")
    if role is not None and blob.get("role") != role:
        raise ArtifactError(f"{path}: holds a {blob.get('role')!r} network, expected {role!r}")
    try:
        cfg = ModelConfig(**blob["model_config"])
        net = HRLFNet(cfg)
        net.load_state_dict(blob["state_dict"], strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0][:160]
        raise ArtifactError(f"{path}: weights do not match the stored architecture ({first}); "
                            "the checkpoint is corrupt or from another version, re-train") from None
    meta = {k: v for k, v in blob.items() if k != "state_dict"}
    return net.eval(), meta


def load_run(run_dir: str | os.PathLike) -> tuple[HRLFNet, ModelSpec]:
    """The student and spec of a RUN_DIR, checked against each other.

    Raises:
        ArtifactError / SpecError: missing files, or spec and weights disagree.
    """
    run_dir = os.fspath(run_dir)
    fix = "pass the RUN_DIR folder made by hrlf-train (student.pt + spec.json)"
    if os.path.lexists(run_dir) and not os.path.isdir(run_dir):
        raise ArtifactError(f"{run_dir}: is a file, not a folder; {fix}")
    if not os.path.isdir(run_dir):
        raise ArtifactError(f"{run_dir}: no such directory; {fix}")
    spec_path = os.path.join(run_dir, SPEC_FILE)
    try:
        os.listdir(run_dir)
        if os.path.isdir(spec_path):
            raise ArtifactError(f"{spec_path}: is a folder, not a file; {fix}")
        spec = ModelSpec.load(spec_path)
    except OSError as e:  # unreadable folder or spec.json (permissions, I/O)
        raise ArtifactError(f"{e.filename or run_dir}: cannot read ({e.strerror or e}); "
                            f"{fix}") from None
    net, _ = load_network(os.path.join(run_dir, STUDENT_FILE), role="student")
    for m in MODALITIES:
        if net.config.dims[m] != spec.dim(m):
            raise SpecError(f"{run_dir}: spec.json says {m} has {spec.dim(m)} features but "
                            f"student.pt was trained on {net.config.dims[m]}; spec and weights "
                            "are from different runs, re-train")
    return net, spec
