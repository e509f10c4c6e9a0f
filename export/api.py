"""``export_model``: RUN_DIR -> MODEL_DIR, checked for parity before anything is written.

Pipeline: load and cross-check the run -> dynamo export -> interface check -> graph cleanup
to a fixed point + shape inference -> ``onnx.checker`` -> FP16 copy -> parity against
PyTorch with ONNX Runtime over every case -> TensorRT engine (optional) and its parity ->
``spec.json`` with the sha256 of every file -> Triton repository (optional).
Everything is written into a temp folder next to MODEL_DIR and renamed into place at the
end, so a failure leaves no half-written model behind.
"""
from __future__ import annotations

import logging
import os
import shutil
import time

from .files import clean_stale, make_temp_dir, replace_dir
from .graph import check_model, clean_graph, save_model
from .onnx import DEFAULT_OPSET, check_opset, export_onnx
from . import triton as triton_repo
from .parity import (BATCHES, FP16_ATOL, FP32_ATOL, TorchRunner, check_onnx_parity,
                     compare_outputs, onnxrt_runner, parity_cases, run_cases)
from ..runtime.engine_cache import DEFAULT_MAX_BATCH, check_limits, default_max_frames
from ..errors import ArtifactError, InputError
from ..runtime.spec import SPEC_FILE, ModelSpec, sha256_file
from ..train import interrupt
from ..train.checkpoint import load_run
from ..train.progress import Stages

log = logging.getLogger("hrlf.export")
ONNX_FILE = "model.onnx"
FP16_FILE = "model.fp16.onnx"
#: An FP32 engine may pick other kernels than ONNX Runtime; FP16 engines get FP16's atol.
ENGINE_FP32_ATOL = 1e-3


def export_model(run_dir: str | os.PathLike, out_dir: str | os.PathLike, fp16: bool = True,
                 engine: bool = False, triton: str | os.PathLike | None = None,
                 opset: int = DEFAULT_OPSET, max_batch: int = DEFAULT_MAX_BATCH,
                 max_frames: int | None = None, timing_cache: str | None = None) -> dict:
    """Export a training run's student to a model directory.

    Args:
        run_dir: RUN_DIR with ``student.pt`` and ``spec.json``.
        out_dir: MODEL_DIR to create or replace (it must be new, empty or a model dir).
        fp16: also write ``model.fp16.onnx`` (FP16 compute, FP32 inputs/outputs).
        engine: also build a TensorRT engine (FP16 when ``fp16``), needs tensorrt + GPU.
        triton: write a Triton model repository there too.
        opset: ONNX opset, 17..onnx's newest.
        max_batch: largest batch of the engine profile and Triton ``max_batch_size``.
        max_frames: largest frame count of any modality (default: 4 windows).
        timing_cache: TensorRT timing-cache file (default under ``~/.cache/hrlf``).

    Returns:
        A JSON-ready report: files and sha256s, node counts, parity per model (max abs diff,
        worst case), engine and Triton details, timings.

    Raises:
        InputError: bad options (opset, limits, MODEL_DIR == RUN_DIR).
        ArtifactError / SpecError: bad RUN_DIR, unwritable MODEL_DIR, failed export.
        BackendUnavailable: ``engine`` without tensorrt or a GPU (checked before any work).
        ShapeError / AtolError: parity failed; nothing was written.
    """
    t_start = time.perf_counter()
    run_dir, out_dir = os.fspath(run_dir), os.path.abspath(os.fspath(out_dir))
    check_opset(opset)
    if engine:  # fail before the slow part, with nothing written
        from .engine import gpu_name, require_tensorrt
        require_tensorrt()
        gpu_name()
    stages = Stages(log)  # its lines start once the checks passed: an error stays one line
    net, spec = load_run(run_dir)
    max_frames = default_max_frames(spec) if max_frames is None else max_frames
    check_limits(spec, max_batch, max_frames)
    _check_out_dir(run_dir, out_dir, triton)
    stale = clean_stale(out_dir)  # what a killed (SIGKILL) export left beside MODEL_DIR
    tmp = _make_tmp(out_dir)
    staged: dict[str, str] = {}
    try:
        report = _export_into(tmp, net, spec, fp16=fp16, opset=opset, stages=stages)
        report["max_batch"], report["max_frames"] = max_batch, max_frames
        if engine:
            stages.start(f"TensorRT engine ({'fp16' if fp16 else 'fp32'}, max batch "
                         f"{max_batch}) and its parity")
            report["engine"] = _engine_into(tmp, out_dir, net, spec, fp16, max_batch,
                                            max_frames, timing_cache)
            report["parity"]["engine"] = report["engine"].pop("parity")
        stages.start("spec.json with every file's sha256" + (f", Triton repository {triton}"
                                                             if triton else ""))
        staged = _write_spec_and_triton(tmp, spec, report, triton, max_batch)
        report.update(model_dir=out_dir, run_dir=os.path.abspath(run_dir))
        if any(stale.values()):
            report["stale_temp"] = stale
        with interrupt.deferred(reraise=False):  # the renames are the last step: finish them
            replace_dir(tmp, out_dir)
            triton_repo.commit(staged)
            report["seconds"]["total"] = time.perf_counter() - t_start
            stages.done(f"exported {run_dir} -> {out_dir}")
            return report
    except BaseException:  # errors, Ctrl-C and SIGTERM (hrlf-export routes it here)
        shutil.rmtree(tmp, ignore_errors=True)
        triton_repo.discard(staged)
        raise


