"""ONNX Runtime's Softmax on masked attention scores: mask constants and the logit floor.

    python bench/softmax_mask.py [--rounds 200] [--json bench/results/softmax_mask.json]

One Softmax over (32, 10, 41, 41) scores (N(0, 2^2)) with 11 of 41 key columns masked by an
additive constant (-1e4, -inf, -87, -80, -30), against the formulation the model exports
(``hrlf.train.model.masked_softmax``: bias -1e4, then every logit floored 60 below its
row's maximum: Add, ReduceMax, Sub, Max, Softmax). Rows whose exp(x - max) falls below
about -87 are subnormal and take a slow path on some CPUs (7.3x on the machine of
``shared/design/toolchain-notes.md``); the floor keeps every exponent >= -60. Median ms
per call, one intra-op thread, interleaved; the JSON records the CPU and the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

SHAPE = (32, 10, 41, 41)
MASKED = 11
CONSTANTS = (-1e4, float("-inf"), -87.0, -80.0, -30.0)
FLOOR = 60.0


def session(floor: bool) -> ort.InferenceSession:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(SHAPE))
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 1, 1, SHAPE[-1]])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(SHAPE))
    nodes, inits = [helper.make_node("Add", ["x", "b"], ["s"])], []
    if floor:
        inits.append(helper.make_tensor("floor", TensorProto.FLOAT, [], [FLOOR]))
        nodes += [helper.make_node("ReduceMax", ["s"], ["m"], axes=[-1], keepdims=1),
                  helper.make_node("Sub", ["m", "floor"], ["lo"]),
                  helper.make_node("Max", ["s", "lo"], ["c"]),
                  helper.make_node("Softmax", ["c"], ["y"], axis=-1)]
    else:
        nodes.append(helper.make_node("Softmax", ["s"], ["y"], axis=-1))
    model = helper.make_model(helper.make_graph(nodes, "softmax", [x, b], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    o = ort.SessionOptions()
    o.intra_op_num_threads, o.inter_op_num_threads = 1, 1
    return ort.InferenceSession(model.SerializeToString(), o, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--json", default="bench/results/softmax_mask.json")
    args = ap.parse_args()
    x = (np.random.default_rng(0).standard_normal(SHAPE) * 2).astype(np.float32)
    masked = np.zeros((1, 1, 1, SHAPE[-1]), np.float32)
    cases = {}
    for c in CONSTANTS:
        b = masked.copy()
        b[..., -MASKED:] = c
        cases[f"bias {c:g}"] = (session(False), b)
    b = masked.copy()
    b[..., -MASKED:] = -1e4
    cases[f"bias -1e4, floored {FLOOR:g} below the row max"] = (session(True), b)
    load0 = [round(v, 2) for v in os.getloadavg()]
    times = {k: [] for k in cases}
    for _ in range(args.rounds):
        for k, (s, b) in cases.items():
            t0 = time.perf_counter()
            s.run(None, {"x": x, "b": b})
            times[k].append((time.perf_counter() - t0) * 1e3)
    out = {"command": f"python bench/softmax_mask.py --rounds {args.rounds}",
           "shape": SHAPE, "masked_columns": MASKED, "onnxruntime": ort.__version__,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "processor": platform.processor(), "loadavg_at_start": load0,
                       "loadavg_at_end": [round(v, 2) for v in os.getloadavg()]},
           "median_ms": {k: round(float(np.median(v)), 4) for k, v in times.items()}}
    try:
        with open("/proc/cpuinfo") as f:
            out["machine"]["processor"] = next(
                line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
    os.replace(args.json + ".tmp", args.json)
    print(json.dumps(out["median_ms"], indent=1), out["machine"]["loadavg_at_end"])


if __name__ == "__main__":
    main()
