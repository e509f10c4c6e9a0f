"""``hrlf-export``: turn a trained RUN_DIR into a deployable MODEL_DIR.

Only click and the standard library are imported here; torch, onnx and tensorrt load
inside the command, so ``--help`` is instant.
"""
from __future__ import annotations

import json

import click

from ..runtime import logs
from ..runtime.cli_base import OneLineCommand, require_extras, write_failure

EPILOG = """\b
Examples:
  hrlf-export runs/mosi --out models/mosi
      model.onnx + spec.json, parity-checked against PyTorch
  hrlf-export runs/mosi --out models/mosi --fp16
      also model.fp16.onnx (FP16 compute, FP32 inputs/outputs)
  hrlf-export runs/mosi --out models/mosi --fp16 --engine --max-batch 8
      also a TensorRT engine for this GPU (run it on the device, e.g. a Jetson)
  hrlf-export runs/mosi --out models/mosi --fp16 --triton triton_repo
      also triton_repo/hrlf_onnx, hrlf_python (Python backend: serves on a CPU box)
      and hrlf_trt (with --engine) for Triton

\b
MODEL_DIR is written to a temp folder and renamed into place: a failure leaves
nothing half-written. stdout gets one JSON report; logs go to stderr.
"""


@click.command(cls=OneLineCommand, epilog=EPILOG, tool="hrlf-export", third_party_verbose=True,
               context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("run_dir", type=click.Path(path_type=str))  # checked by load_run
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=str),
              help="MODEL_DIR to create (or replace, if it is a model dir).")
@click.option("--fp16", is_flag=True, help="Also write model.fp16.onnx; engines become FP16.")
@click.option("--engine", is_flag=True,
              help="Also build a TensorRT engine (needs tensorrt and a GPU; build on the device).")
@click.option("--triton", "triton_repo", type=click.Path(path_type=str), default=None,
              metavar="REPO", help="Also write a Triton model repository into REPO.")
@click.option("--opset", type=int, default=18, show_default=True,
              help="ONNX opset (17 up to the installed onnx's newest).")
@click.option("--max-batch", type=click.IntRange(1), default=32, show_default=True,
              help="Largest batch: TensorRT profile and Triton max_batch_size.")
@click.option("--max-frames", type=click.IntRange(1), default=None,
              help="Largest frame count of any modality in the TensorRT profile "
                   "[default: 4 windows of the longest modality].")
@click.option("-v", "--verbose", is_flag=True, help="Log the libraries' messages too.")
def main(run_dir, out_dir, fp16, engine, triton_repo, opset, max_batch, max_frames, verbose):
    """Export RUN_DIR's student to ONNX (and FP16 ONNX, TensorRT, Triton) in MODEL_DIR.

    RUN_DIR is what hrlf-train wrote (student.pt + spec.json). MODEL_DIR is what hrlf-run
    loads: model.onnx, model.fp16.onnx (--fp16), spec.json with the sha256 of every file,
    and model.<trt>-<gpu>-<fp16|fp32>-<sha8>.engine (--engine). Every model is compared with
    PyTorch over all 8 modality masks, batch 1 and 7 and several frame counts before
    anything is written (FP32 within 1e-4, FP16 within 1e-2 and never NaN).
    """
    require_extras("hrlf-export", {"train": ("torch",), "export": ("onnx", "onnxscript",
                                                                  "onnx_graphsurgeon")})
    from ..train import interrupt

    with interrupt.handled():  # SIGTERM = Ctrl-C: the temp folders are removed either way
        try:
            from .api import export_model

            report = export_model(run_dir, out_dir, fp16=fp16, engine=engine,
                                  triton=triton_repo, opset=opset, max_batch=max_batch,
                                  max_frames=max_frames)
        except KeyboardInterrupt as e:
            interrupt.stop(e, f"nothing was written; {out_dir} is as it was")
        except (OSError, RuntimeError) as e:  # a full disk: its temp folders are gone too
            why = write_failure(e)
            if why is None:
                raise
            raise click.ClickException(f"cannot write the export ({why}); nothing was "
                                       f"written, {out_dir} is as it was; free some space or "
                                       "choose another --out") from None
    _summary(report)
    click.echo(json.dumps(report, sort_keys=True))


def _summary(report: dict) -> None:
    par = "; ".join(f"{name} max |diff| {p['max_abs_diff']:.2g} (atol {p['atol']:g})"
                    for name, p in report.get("parity", {}).items())
    logs.tool_log().info("wrote %s: %s; parity %s", report["model_dir"],
                         ", ".join(report["files"]), par,
                         extra=logs.fields(model_dir=report["model_dir"], files=report["files"]))


if __name__ == "__main__":
    main()
