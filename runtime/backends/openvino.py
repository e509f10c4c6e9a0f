"""OpenVINO backend: the same ``model.onnx``, compiled by OpenVINO for the CPU with static shapes.

OpenVINO runs this model faster than ONNX Runtime on x86 CPUs when every shape is static
(dynamic shapes are several times slower), so the backend compiles one model per batch
*bucket* (1, 2, 4, ... up to ``max_batch``) for the window's frame counts, and pads a batch
up to the next bucket with fully masked rows (their scores are discarded; the model scores
rows independently). Batch 1 compiles at open; a larger bucket compiles on a background
thread the first time a batch needs it, and until it is ready the batch is scored in chunks
of the largest ready bucket, so no call waits for a compile (and a stream that never
batches never pays for one). Compute precision is pinned to f32 (no silent bf16), so
scores match ONNX Runtime within 1e-5.
"""
from __future__ import annotations

import atexit
import threading
import weakref

import numpy as np

from .ort import model_file
from ...errors import ArtifactError, BackendUnavailable
from ..spec import MODALITIES, ModelSpec, check_artifact, frame_mask_name, input_names

X86 = ("x86_64", "amd64", "i386", "i686")
INSTALL = "pip install 'hrlf[openvino]'"
#: every backend not yet closed; the atexit hook closes them before the interpreter
#: finalizes (a backend left open aborted the process at exit: its compile thread and
#: OpenVINO's own threads outlived Python's state, 3 of 3 runs with 3 open backends)
_OPEN: "weakref.WeakSet[OpenVinoBackend]" = weakref.WeakSet()
_HOOKED = False


def _close_all() -> None:
    """Close every backend still open (runs at interpreter exit)."""
    for be in list(_OPEN):
        be.close()


def _track(be: "OpenVinoBackend") -> None:
    """Remember ``be`` for the exit hook. The hook is registered after ``openvino`` is
    imported, so it runs before any exit handler of OpenVINO's (atexit is last-in,
    first-out)."""
    global _HOOKED
    _OPEN.add(be)
    if not _HOOKED:
        atexit.register(_close_all)
        _HOOKED = True


def buckets(max_batch: int) -> list[int]:
    """Batch sizes compiled: powers of two up to ``max_batch``, and ``max_batch`` itself."""
    out, b = [], 1
    while b < max_batch:
        out.append(b)
        b *= 2
    return out + [max_batch]


