"""``--backend auto`` on a CPU: ONNX Runtime, or OpenVINO where it measures faster.

OpenVINO is faster than ONNX Runtime on some models and batch sizes and slower on others
(on a 2-core AMD EPYC VM: 2-3x slower at batch 1 everywhere; faster at batch >= 8 on the
paper's 10-head demo model, never faster on the 1-head edge model), and it costs more to
start (~0.6 s and ~200 MB against ~0.2 s and ~75 MB). So ``auto`` measures instead of
guessing:

* the batch sizes in use are 1 and ``max_batch`` (just 1 when ``max_batch`` is 1: a live
  stream); a session that may batch still scores single windows (a live stream's normal
  case, a file's tail);
* both backends score the same random windows at those sizes, in interleaved rounds;
  OpenVINO is picked only if it is at least :data:`MARGIN` faster per segment at *every*
  one of them;
* the verdict is measured once per model, ONNX Runtime and OpenVINO version, CPU and batch
  sizes, in a child process (OpenVINO is loaded into the caller only if it wins), and kept
  in ``MODEL_DIR/.hrlf-cache/`` (written atomically), so later starts read it without
  importing OpenVINO. Where it cannot be kept (a read-only folder,
  ``HRLF_MODEL_CACHE=0``) OpenVINO is not measured, since every start would pay ~1 s.

Every outcome is one INFO line on ``hrlf.runtime`` (``hrlf-run -v``) with the figures.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import platform
import time

from . import ort_cache
from ..model_cache import listed
from ..spec import MODALITIES, ModelSpec, frame_mask_name

log = logging.getLogger("hrlf.runtime")
MARGIN = 0.10
ROUNDS = 5
#: the measuring child's limit (it takes ~2 s; a loaded machine may take far longer)
CHILD_TIMEOUT_S = 120
X86 = ("x86_64", "amd64", "i386", "i686")


def batches_in_use(max_batch: int) -> tuple[int, ...]:
    return (1,) if max_batch <= 1 else (1, int(max_batch))


def openvino_version() -> str | None:
    """The installed openvino's version, without importing it or importlib.metadata (which
    costs tens of ms at start-up): from its ``.dist-info`` folder's name, else from its
    ``__init__.py``'s modification time. None: not installed."""
    spec = importlib.util.find_spec("openvino")
    if spec is None or not spec.origin:
        return None
    site = os.path.dirname(os.path.dirname(spec.origin))
    for info in listed(site, "openvino-", ".dist-info"):
        return os.path.basename(info)[len("openvino-"):-len(".dist-info")]
    try:
        return f"mtime{int(os.stat(spec.origin).st_mtime)}"
    except OSError:
        return None


def feeds(spec: ModelSpec, b: int, seed: int = 0) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for m in MODALITIES:
        t = spec.frames(m)
        out[m] = rng.normal(size=(b, t, spec.dim(m))).astype(np.float32)
        out[frame_mask_name(m)] = (rng.random((b, t)) > 0.2).astype(np.float32)
    out["modality_mask"] = np.ones((b, len(MODALITIES)), np.float32)
    return out


def measure(backends: dict, spec: ModelSpec, batches, rounds: int = ROUNDS) -> dict:
    """name -> batch -> median ms per segment, interleaved (one warm call, then 3 timed)."""
    import numpy as np

    data = {b: feeds(spec, b, b) for b in batches}
    times = {n: {b: [] for b in batches} for n in backends}
    for _ in range(rounds):
        for b in batches:
            for n, be in backends.items():
                be.run(data[b])
                for _ in range(3):
                    t0 = time.perf_counter()
                    be.run(data[b])
                    times[n][b].append((time.perf_counter() - t0) * 1e3 / b)
    return {n: {b: round(float(np.median(v)), 4) for b, v in per.items()}
            for n, per in times.items()}


def verdict(ms: dict) -> str:
    """``openvino`` only if faster by :data:`MARGIN` at every measured batch size."""
    ok = all(ms["openvino"][b] < (1 - MARGIN) * ms["ort"][b] for b in ms["ort"])
    return "openvino" if ok else "ort"


def _cache_file(model_dir: str, spec: ModelSpec, ort_version: str, ov_version: str,
                batches) -> str:
    sha = (spec.artifacts.get("model.onnx") or "unrecorded")[:16]
    name = (f"auto.{sha}-ort{ort_version}-ov{ov_version}-cpu{ort_cache.cpu_key()}-"
            f"b{'_'.join(str(b) for b in batches)}.json")
    return os.path.join(ort_cache.cache_dir(model_dir), name)


def _read(path: str) -> dict | None:
    try:
        with open(path) as f:
            rec = json.load(f)
        return rec if rec.get("choice") in ("ort", "openvino") else None
    except (OSError, ValueError, AttributeError):
        return None


def _write(path: str, rec: dict) -> bool:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(rec, f, indent=1)
        os.replace(tmp, path)
        return True
    except OSError as e:
        log.info("backend auto: cannot keep the measurement in %s (%s)", os.path.dirname(path),
                 e.strerror or e)
        return False


def _describe(rec: dict) -> str:
    return "; ".join(f"batch {b}: ort {rec['ms_per_segment']['ort'][str(b)]} ms, openvino "
                     f"{rec['ms_per_segment']['openvino'][str(b)]} ms per segment"
                     for b in rec["batches"])


