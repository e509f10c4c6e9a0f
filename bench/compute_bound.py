"""How far the demo student runs from the compute bound of one core, at batch 1 and 32.

    python bench/compute_bound.py [--model MODEL_DIR] [--rounds 15]
        [--json bench/results/compute_bound.json]

* **FLOPs** are counted from the exported graph (``model.onnx``): every MatMul and Gemm,
  2·M·K·N per product (times the broadcast batch dims), with the shapes the graph really
  has at that batch and the spec's window (read back from an ONNX Runtime run that exposes
  the inputs of those nodes as outputs). Conv FLOPs are counted too and reported apart.
* **Peak**: one core's float32 GEMM throughput, the best of ONNX Runtime's MatMul (MLAS)
  and numpy's BLAS on square matrices (512 to 2048), one thread each (the BLAS thread
  variables are set before numpy loads; ``cpu_time_over_wall`` ~1.0 shows one core: a
  multi-threaded BLAS had reported twice the peak).
* **Time**: the model as the runtime runs it (ONNX Runtime, 1 intra-op thread,
  ORT_ENABLE_ALL), interleaved rounds over the batch sizes (one warm call, then 5 timed;
  the median over rounds; the fastest call is kept too, a figure a loaded machine
  disturbs less), on inputs with 20 % of frames masked (the masked softmax path).
* **Distance** = time / (FLOPs / peak): 1.0 would be every cycle doing useful FMAs
  (``distance_from_bound`` with MatMul/Gemm FLOPs, ``distance_incl_conv`` with Conv's too).
* OpenVINO's time at the same batches is recorded beside it where it is installed,
  measured in a second phase (its threads slow ONNX Runtime's batch-1 calls when both run
  in one process).

The JSON records the 1-min load average before and after; on a shared machine the times
are upper bounds.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads its BLAS: one core means one thread
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ort_profile import feeds_for, ort_session  # noqa: E402

from hrlf.runtime.assets import demo_model_dir  # noqa: E402
from hrlf.runtime.spec import ModelSpec  # noqa: E402

REPEAT = 5
COUNTED = ("MatMul", "Gemm", "Conv")


def _with_outputs(model: onnx.ModelProto, names: list[str]) -> bytes:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(onnx.ValueInfoProto(name=n))
            have.add(n)
    return m.SerializeToString()


def graph_flops(path: str, feeds: dict) -> dict:
    """FLOPs per op type of one run on ``feeds``, from the real shapes of every input."""
    model = onnx.load(path)
    nodes = [n for n in model.graph.node if n.op_type in COUNTED]
    names = [i for n in nodes for i in n.input[:2]]
    o = ort.SessionOptions()
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    o.log_severity_level = 3
    s = ort.InferenceSession(_with_outputs(model, names), o, providers=["CPUExecutionProvider"])
    outs = dict(zip([x.name for x in s.get_outputs()], s.run(None, feeds)))
    init = {t.name: onnx.numpy_helper.to_array(t).shape for t in model.graph.initializer}
    shape = {**init, **{k: v.shape for k, v in outs.items()}}
    flops = {k: 0 for k in COUNTED}
    for n in nodes:
        a, b = shape[n.input[0]], shape[n.input[1]]
        if n.op_type == "Gemm":
            attrs = {x.name: x.i for x in n.attribute}
            m_, k_ = (a[::-1] if attrs.get("transA") else a)
            n_ = b[0] if attrs.get("transB") else b[1]
            flops["Gemm"] += 2 * m_ * k_ * n_
        elif n.op_type == "MatMul":
            lead = np.broadcast_shapes(a[:-2], b[:-2]) if len(a) > 2 or len(b) > 2 else ()
            m_ = a[-2] if len(a) > 1 else 1
            n_ = b[-1] if len(b) > 1 else 1
            flops["MatMul"] += 2 * int(np.prod(lead)) * m_ * a[-1] * n_
        else:  # Conv: 2 * out positions * out channels * (in channels / group * kernel)
            out = shape.get(n.output[0]) or _conv_out(a, b)
            flops["Conv"] += 2 * int(np.prod(out)) * int(np.prod(b[1:]))
    flops["matmul_gemm"] = flops["MatMul"] + flops["Gemm"]
    return flops


def _conv_out(a, w):  # stride 1, 'same' padding (the encoders' k=3, pad=1 Conv1d)
    return (a[0], w[0]) + tuple(a[2:])


def peak_gflops(rounds: int = 5) -> dict:
    """One core's best float32 GEMM rate: ONNX Runtime's MatMul and numpy's BLAS."""
    from onnx import TensorProto, helper

    out, cores = {}, {}
    for n in (512, 1024, 2048):
        g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        o = ort.SessionOptions()
        o.intra_op_num_threads, o.inter_op_num_threads = 1, 1
        s = ort.InferenceSession(m.SerializeToString(), o, providers=["CPUExecutionProvider"])
        a = np.random.default_rng(0).random((n, n), np.float32)
        feeds = {"a": a, "b": a.T.copy()}
        for name, fn in (("ort_mlas", lambda: s.run(None, feeds)), ("numpy_blas", lambda: a @ a)):
            fn()
            c0, w0 = time.process_time(), time.perf_counter()
            best = min(_timed(fn) for _ in range(rounds))
            cores[f"{name}_{n}"] = round((time.process_time() - c0) / (time.perf_counter() - w0), 2)
            out[f"{name}_{n}"] = round(2 * n ** 3 / best / 1e9, 1)
    return {"gflops": max(out.values()), "per_case": out,
            "cpu_time_over_wall": cores}  # ~1.0: the GEMM ran on one core


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _calls(model_dir: str, spec: ModelSpec, batches, prefix: str, backend: str):
    """(name -> run(feeds), what to close) for ONNX Runtime as the runtime configures it, or
    OpenVINO (static shapes, every bucket compiled first; None where it is not installed)."""
    if backend == "onnxruntime":
        s = ort_session(os.path.join(model_dir, "model.onnx"))
        return {prefix + backend: lambda f: s.run(None, f)}, []
    try:
        from hrlf.runtime.backends.openvino import OpenVinoBackend
    except ImportError:
        return {}, []
    ov = OpenVinoBackend(model_dir, ModelSpec.load(model_dir), max_batch=max(batches))
    for b in batches:
        ov._get(b, tuple(spec.frames(m) for m in spec.modalities))
    return {prefix + backend: ov.run}, [ov]


