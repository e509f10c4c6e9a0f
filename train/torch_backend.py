"""PyTorch reference backend (only where torch is installed): runs ``student.pt`` eagerly.

Used to compare the runtime's backends against the training code; it needs the RUN_DIR
(``student.pt`` + ``spec.json``) rather than the exported MODEL_DIR.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import BackendUnavailable, SpecError
from ..runtime.spec import MODALITIES, ModelSpec


class TorchBackend:
    def __init__(self, model_dir: str, spec: ModelSpec, threads: int | None = None,
                 max_batch: int = 64, device: str = "cpu"):
        import torch

        from .checkpoint import STUDENT_FILE, load_network
        from .model import InferenceGraph

        path = os.path.join(model_dir, STUDENT_FILE)
        if not os.path.isfile(path):
            raise BackendUnavailable(f"torch: {path} not found; the torch backend runs a RUN_DIR "
                                     "from hrlf-train (student.pt + spec.json)")
        net, _ = load_network(path, role="student")
        for m in MODALITIES:
            if net.config.dims[m] != spec.dim(m):
                raise SpecError(f"{path}: {m} has {net.config.dims[m]} features but spec.json "
                                f"says {spec.dim(m)}; use the spec.json of the same run")
        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.graph = InferenceGraph(net).to(device).eval()
        self.device, self.spec, self.max_batch = device, spec, max_batch
        self.name = f"torch-{device}-fp32"

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        t = self._torch
        with t.inference_mode():
            args = {k: t.from_numpy(np.ascontiguousarray(v)).to(self.device)
                    for k, v in feeds.items()}
            return self.graph(**args).float().cpu().numpy().reshape(-1)

    def close(self) -> None:
        self.graph = None


def open_backend(model_dir: str, spec: ModelSpec, **opts) -> TorchBackend:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise BackendUnavailable("torch: PyTorch is not installed; pip install 'hrlf[train]' "
                                 "for the reference backend") from None
    return TorchBackend(model_dir, spec, **{k: v for k, v in opts.items()
                                            if k in ("threads", "max_batch")})
