"""Numerical parity of exported models against PyTorch, run through polygraphy.

Cases are the product of all 8 modality masks (all-absent included) x batch sizes x frame
counts. Batches larger than one carry a row whose frames are all masked, and random frame
drops elsewhere, so masked attention is exercised in every case. polygraphy's
``Comparator.run`` feeds the same cases to every runner (PyTorch, ONNX Runtime FP32/FP16,
TensorRT); every case is then compared, all failures are collected, and one typed error
names them with their max abs differences (as optimum's ``_run_validation`` does).
"""
from __future__ import annotations

import itertools
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
from polygraphy.backend.base import BaseRunner
from polygraphy.common import TensorMetadata
from polygraphy.datatype import DataType

from ..runtime.engine_cache import BATCH, frames_axis, graph_io
from ..errors import AtolError, ShapeError
from ..runtime.spec import LETTERS, MODALITIES, MODALITY_MASK, SCORE, ModelSpec, frame_mask_name

log = logging.getLogger("hrlf.export")

MASKS = tuple(itertools.product((1.0, 0.0), repeat=len(MODALITIES)))
BATCHES = (1, 7)
FP32_ATOL = 1e-4
FP16_ATOL = 1e-2


@dataclass(frozen=True)
class Case:
    """One parity input: a name (``mask=la- batch=7 frames=window``) and its feeds."""

    name: str
    feeds: "OrderedDict[str, np.ndarray]"


def mask_label(mask: tuple[float, ...]) -> str:
    """``(1, 0, 1)`` -> ``l-v``; all absent -> ``---``."""
    return "".join(LETTERS[m] if on else "-" for m, on in zip(MODALITIES, mask))


def frame_sets(spec: ModelSpec, max_frames: int | None = None) -> dict[str, dict[str, int]]:
    """Named frame counts per modality: one frame, one window, and a longer odd length."""
    window = {m: spec.frames(m) for m in MODALITIES}
    longer = {m: 2 * spec.frames(m) + 3 for m in MODALITIES}
    if max_frames is not None:
        longer = {m: min(t, max_frames) for m, t in longer.items()}
    return {"one": {m: 1 for m in MODALITIES}, "window": window, "long": longer}


def make_feeds(spec: ModelSpec, batch: int, frames: dict[str, int],
               mask: tuple[float, ...], rng: np.random.Generator) -> "OrderedDict[str, np.ndarray]":
    """Feeds in the graph's input order: normalized features, frame masks, modality mask.

    Row 0 of a batch > 1 has every frame masked; other rows drop ~30% of frames at random
    (keeping at least the first); masked slots hold garbage the graph must ignore.
    """
    sizes = {BATCH: batch, **{frames_axis(m): frames[m] for m in MODALITIES}}
    feeds: "OrderedDict[str, np.ndarray]" = OrderedDict()
    inputs, _ = graph_io(spec)
    for d in inputs:
        shape = d.shape(sizes)
        if d.name in MODALITIES:
            feeds[d.name] = rng.standard_normal(shape).astype(np.float32)
        elif d.name == MODALITY_MASK:
            feeds[d.name] = np.tile(np.asarray(mask, np.float32), (batch, 1))
        else:
            fm = (rng.random(shape) > 0.3).astype(np.float32)
            fm[:, 0] = 1.0
            if batch > 1:
                fm[0] = 0.0
            feeds[d.name] = fm
    for m in MODALITIES:  # garbage in masked slots
        off = feeds[frame_mask_name(m)][..., None] == 0
        feeds[m] = np.where(off, np.float32(50.0), feeds[m]).astype(np.float32)
    return feeds


def parity_cases(spec: ModelSpec, batches: tuple[int, ...] = BATCHES,
                 max_frames: int | None = None, seed: int = 0,
                 masks: tuple[tuple[float, ...], ...] = MASKS) -> list[Case]:
    """All masks x ``batches`` x :func:`frame_sets`, seeded."""
    rng = np.random.default_rng(seed)
    cases = []
    for mask, batch, (fname, frames) in itertools.product(
            masks, batches, frame_sets(spec, max_frames).items()):
        name = f"mask={mask_label(mask)} batch={batch} frames={fname}"
        cases.append(Case(name, make_feeds(spec, batch, frames, mask, rng)))
    return cases


@dataclass
class ParityResult:
    """Per-case comparison of one candidate against the reference.

    Attributes:
        candidate: what was compared (e.g. ``model.fp16.onnx``).
        atol: the tolerance.
        reference: what it was compared against.
        diffs: case name -> max abs difference (inf for NaN/Inf or a shape mismatch).
        failures: case name -> reason, for the cases that failed.
        shape_failures: names of cases whose output shapes differ.
    """

    candidate: str
    atol: float
    reference: str = "PyTorch"
    diffs: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    shape_failures: list[str] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        return max(self.diffs.values(), default=0.0)

    @property
    def worst_case(self) -> str:
        return max(self.diffs, key=self.diffs.get) if self.diffs else ""

    def summary(self) -> dict:
        """JSON-ready summary for reports."""
        return {"candidate": self.candidate, "reference": self.reference, "atol": self.atol,
                "cases": len(self.diffs),
                "failed": len(self.failures), "max_abs_diff": self.max_abs_diff,
                "worst_case": self.worst_case}

    def raise_if_failed(self) -> None:
        """Raise one ShapeError/AtolError naming the failed cases with their max diffs.

        The message lists up to 12 cases (one line); every failed case is logged, and the
        exception's ``result`` attribute holds this whole :class:`ParityResult`.
        """
        if not self.failures:
            return
        for name, why in self.failures.items():
            log.error("parity %s vs %s: %s: %s", self.candidate, self.reference, name, why)
        listed = "; ".join(f"{k}: {v}" for k, v in list(self.failures.items())[:12])
        more = f"; … {len(self.failures) - 12} more" if len(self.failures) > 12 else ""
        cls = ShapeError if self.shape_failures else AtolError
        err = cls(f"{self.candidate}: {len(self.failures)}/{len(self.diffs)} parity cases fail "
                  f"against {self.reference} (atol {self.atol:g}) [{listed}{more}]; do not "
                  "deploy it, re-export or report a bug with the checkpoint")
        err.result = self
        raise err