def model_ms(dirs: dict, spec: ModelSpec, batches, rounds: int, backend: str) -> dict:
    """``prefix + backend`` -> batch -> median ms per call (``..._min``: the fastest call),
    every model of ``dirs`` (prefix -> MODEL_DIR) in the same interleaved rounds. One
    backend per phase: OpenVINO's threads, once started, slow ONNX Runtime's batch-1 calls
    in the same process (median 0.87 against 0.47 ms on the demo)."""
    calls, opened = {}, []
    for prefix, d in dirs.items():
        c, o = _calls(d, spec, batches, prefix, backend)
        calls.update(c)
        opened += o
    feeds = {b: feeds_for(spec, b) for b in batches}
    times = {k: {b: [] for b in batches} for k in calls}
    for _ in range(rounds):
        for b in batches:
            for k, fn in calls.items():
                fn(feeds[b])
                for _ in range(REPEAT):
                    times[k][b].append(_timed(lambda: fn(feeds[b])) * 1e3)
    for ov in opened:
        ov.close()
    return {k: {b: float(np.median(v)) for b, v in per.items()} for k, per in times.items()} | {
        k + "_min": {b: float(np.min(v)) for b, v in per.items()} for k, per in times.items()}


def distances(path: str, spec: ModelSpec, ms: dict, prefix: str, batches, peak: float) -> dict:
    """Per batch: FLOPs, time, bound and the distance from it, for one measured model."""
    res = {}
    for b in batches:
        fl = graph_flops(path, feeds_for(spec, b))
        bound_ms = fl["matmul_gemm"] / (peak * 1e9) * 1e3
        conv_ms = (fl["matmul_gemm"] + fl["Conv"]) / (peak * 1e9) * 1e3
        t, fast = ms[prefix + "onnxruntime"][b], ms[prefix + "onnxruntime_min"][b]
        ov = ms.get(prefix + "openvino", {}).get(b)
        res[str(b)] = {"flops": fl, "mflops_per_segment": round(fl["matmul_gemm"] / b / 1e6, 3),
                       "mflops_per_segment_incl_conv": round(
                           (fl["matmul_gemm"] + fl["Conv"]) / b / 1e6, 3),
                       "ms_per_batch": round(t, 4), "bound_ms_per_batch": round(bound_ms, 4),
                       "distance_from_bound": round(t / bound_ms, 2),
                       "distance_incl_conv": round(t / conv_ms, 2),
                       "ms_per_batch_fastest": round(fast, 4),
                       "distance_fastest_run": round(fast / bound_ms, 2),
                       "openvino_ms_per_batch": None if ov is None else round(ov, 4)}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="MODEL_DIR [the built-in demo model]")
    ap.add_argument("--compare", default=None, metavar="MODEL_DIR",
                    help="another model of the same spec, timed in the same rounds (e.g. the "
                         "10-head demo: HEADS=10 bash tools/make_demo_model.sh, elsewhere)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--no-openvino", dest="openvino", action="store_false",
                    help="skip the OpenVINO phase (it runs after ONNX Runtime's)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", default="bench/results/compute_bound.json")
    args = ap.parse_args()
    d = args.model or demo_model_dir()
    spec = ModelSpec.load(d)
    load0 = [round(x, 2) for x in os.getloadavg()]
    peak = peak_gflops()
    dirs = {"": d, **({"compare_": args.compare} if args.compare else {})}
    ms = model_ms(dirs, spec, args.batches, args.rounds, "onnxruntime")
    if args.openvino:  # after ONNX Runtime's rounds: its threads would slow those
        ms.update(model_ms(dirs, spec, args.batches, args.rounds, "openvino"))
    out = {"command": "python bench/compute_bound.py" + "".join(
               f" --{k} {v}" for k, v in (("model", args.model), ("compare", args.compare)) if v)
           + ("" if args.openvino else " --no-openvino"),
           "model": os.path.abspath(d), "heads": _heads(d),
           "frames": {m: spec.frames(m) for m in spec.modalities},
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "processor": _cpu_name(), "loadavg_at_start": load0},
           "onnxruntime": ort.__version__, "peak_one_core": peak,
           "batches": distances(os.path.join(d, "model.onnx"), spec, ms, "", args.batches,
                                peak["gflops"])}
    if args.compare:
        out["compare"] = {"model": os.path.abspath(args.compare), "heads": _heads(args.compare),
                          "batches": distances(os.path.join(args.compare, "model.onnx"), spec,
                                               ms, "compare_", args.batches, peak["gflops"])}
    out["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
    os.replace(args.json + ".tmp", args.json)
    short = {k: {b: {x: y for x, y in r.items() if x != "flops"} for b, r in v.items()}
             for k, v in (("model", out["batches"]), ("compare", out.get("compare", {}).get(
                 "batches", {})))}
    print(json.dumps({"peak_gflops": peak["gflops"], **short,
                      "loadavg": out["machine"]["loadavg_at_end"]}, indent=1))


def _heads(model_dir: str):
    """Attention heads of the student (from its checkpoint's config when one is beside it)."""
    ckpt = os.path.join(model_dir, "student.pt")
    if not os.path.isfile(ckpt):
        return None
    try:
        import torch

        return torch.load(ckpt, map_location="cpu", weights_only=True)["model_config"]["heads"]
    except Exception:  # noqa: BLE001 - informational only
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


if __name__ == "__main__":
    main()