def _write_spec_and_triton(tmp: str, spec: ModelSpec, report: dict, triton, max_batch: int
                           ) -> dict[str, str]:
    """spec.json with every file's sha256, then the staged Triton folders (if asked)."""
    files = sorted(f for f in os.listdir(tmp) if f != SPEC_FILE)
    out_spec = spec.replace(artifacts={f: sha256_file(os.path.join(tmp, f)) for f in files})
    out_spec.save(os.path.join(tmp, SPEC_FILE))
    ModelSpec.load(tmp)  # what hrlf-run will read must validate
    report["files"] = dict(out_spec.artifacts)
    if triton is None:
        return {}
    eng = report.get("engine", {}).get("file")
    staged = triton_repo.stage_repository(triton, out_spec, os.path.join(tmp, ONNX_FILE),
                                          os.path.join(tmp, eng) if eng else None, max_batch)
    report["triton"] = {"repo": os.path.abspath(os.fspath(triton)),
                        "models": sorted(os.path.basename(k) for k in staged)}
    return staged


def _export_into(tmp: str, net, spec: ModelSpec, fp16: bool, opset: int,
                 stages: Stages | None = None) -> dict:
    """Write model.onnx (+ model.fp16.onnx) into ``tmp`` and check their parity."""
    stages = stages or Stages(log)
    sec: dict[str, float] = {}
    stages.start(f"ONNX: torch.onnx.export(dynamo=True, opset {opset}) of the student, the "
                 "slowest step")
    t0 = time.perf_counter()
    with stages.beating():
        exported = export_onnx(net, spec, opset)
    sec["export"] = time.perf_counter() - t0
    stages.start("graph cleanup and checks" + (", FP16 conversion" if fp16 else ""))
    t0 = time.perf_counter()
    model, counts = clean_graph(exported)
    check_model(model, ONNX_FILE)
    models = {ONNX_FILE: (os.path.join(tmp, ONNX_FILE), FP32_ATOL)}
    save_model(model, models[ONNX_FILE][0])
    if fp16:
        from .fp16 import to_fp16
        half = to_fp16(model)
        check_model(half, FP16_FILE)
        models[FP16_FILE] = (os.path.join(tmp, FP16_FILE), FP16_ATOL)
        save_model(half, models[FP16_FILE][0])
    for name, (path, _) in models.items():
        check_model(path, name)  # the bytes on disk, not just the in-memory proto
    sec["clean"] = time.perf_counter() - t0
    stages.start(f"parity of {', '.join(models)} against PyTorch (8 masks, batch 1 and 7, "
                 "several frame counts)")
    t0 = time.perf_counter()
    results = check_onnx_parity(net, spec, models)
    sec["parity"] = time.perf_counter() - t0
    return {"opset": opset, "nodes": {"exported": counts[0], "cleaned": counts[-1],
                                      "rounds": counts},
            "parity": {k: r.summary() for k, r in results.items()}, "seconds": sec}


def _engine_into(tmp: str, out_dir: str, net, spec: ModelSpec, fp16: bool, max_batch: int,
                 max_frames: int, timing_cache: str | None) -> dict:
    """Build (or reuse) the engine in ``tmp``; compare it with PyTorch and ONNX Runtime."""
    from .engine import build_engine, trt_runner

    precision = "fp16" if fp16 else "fp32"
    rep = build_engine(tmp, spec, precision, max_batch, max_frames, timing_cache,
                       reuse_from=out_dir if os.path.isdir(out_dir) else None)
    batches = tuple(sorted({min(b, max_batch) for b in BATCHES}))
    cases = parity_cases(spec, batches=batches, max_frames=max_frames)
    outs = run_cases([TorchRunner(net, spec), onnxrt_runner(os.path.join(tmp, rep["source"]),
                                                            "onnxruntime"),
                      trt_runner(os.path.join(tmp, rep["file"]))], cases)
    atol = FP16_ATOL if fp16 else ENGINE_FP32_ATOL
    res = compare_outputs(rep["file"], outs["pytorch"], outs["tensorrt"], cases, atol)
    vs_ort = compare_outputs(rep["file"], outs["onnxruntime"], outs["tensorrt"], cases, atol,
                             reference_name=f"ONNX Runtime ({rep['source']})")
    res.raise_if_failed()
    vs_ort.raise_if_failed()
    return {**rep, "parity": {**res.summary(), "vs_onnxruntime": vs_ort.summary()}}


def _check_out_dir(run_dir: str, out_dir: str, triton=None) -> None:
    if triton is not None and os.path.lexists(triton) and not os.path.isdir(triton):
        raise ArtifactError(f"--triton {triton}: exists and is not a folder; choose another "
                            "repository folder")
    if os.path.realpath(run_dir) == os.path.realpath(out_dir):
        raise InputError(f"--out {out_dir}: is the RUN_DIR itself; choose another folder")
    if os.path.lexists(out_dir):
        if not os.path.isdir(out_dir):
            raise ArtifactError(f"{out_dir}: exists and is not a folder; choose another --out")
        if os.listdir(out_dir) and not os.path.isfile(os.path.join(out_dir, SPEC_FILE)):
            raise ArtifactError(f"{out_dir}: a non-empty folder that is not a model dir would "
                                "be replaced; choose a new or empty --out")


def _make_tmp(out_dir: str) -> str:
    parent = os.path.dirname(out_dir)
    try:
        os.makedirs(parent, exist_ok=True)
        return make_temp_dir(out_dir)
    except OSError as e:
        raise ArtifactError(f"{out_dir}: cannot write here ({type(e).__name__}: "
                            f"{e.strerror or e}); choose a writable --out") from None