class OpenVinoBackend:
    """Runs ``model.onnx`` with OpenVINO on the CPU (static shapes per batch bucket).

    Args:
        model_dir: MODEL_DIR with ``model.onnx``.
        spec: its spec (frame counts and dims of the static shapes).
        threads: inference threads.
        max_batch: the largest bucket.
        precision: ``auto``/``fp32`` (the FP32 file; OpenVINO computes in f32).
    """

    def __init__(self, model_dir: str, spec: ModelSpec, threads: int | None = None,
                 max_batch: int = 64, precision: str = "auto"):
        import openvino as ov

        if precision not in ("auto", "fp32"):
            raise BackendUnavailable(f"openvino: runs the FP32 model, not precision "
                                     f"'{precision}'; use --backend ort for fp16")
        path = model_file(model_dir, "fp32")
        check_artifact(spec, path)
        self.core = ov.Core()
        try:
            self._model = self.core.read_model(path)
        except Exception as e:  # OpenVINO raises RuntimeError subclasses for bad files
            raise ArtifactError(f"{path}: OpenVINO cannot read it ({_first(e)}); re-export "
                                "the model with hrlf-export") from None
        spec.check_inputs({i.get_any_name(): tuple(d.get_length() if d.is_static else None
                                                   for d in i.get_partial_shape())
                           for i in self._model.inputs}, path)
        self.config = {"INFERENCE_NUM_THREADS": int(threads or 1), "PERFORMANCE_HINT": "LATENCY",
                       "INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": 1}
        self.spec, self.path, self.max_batch = spec, path, max(1, int(max_batch))
        self.name = "openvino-cpu-fp32"
        self._compiled: dict[tuple, object] = {}
        self._lock = threading.Lock()  # compiled-model table
        self._run_lock = threading.Lock()  # one inference at a time per backend
        frames = tuple(spec.frames(m) for m in MODALITIES)
        self._get(1, frames)  # fail at open, not at the first window
        self._compiling: set = set()
        self._threads: list[threading.Thread] = []
        _track(self)

    def _shapes(self, batch: int, frames: tuple) -> dict:
        shapes = {}
        for m, t in zip(MODALITIES, frames):
            shapes[m] = [batch, t, self.spec.dim(m)]
            shapes[frame_mask_name(m)] = [batch, t]
        shapes["modality_mask"] = [batch, len(MODALITIES)]
        return shapes

    def _get(self, batch: int, frames: tuple):
        """The compiled model for (batch, frames), compiling it now if needed."""
        key = (batch, frames)
        with self._lock:
            hit = self._compiled.get(key)
        if hit is not None:
            return hit
        if self._model is None:
            raise BackendUnavailable("openvino: the backend is closed")
        model = self._model.clone()
        model.reshape(self._shapes(batch, frames))
        compiled = self.core.compile_model(model, "CPU", self.config)
        entry = (compiled, compiled.create_infer_request())
        with self._lock:
            return self._compiled.setdefault(key, entry)

    def compile_all(self) -> None:
        """Compile every bucket now (for servers that prefer a slow start to any chunking)."""
        frames = tuple(self.spec.frames(m) for m in MODALITIES)
        for b in buckets(self.max_batch):
            self._get(b, frames)

    def _compile_later(self, batch: int, frames: tuple) -> None:
        """Compile bucket ``batch`` on a background thread (once)."""
        with self._lock:
            if (batch, frames) in self._compiling:
                return
            self._compiling.add((batch, frames))

        def work():
            try:
                self._get(batch, frames)
            except Exception:  # noqa: BLE001 - the smaller buckets keep serving
                pass

        th = threading.Thread(target=work, daemon=True, name="hrlf-openvino-compile")
        self._threads.append(th)
        th.start()

    def _ready(self, frames: tuple) -> list[int]:
        with self._lock:
            return sorted(b for b, f in self._compiled if f == frames)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        n = len(feeds["modality_mask"])
        frames = tuple(int(feeds[m].shape[1]) for m in MODALITIES)
        ready = self._ready(frames)
        if not ready:  # another window length than the spec's: compile batch 1 now
            self._get(1, frames)
            ready = [1]
        want = next(b for b in buckets(self.max_batch) if b >= min(n, self.max_batch))
        if want not in ready:
            self._compile_later(want, frames)
        out, at = [], 0
        while at < n:
            left = n - at
            b = next((x for x in ready if x >= left), ready[-1])
            take = min(b, left)
            part = {k: v[at:at + take] for k, v in feeds.items()}
            if take < b:  # pad with fully masked rows; their scores are dropped
                part = {k: np.concatenate([v, np.zeros((b - take,) + v.shape[1:], v.dtype)])
                        for k, v in part.items()}
            compiled, request = self._get(b, frames)
            with self._run_lock:
                res = request.infer({k: np.ascontiguousarray(part[k], np.float32)
                                     for k in input_names()})
                scores = np.array(next(iter(res.values())), np.float32).reshape(-1)
            out.append(scores[:take])
            at += take
        return np.concatenate(out) if len(out) > 1 else out[0]

    def close(self) -> None:
        """Wait for background compiles, then release the compiled models and the core.
        Idempotent; also called at interpreter exit for a backend left open."""
        self._model = None
        for th in list(self._threads):
            th.join()
        with self._lock:
            self._compiled.clear()
        self.core = None
        _OPEN.discard(self)


def _first(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:160]


def open_backend(model_dir: str, spec: ModelSpec, **opts) -> OpenVinoBackend:
    try:
        import openvino  # noqa: F401
    except ImportError as e:
        raise BackendUnavailable(f"openvino: not installed ({e}); {INSTALL}") from None
    provider = opts.get("provider", "auto")
    if provider not in (None, "auto", "cpu"):
        raise BackendUnavailable(f"openvino: runs on the CPU, not the '{provider}' provider; "
                                 "use --backend ort for ONNX Runtime providers")
    return OpenVinoBackend(model_dir, spec, **{k: v for k, v in opts.items()
                                               if k in ("threads", "max_batch", "precision")})
