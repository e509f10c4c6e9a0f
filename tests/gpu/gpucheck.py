"""GPU verification in one go (run by tests/gpu/run.sh): prints ONE summary.

Items: kernel compile (nvcc/NVRTC), kernel parity against the numpy reference, kernel
benchmark, ONNX Runtime CUDA execution provider vs CPU for the FP32 and FP16 models,
TensorRT engine build and parity, runtime latency on the GPU. Each ends PASS, FAIL or
SKIP with its reason; nothing stops the others. The exit status is 1 only when an item
FAILED. The summary also goes to OUT/summary.json.

Usage: python tests/gpu/gpucheck.py --out OUT [--setup-notes FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
STATUS = ("PASS", "FAIL", "SKIP")


class Summary:
    def __init__(self):
        self.items: list[dict] = []

    def add(self, item: str, status: str, detail: str, **figures) -> None:
        assert status in STATUS, status
        self.items.append({"item": item, "status": status, "detail": detail, **figures})

    def run(self, item: str, fn, *args) -> None:
        """Run one check; an unexpected exception is that item's FAIL, not the script's."""
        t0 = time.perf_counter()
        try:
            fn(self, item, *args)
        except Exception as e:
            tb = traceback.format_exc(limit=3).strip().splitlines()
            self.add(item, "FAIL", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                     traceback=tb[-3:])
        self.items[-1].setdefault("seconds", round(time.perf_counter() - t0, 2))

    def render(self) -> str:
        w = max(len(i["item"]) for i in self.items)
        lines = ["", "=" * 30 + " hrlf GPU verification " + "=" * 30]
        for i in self.items:
            lines.append(f"{i['item']:<{w}}  {i['status']:<4}  {i['detail']}")
        n = {s: sum(i["status"] == s for i in self.items) for s in STATUS}
        lines.append(f"{n['PASS']} passed, {n['FAIL']} failed, {n['SKIP']} skipped")
        return "\n".join(lines)


def _sh(cmd: list[str], timeout: int = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, **kw)


def gpu_reason() -> str | None:
    from hrlf.kernels.cuda_driver import unavailable_reason

    return unavailable_reason()


def device_cc() -> int | None:
    if gpu_reason() is not None:
        return None
    from hrlf.kernels.cuda_driver import open_api

    return open_api().cc


# ---- kernels -----------------------------------------------------------------------------

def check_compile(s: Summary, item: str) -> None:
    from hrlf.kernels import cuda_driver

    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc"
                                    if os.access("/usr/local/cuda/bin/nvcc", os.X_OK) else None)
    cc = device_cc()
    archs = sorted({87, 90} | ({cc} if cc else set()))
    done, notes = [], []
    if nvcc:
        for a in archs:
            p = _sh([nvcc, "-std=c++17", "-c", f"-arch=sm_{a}", str(cuda_driver.SOURCE_PATH),
                     "-o", os.devnull], timeout=300)
            if p.returncode:
                s.add(item, "FAIL", f"nvcc sm_{a}: {p.stderr.strip().splitlines()[:1]}")
                return
            done.append(f"nvcc sm_{a}")
    else:
        notes.append("nvcc not found")
    try:
        for a in archs:
            _, kind = cuda_driver.nvrtc_compile(a)
            done.append(f"NVRTC sm_{a} ({kind})")
    except cuda_driver.CudaCallError as e:
        s.add(item, "FAIL", str(e))
        return
    except Exception as e:  # libnvrtc or cuda-python missing: a stated skip of that half
        notes.append(str(e).splitlines()[0])
    status = "PASS" if done else "SKIP"
    s.add(item, status, ", ".join(done + notes) or "nothing to compile with", compiled=done)


def _synthetic_streams(spec, seed: int = 0):
    """Real synthetic recordings (jittered times) with NaN/Inf frames and a gap injected."""
    from hrlf.runtime.synthetic import SyntheticConfig, generate_recordings

    rec = generate_recordings(SyntheticConfig(duration_s=40.0, seed=seed), "test", 1)[0]
    rng, streams = np.random.default_rng(seed), {}
    for m in spec.modalities:
        frames, times = np.array(rec.frames[m]), np.array(rec.times[m])
        bad = rng.random(len(frames)) < 0.05
        frames[bad, 0] = np.nan
        keep = (times < 10.0) | (times > 11.5)
        streams[m] = (frames[keep].astype(np.float32), times[keep])
    return streams


def synthetic_spec():
    from hrlf.runtime.spec import ModelSpec
    from hrlf.runtime.synthetic import SyntheticConfig

    cfg = SyntheticConfig()
    feats = cfg.features()
    norm = {m: {"mean": (0.1,) * f.dim, "std": (1.5,) * f.dim} for m, f in feats.items()}
    return ModelSpec(features=feats, window_s=cfg.window_s, hop_s=cfg.hop_s, norm=norm,
                     data=cfg.fingerprint())


def check_kernel_parity(s: Summary, item: str) -> None:
    reason = gpu_reason()
    if reason:
        s.add(item, "SKIP", reason)
        return
    from hrlf.kernels.pack import pack_windows

    spec = synthetic_spec()
    streams = _synthetic_streams(spec)
    worst, figures = {}, {}
    for dtype, b in [(np.float32, 1), (np.float32, 32), (np.float16, 1), (np.float16, 32)]:
        starts = np.linspace(-1.0, 38.0, b)
        got = pack_windows(spec, streams, starts, dtype=dtype, device="cuda")
        ref = pack_windows(spec, streams, starts, dtype=dtype, device="cpu")
        for k in got:
            d = float(np.abs(got[k].astype(np.float32) - ref[k].astype(np.float32)).max())
            tag = f"{np.dtype(dtype).name}_b{b}"
            worst[tag] = max(worst.get(tag, 0.0), d)
    figures["max_abs_diff"] = worst
    p = _sh([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "tests/kernels", "-p",
             "no:cacheprovider"], timeout=600)
    tail = (p.stdout.strip().splitlines() or ["no output"])[-1]
    ok = p.returncode == 0 and worst["float32_b32"] < 1e-4 and worst["float16_b32"] < 4e-3
    s.add(item, "PASS" if ok else "FAIL", f"pytest -m gpu: {tail}; max |cuda-numpy| "
          + ", ".join(f"{k}={v:.1e}" for k, v in worst.items()), **figures)


def check_kernel_bench(s: Summary, item: str, out: Path) -> None:
    path = out / "kernels.json"
    p = _sh([sys.executable, str(REPO / "bench" / "kernels.py"), "--json", str(path)], timeout=600)
    if p.returncode:
        s.add(item, "FAIL", (p.stderr.strip().splitlines() or ["bench failed"])[-1])
        return
    res = json.loads(path.read_text())
    cells = [f"{r['impl']} b{r['batch']}: {r['ms_per_call']:.3f} ms" if r["status"] == "ok"
             else f"{r['impl']} b{r['batch']}: skipped" for r in res["results"]]
    s.add(item, "PASS", "; ".join(cells), json=str(path))


# ---- model artifacts ---------------------------------------------------------------------

def ort_cuda_reason() -> str | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime is not installed"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return (f"onnxruntime {ort.__version__} has no CUDAExecutionProvider; run.sh installs "
                "onnxruntime-gpu into its venv when the machine can reach PyPI")
    return gpu_reason()


def trt_reason() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except Exception as e:
        return f"tensorrt cannot be imported ({type(e).__name__}); install TensorRT (JetPack or pip)"
    return gpu_reason()


def make_run_dir(out: Path) -> tuple[Path, str]:
    """RUN_DIR from hrlf-train (1 epoch, synthetic), else a tiny untrained checkpoint."""
    run = out / "run"
    if (run / "spec.json").exists():
        return run, "reused"
    exe = shutil.which("hrlf-train", path=os.path.dirname(sys.executable)) or shutil.which("hrlf-train")
    if exe:
        p = _sh([exe, "--data", "synthetic", "--out", str(run), "--epochs", "1", "--quiet"],
                timeout=900)
        if p.returncode == 0 and (run / "spec.json").exists():
            return run, "hrlf-train --epochs 1"
    return tiny_run_dir(run), "untrained fallback (hrlf-train missing or failed)"


def tiny_run_dir(run: Path) -> Path:
    """A RUN_DIR with an untrained small student and a synthetic spec (no training)."""
    from hrlf.train.checkpoint import STUDENT_FILE, save_network
    from hrlf.train.model import HRLFNet, ModelConfig

    spec = synthetic_spec()
    run.mkdir(parents=True, exist_ok=True)
    net = HRLFNet(ModelConfig(dims={m: spec.dim(m) for m in spec.modalities}, d=16, heads=2,
                              layers=1)).eval()
    save_network(run / STUDENT_FILE, net, "student")
    spec.save(run / "spec.json")
    return run


def export_dir(run: Path, out: Path, engine: bool) -> tuple[Path, dict]:
    """MODEL_DIR via ``hrlf-export RUN_DIR --out D --fp16 [--engine]`` (or its Python API)."""
    model = out / ("model_trt" if engine else "model")
    exe = shutil.which("hrlf-export", path=os.path.dirname(sys.executable)) or shutil.which("hrlf-export")
    if exe:
        p = _sh([exe, str(run), "--out", str(model), "--fp16"] + (["--engine"] if engine else []),
                timeout=900)
        if p.returncode:
            raise RuntimeError(f"hrlf-export failed: {(p.stderr.strip().splitlines() or ['?'])[-1]}")
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        return model, json.loads(lines[-1]) if lines else {}
    from hrlf.export.api import export_model

    return model, export_model(run, model, fp16=True, engine=engine)


ORT_ITEMS = ("ORT CUDA EP vs CPU, FP32", "ORT CUDA EP vs CPU, FP16")


def check_ort(s: Summary, _item: str, model: Path | None, why: str | None) -> None:
    """Adds both ORT_ITEMS."""
    items = ORT_ITEMS
    if why or model is None:
        for item in items:
            s.add(item, "SKIP", why or "no model directory")
        return
    import onnxruntime as ort
    from hrlf.export.parity import FP16_ATOL, parity_cases
    from hrlf.runtime.spec import ModelSpec

    if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN from pip wheels (onnxruntime >= 1.21)
        ort.preload_dlls()
    spec = ModelSpec.load(model)
    cases = parity_cases(spec)
    for item, fname, atol in zip(items, ("model.onnx", "model.fp16.onnx"), (1e-3, FP16_ATOL)):
        t0 = time.perf_counter()
        cpu = ort.InferenceSession(str(model / fname), providers=["CPUExecutionProvider"])
        gpu = ort.InferenceSession(str(model / fname), providers=["CUDAExecutionProvider"])
        if gpu.get_providers()[0] != "CUDAExecutionProvider":  # libs/driver mismatch
            s.add(item, "SKIP", f"CUDA EP did not load for {fname} (providers "
                  f"{gpu.get_providers()}); onnxruntime-gpu's CUDA needs a matching driver")
            continue
        worst, where = 0.0, ""
        for c in cases:
            a, b = cpu.run(None, dict(c.feeds)), gpu.run(None, dict(c.feeds))
            d = max(float(np.abs(x - y).max()) for x, y in zip(a, b))
            worst, where = (d, c.name) if d > worst else (worst, where)
        ok = worst <= atol
        s.add(item, "PASS" if ok else "FAIL", f"{len(cases)} cases, max |cuda-cpu| {worst:.2e} "
              f"(atol {atol:g}) worst {where}", max_abs_diff=worst, cases=len(cases),
              seconds=round(time.perf_counter() - t0, 2))


def check_trt(s: Summary, item: str, run: Path | None, out: Path) -> None:
    why = trt_reason()
    if why or run is None:
        s.add(item, "SKIP", why or "no RUN_DIR")
        return
    t0 = time.perf_counter()
    model, report = export_dir(run, out, engine=True)  # the exporter checks engine parity
    eng = report.get("engine", {})
    par = report.get("parity", {}).get("engine", {})
    s.add(item, "PASS", f"{eng.get('file', '?')} built in {eng.get('seconds', float('nan')):.1f} s; "
          f"parity {json.dumps(par)[:160]}", engine=eng, parity=par,
          seconds=round(time.perf_counter() - t0, 2))


def check_latency(s: Summary, item: str, model: Path | None, out: Path) -> None:
    script = REPO / "bench" / "runtime.py"
    if not script.exists():
        s.add(item, "SKIP", "bench/runtime.py not present")
        return
    why = gpu_reason()
    if why or model is None:
        s.add(item, "SKIP", why or "no model directory")
        return
    help_text = _sh([sys.executable, str(script), "--help"], timeout=120).stdout
    path = out / "runtime.json"
    cmd = [sys.executable, str(script), "--json", str(path)]
    if re.search(r"MODEL_DIR|--model", help_text):
        cmd += (["--model"] if "--model" in help_text else []) + [str(model)]
    p = _sh(cmd, timeout=600)
    if p.returncode or not path.exists():
        s.add(item, "FAIL", f"{' '.join(cmd[1:])}: {(p.stderr.strip().splitlines() or ['?'])[-1]}")
        return
    s.add(item, "PASS", f"bench/runtime.py wrote {path.name}: {path.read_text()[:200]}",
          json=str(path))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--setup-notes", type=Path, default=None)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    s = Summary()
    s.run("kernel compile (nvcc/NVRTC)", check_compile)
    s.run("kernel parity vs numpy", check_kernel_parity)
    s.run("kernel bench", check_kernel_bench, a.out)
    ort_why, run, model = ort_cuda_reason(), None, None
    if ort_why is None or trt_reason() is None or (REPO / "bench/runtime.py").exists() and not gpu_reason():
        try:
            run, how = make_run_dir(a.out)
            s.add("RUN_DIR for model checks", "PASS", f"{run} ({how})")
            model, _ = export_dir(run, a.out, engine=False)
        except Exception as e:
            ort_why = f"no model: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            s.add("RUN_DIR for model checks", "FAIL", ort_why)
    s.run(ORT_ITEMS[0], check_ort, model, ort_why)
    s.run("TensorRT engine build + parity", check_trt, run, a.out)
    s.run("runtime latency on the GPU", check_latency, model, a.out)
    notes = a.setup_notes.read_text().strip().splitlines() if a.setup_notes and a.setup_notes.exists() else []
    (a.out / "summary.json").write_text(json.dumps({"setup": notes, "items": s.items}, indent=1,
                                                   default=str))
    text = s.render()
    if notes:
        text += "\nsetup: " + " | ".join(notes)
    print(text + f"\ndetails: {a.out / 'summary.json'}")
    return 1 if any(i["status"] == "FAIL" for i in s.items) else 0


if __name__ == "__main__":
    sys.exit(main())