def _skip(reason: str, ort_be):
    log.info("backend auto: ort, not openvino: %s", reason)
    return ort_be


def prefer(ort_be, model_dir: str, spec: ModelSpec, **opts):
    """``ort_be``, or an OpenVINO backend for the same model where it measures faster.
    Any failure on OpenVINO's side keeps ``ort_be`` (and says why)."""
    try:
        return _prefer(ort_be, model_dir, spec, **opts)
    except Exception as e:  # noqa: BLE001 - OpenVINO raises its own RuntimeErrors
        return _skip(f"openvino failed ({type(e).__name__}: "
                     f"{(str(e).strip().splitlines() or [''])[0][:120]})", ort_be)


def _prefer(ort_be, model_dir: str, spec: ModelSpec, **opts):
    ov_version = openvino_version()
    if ov_version is None:
        return _skip("openvino is not installed (pip install 'hrlf[openvino]')", ort_be)
    if not ort_be.name.startswith("ort-cpu-fp32"):
        return _skip(f"{ort_be.name} is not the FP32 CPU model OpenVINO would replace", ort_be)
    if platform.machine().lower() not in X86:
        return _skip(f"not measured on {platform.machine()} (x86 only)", ort_be)
    if not ort_cache.enabled():
        return _skip(f"not measured ({ort_cache.ENV}=0: every start would pay ~1 s)", ort_be)
    import onnxruntime

    batches = batches_in_use(int(opts.get("max_batch") or 1))
    path = _cache_file(model_dir, spec, onnxruntime.__version__, ov_version, batches)
    rec = _read(path)
    if rec is None:
        rec = _measure_and_keep(ort_be, model_dir, spec, batches, path, opts)
        if rec is None:
            return ort_be
    elif "error" in rec:
        log.info("backend auto: ort, not openvino: its measurement failed (%s); kept in %s",
                 rec["error"], path)
    else:
        log.info("backend auto: %s (measured once, %s): %s", rec["choice"], path, _describe(rec))
    if rec["choice"] == "ort":
        return ort_be
    from .openvino import open_backend as open_openvino

    ov = open_openvino(model_dir, spec, **opts)
    ort_be.close()
    return ov


def _measure_and_keep(ort_be, model_dir, spec, batches, path, opts) -> dict | None:
    """Measure both backends in a child process and keep the verdict in ``path``; None when
    it cannot be kept. The child keeps OpenVINO out of this process unless it wins: loaded
    beside the capture libraries (PortAudio, PocketSphinx) it crashed a live-microphone
    run. A child that fails or crashes is a kept verdict too (ort, with the reason), so no
    start pays for it twice."""
    import subprocess
    import sys

    probe = path + ".probe"
    if not _write(probe, {}):  # unwritable: do not pay for a measurement we cannot keep
        _skip("not measured: the model folder cannot keep the result, and every start "
              "would pay ~1 s", ort_be)
        return None
    ort_cache.discard(probe)
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "hrlf.runtime.backends.choice", model_dir, path,
           str(int(opts.get("threads") or 1))] + [str(b) for b in batches]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
        why = None if p.returncode == 0 else (
            f"exit status {p.returncode}: " + ((p.stderr or "").strip().splitlines() or [""])[-1][:160])
    except subprocess.TimeoutExpired:
        why = f"timed out after {CHILD_TIMEOUT_S:g} s"
    except OSError as e:
        why = f"{type(e).__name__}: {e}"[:200]
    rec = _read(path) if why is None else None
    if rec is None:
        rec = {"choice": "ort", "batches": list(batches), "error": why or "no result written"}
        _write(path, rec)
        log.info("backend auto: ort, not openvino: its measurement failed (%s); kept in %s",
                 rec["error"], path)
        return rec
    log.info("backend auto: %s (measured in %.1f s, kept in %s): %s", rec["choice"],
             time.perf_counter() - t0, path, _describe(rec))
    return rec


def measure_to(model_dir: str, path: str, threads: int, batches) -> dict:
    """The child's work: both backends on this model at ``batches``; the verdict to ``path``."""
    from .openvino import OpenVinoBackend
    from .ort import OrtBackend

    spec = ModelSpec.load(model_dir)
    t0 = time.perf_counter()
    ort_be = OrtBackend(model_dir, spec, precision="fp32", provider="cpu", threads=threads,
                        max_batch=max(batches))
    ov = OpenVinoBackend(model_dir, spec, threads=threads, max_batch=max(batches))
    try:
        for b in batches:
            ov._get(b, tuple(spec.frames(m) for m in MODALITIES))
        ms = measure({"ort": ort_be, "openvino": ov}, spec, batches)
    finally:
        ov.close()
        ort_be.close()
    rec = {"choice": verdict(ms), "batches": list(batches), "margin": MARGIN,
           "ms_per_segment": {n: {str(b): v for b, v in per.items()} for n, per in ms.items()},
           "measured_s": round(time.perf_counter() - t0, 2),
           "loadavg_1min": round(os.getloadavg()[0], 2)}
    if not _write(path, rec):
        raise SystemExit(f"{path}: cannot write the measurement")
    return rec


if __name__ == "__main__":  # the child of _measure_and_keep: MODEL_DIR PATH THREADS BATCH...
    import sys

    measure_to(sys.argv[1], sys.argv[2], int(sys.argv[3]), tuple(int(b) for b in sys.argv[4:]))
