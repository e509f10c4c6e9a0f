"""How far the demo student runs from the compute bound of one core, at batch 1 and 32.

    python bench/compute_bound.py [--model MODEL_DIR] [--rounds 15]
        [--json bench/results/compute_bound.json]

* **FLOPs** are counted from the exported graph (``model.onnx``): every MatMul and Gemm,
  2·M·K·N per product (times the broadcast batch dims), with the shapes the graph really
  has at that batch and the spec's window (read back from an ONNX Runtime run that exposes
  the inputs of those nodes as outputs). Conv FLOPs are counted too and reported apart.
* **Peak**: one core's float32 GEMM throughput, the best of ONNX Runtime's MatMul (MLAS)
  and numpy's BLAS on square matrices (512 to 2048), one thread each.
* **Time**: the model as the runtime runs it (ONNX Runtime, 1 intra-op thread,
  ORT_ENABLE_ALL), interleaved rounds over the batch sizes (one warm call, then 5 timed;
  the median over rounds; the fastest call is kept too, a figure a loaded machine
  disturbs less), on inputs with 20 % of frames masked (the masked softmax path).
* **Distance** = time / (FLOPs / peak): 1.0 would be every cycle doing useful FMAs
  (``distance_from_bound`` with MatMul/Gemm FLOPs, ``distance_incl_conv`` with Conv's too).
* OpenVINO's time at the same batches is recorded beside it where it is installed.

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

import numpy as np
import onnx
import onnxruntime as ort

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

    out = {}
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
            best = min(_timed(fn) for _ in range(rounds))
            out[f"{name}_{n}"] = round(2 * n ** 3 / best / 1e9, 1)
    return {"gflops": max(out.values()), "per_case": out}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def model_ms(path: str, spec: ModelSpec, batches, rounds: int) -> dict:
    """backend -> batch -> median ms per call: ONNX Runtime as the runtime configures it,
    and OpenVINO (static shapes, every bucket compiled first) where it is installed."""
    s = ort_session(path)
    calls = {"onnxruntime": lambda f: s.run(None, f)}
    try:
        from hrlf.runtime.backends.openvino import OpenVinoBackend

        ov = OpenVinoBackend(os.path.dirname(path), spec, max_batch=max(batches))
        for b in batches:
            ov._get(b, tuple(spec.frames(m) for m in spec.modalities))
        calls["openvino"] = ov.run
    except ImportError:
        ov = None
    feeds = {b: feeds_for(spec, b) for b in batches}
    times = {k: {b: [] for b in batches} for k in calls}
    for _ in range(rounds):
        for b in batches:
            for k, fn in calls.items():
                fn(feeds[b])
                for _ in range(REPEAT):
                    times[k][b].append(_timed(lambda: fn(feeds[b])) * 1e3)
    if ov is not None:
        ov.close()
    return {k: {b: float(np.median(v)) for b, v in per.items()} for k, per in times.items()} | {
        k + "_min": {b: float(np.min(v)) for b, v in per.items()} for k, per in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="MODEL_DIR [the built-in demo model]")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", default="bench/results/compute_bound.json")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # numpy's BLAS on one core too
    d = args.model or demo_model_dir()
    spec, path = ModelSpec.load(d), os.path.join(d, "model.onnx")
    load0 = [round(x, 2) for x in os.getloadavg()]
    peak = peak_gflops()
    ms = model_ms(path, spec, args.batches, args.rounds)
    res = {}
    for b in args.batches:
        fl = graph_flops(path, feeds_for(spec, b))
        bound_ms = fl["matmul_gemm"] / (peak["gflops"] * 1e9) * 1e3
        conv_ms = (fl["matmul_gemm"] + fl["Conv"]) / (peak["gflops"] * 1e9) * 1e3
        t = ms["onnxruntime"][b]
        res[str(b)] = {"flops": fl, "mflops_per_segment": round(fl["matmul_gemm"] / b / 1e6, 3),
                       "mflops_per_segment_incl_conv": round(
                           (fl["matmul_gemm"] + fl["Conv"]) / b / 1e6, 3),
                       "ms_per_batch": round(t, 4), "bound_ms_per_batch": round(bound_ms, 4),
                       "distance_from_bound": round(t / bound_ms, 2),
                       "distance_incl_conv": round(t / conv_ms, 2),
                       "ms_per_batch_fastest": round(ms["onnxruntime_min"][b], 4),
                       "distance_fastest_run": round(ms["onnxruntime_min"][b] / bound_ms, 2),
                       "openvino_ms_per_batch": round(ms["openvino"][b], 4)
                       if "openvino" in ms else None}
    out = {"command": "python bench/compute_bound.py" + (f" --model {args.model}" if args.model
                                                         else ""),
           "model": os.path.abspath(d), "heads": _heads(d), "frames": {
               m: spec.frames(m) for m in spec.modalities},
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "processor": _cpu_name(), "loadavg_at_start": load0,
                       "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
           "onnxruntime": ort.__version__, "peak_one_core": peak, "batches": res}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
    os.replace(args.json + ".tmp", args.json)
    print(json.dumps({"peak_gflops": peak["gflops"], **{
        b: {k: v for k, v in r.items() if k != "flops"} for b, r in res.items()},
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