def compare_outputs(candidate: str, reference: list[dict], outputs: list[dict],
                    cases: list[Case], atol: float, reference_name: str = "PyTorch"
                    ) -> ParityResult:
    """Compare every case's outputs; collect, never stop at, the first failure."""
    res = ParityResult(candidate, atol, reference_name)
    for case, ref, out in zip(cases, reference, outputs):
        want, got = np.asarray(ref[SCORE]), np.asarray(out.get(SCORE))
        if got.shape != want.shape:
            res.diffs[case.name] = float("inf")
            res.failures[case.name] = f"shape {got.shape} != {want.shape}"
            res.shape_failures.append(case.name)
            continue
        if not np.isfinite(got).all():
            res.diffs[case.name] = float("inf")
            res.failures[case.name] = f"{int((~np.isfinite(got)).sum())} NaN/Inf"
            continue
        diff = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max(initial=0.0))
        res.diffs[case.name] = diff
        if diff > atol:
            res.failures[case.name] = f"max |diff| {diff:.3g}"
    log.info("parity %s: %d cases, max |diff| %.3g (%s), %d failed", candidate,
             len(res.diffs), res.max_abs_diff, res.worst_case, len(res.failures))
    return res


def run_cases(runners: list, cases: list[Case]) -> dict[str, list[dict]]:
    """Run every case on every polygraphy runner; runner name -> per-case output dicts."""
    from polygraphy.comparator import Comparator
    from polygraphy.logger import G_LOGGER

    t0 = time.perf_counter()
    with G_LOGGER.verbosity(G_LOGGER.ERROR):
        results = Comparator.run(runners, data_loader=[c.feeds for c in cases])
    log.info("parity: ran %d cases on %d backends in %.1f s", len(cases), len(runners),
             time.perf_counter() - t0)
    return {name: [{k: np.array(v) for k, v in it.items()} for it in iters]
            for name, iters in results.items()}


def onnxrt_runner(path: str, name: str, threads: int | None = 1):
    """A polygraphy ONNX Runtime runner on the CPU provider."""
    import onnxruntime as ort
    from polygraphy.backend.onnxrt import OnnxrtRunner

    def session():
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    return OnnxrtRunner(session, name=name)


class TorchRunner(BaseRunner):
    """polygraphy runner for the PyTorch reference (its own ``PytRunner`` needs CUDA)."""

    def __init__(self, net, spec: ModelSpec, name: str = "pytorch", threads: int | None = 1):
        super().__init__(name=name, prefix="pytorch-runner")
        self._net, self._spec, self._threads = net, spec, threads

    def activate_impl(self):
        import torch

        from ..train.model import InferenceGraph

        self.graph = InferenceGraph(self._net).eval()
        # Small parity batches: one thread is faster, and far faster on a busy machine.
        self._prev_threads = torch.get_num_threads()
        if self._threads:
            torch.set_num_threads(self._threads)

    def get_input_metadata_impl(self):
        meta = TensorMetadata()
        inputs, _ = graph_io(self._spec)
        for d in inputs:
            meta.add(d.name, dtype=DataType.FLOAT32,
                     shape=[a if isinstance(a, int) else -1 for a in d.axes])
        return meta

    def infer_impl(self, feed_dict):
        import torch

        t0 = time.perf_counter()
        with torch.no_grad():
            out = self.graph(**{k: torch.from_numpy(np.asarray(v)) for k, v in feed_dict.items()})
        self.inference_time = time.perf_counter() - t0
        return OrderedDict([(SCORE, out.numpy())])

    def deactivate_impl(self):
        import torch

        torch.set_num_threads(self._prev_threads)
        del self.graph


def check_onnx_parity(net, spec: ModelSpec, models: dict[str, tuple[str, float]],
                      cases: list[Case] | None = None) -> dict[str, ParityResult]:
    """Compare ONNX files with PyTorch over every case, then raise on any failure.

    Args:
        net: the PyTorch network (reference).
        spec: its spec.
        models: label (e.g. ``model.onnx``) -> (path, atol).
        cases: default :func:`parity_cases` of the spec.

    Returns:
        label -> :class:`ParityResult` (all passed).

    Raises:
        ShapeError / AtolError: naming every failed case of the first failing model,
            after all models were compared.
    """
    cases = parity_cases(spec) if cases is None else cases
    runners = [TorchRunner(net, spec, name="pytorch")]
    runners += [onnxrt_runner(path, name=label, threads=1) for label, (path, _) in models.items()]
    outs = run_cases(runners, cases)
    results = {label: compare_outputs(label, outs["pytorch"], outs[label], cases, atol)
               for label, (_, atol) in models.items()}
    for res in results.values():
        res.raise_if_failed()
    return results
