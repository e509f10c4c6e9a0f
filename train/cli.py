"""``hrlf-train`` and ``hrlf-eval`` (click; heavy imports happen inside the commands)."""
from __future__ import annotations

import json
import os
import sys

import click

from ..runtime import logs
from ..runtime.cli_base import OneLineCommand, require_extras, write_failure
from .regime import MIN_STEPS  # the standard library only: --help stays instant

TRAIN_EPILOG = """\b
Examples:
  hrlf-train --data synthetic --out runs/syn --epochs 1
  hrlf-train --data ../shared/data/mosi --out runs/mosi --seed 0
  hrlf-train --data ../shared/data/mosi --out runs/mosi-dropout --baseline dropout
  hrlf-train --data ../shared/data/mosi --out runs/mosi-nohal --ablate hal
  hrlf-train --out runs/mosi --resume          # continue an interrupted run
  torchrun --nproc_per_node 2 -m hrlf.train.cli --data synthetic --out runs/ddp

\b
RUN_DIR gets student.pt (what hrlf-export consumes), spec.json, teacher.pt,
config.json (the resolved config), metrics.json (the student's valid metrics
beside a linear-probe floor) and train_log.json. It is built in
RUN_DIR.partial/ and renamed when complete, so it is never half-written.
Unset batch size, epochs, minimum steps, weight decay, patience and layers are
chosen from the number of training windows (printed at start); options and
--config values always win.
--config takes a JSON object of TrainConfig fields, e.g.
  {"epochs": 30, "lr_patience": 5, "model": {"layers": 2}, "synthetic": {"seed": 1}}
Options given on the command line override the file.
"""

EVAL_EPILOG = """\b
Examples:
  hrlf-eval runs/mosi                       # on the data it was trained on
  hrlf-eval runs/mosi --data ../shared/data/mosi
  hrlf-eval runs/mine --data new_clips.csv  # your new clips (no split column needed)
  hrlf-eval runs/syn --data synthetic --out runs/syn/eval
  hrlf-eval runs/mosi runs/mosi-dropout runs/mosi-nohal --data ../shared/data/mosi

\b
Writes eval.json and eval.md (each condition {l} {a} {v} {l,a} {l,v} {a,v} {l,a,v}
and avg6, the mean over the six incomplete ones: F1/Acc-2 in both conventions,
Acc-7, MAE, Corr), predictions.npz (per-sample scores per condition),
intra.png (F1 against the intra-modality missing ratio), conditions.png (all
given runs, e.g. the ablations, in one plot) and embedding.png (2-D t-SNE of
student representations coloured by class). Scores are the clamped output of
the same graph that is exported. For a clip list (--data clips.csv) eval.json
and eval.md also hold clip-level results: each clip's score is the mean of its
window scores (what hrlf-run --stream file: gives per window), with sign
accuracy and MAE per condition and a table of one row per clip.
Progress: a line as each stage starts (data, each model, plots) on stderr.
"""


#: extra -> modules the training commands import
TRAIN_NEEDS = {"train": ("torch", "sklearn", "matplotlib")}


def _fail(e: Exception) -> click.ClickException:
    return click.ClickException(str(e).splitlines()[0] if str(e) else type(e).__name__)


def _read_config(path: str | None) -> dict:
    if not path:
        return {}
    try:
        with open(path) as f:
            cfg = json.load(f)
    except OSError as e:
        raise click.ClickException(f"{path}: cannot read config ({e.strerror}); pass an "
                                   "existing JSON file to --config")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise click.ClickException(f"{path}: not valid JSON ({e}); fix the config file")
    except RecursionError:
        raise click.ClickException(f"{path}: JSON nested too deeply to parse; pass a flat "
                                   "object of TrainConfig fields") from None
    if not isinstance(cfg, dict):
        raise click.ClickException(f"{path}: must hold a JSON object of TrainConfig fields")
    cfg.pop("data", None)  # config.json of a run records its data source
    return cfg


def _set_threads(requested: int | None):
    """Choose and apply torch's thread counts (before numpy/torch load).

    Returns:
        The :class:`hrlf.train.threads.ThreadChoice` and a
        :class:`hrlf.train.threads.Tuner` that re-chooses after each epoch (None when the
        count was given explicitly).
    """
    from . import threads as T

    choice = T.choose(requested)
    T.apply(choice)
    tuner = T.Tuner(choice, log=logs.tool_log().info) \
        if choice.source == "auto" else None
    return choice, tuner


_OVERRIDES = ("epochs", "batch_size", "min_steps", "seed", "ablate", "baseline", "device",
              "asr", "asr_model")


@click.command(cls=OneLineCommand, epilog=TRAIN_EPILOG, tool="hrlf-train",
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", metavar="PATH|synthetic", default=None,
              help="'synthetic', the MOSI npz (or its folder) or a .csv clip list "
                   "[default: $HRLF_DATA, else synthetic].")
@click.option("--out", "out", required=True, metavar="RUN_DIR", help="Run directory to create.")
@click.option("--epochs", type=click.IntRange(1), default=None,
              help="Max epochs per stage [auto: 50, or on small data enough for --min-steps].")
@click.option("--batch-size", type=click.IntRange(1), default=None,
              help="Batch size [auto: 128, or on small data ~1/6 of the windows, 8..64].")
@click.option("--min-steps", type=click.IntRange(0), default=None,
              help="Optimizer steps per stage before early stopping may stop [auto: 0, small "
                   f"data {MIN_STEPS}].")
@click.option("--seed", type=int, default=None, help="Seed for torch and numpy [0].")
@click.option("--ablate", type=click.Choice(["frf", "hmi", "hal"]), default=None,
              help="Train the full student minus this loss term.")
@click.option("--baseline", type=click.Choice(["dropout"]), default=None,
              help="Same-size student, no teacher, random modality dropout.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="Where to train [cpu].")
@click.option("--config", "config_file", metavar="FILE", default=None,
              help="JSON file of TrainConfig fields.")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in RUN_DIR.partial.")
@click.option("--asr", type=click.Choice(["auto", "whisper", "pocketsphinx", "off"]),
              default="auto", show_default=True,
              help="Clip lists: the speech recognizer for clips without a transcript (auto: "
                   "whisper where installed with a local model, else pocketsphinx); "
                   "recorded in spec.json, and hrlf-run --asr auto uses the same.")
@click.option("--asr-model", default=None, metavar="PATH|NAME",
              help="--asr whisper: a CTranslate2 Whisper folder or a cached faster-whisper name.")
@click.option("--quiet", is_flag=True,
              help="No progress (a bar on a terminal, else a log line per stage).")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="CPU threads for torch [auto: the CPUs other processes leave free].")
@click.pass_context
def train_main(ctx, data, out, epochs, batch_size, min_steps, seed, ablate, baseline, device,
               asr, asr_model, config_file, resume, quiet, threads):
    """Train the HRLF teacher and student (or a baseline / ablation) into RUN_DIR."""
    require_extras("hrlf-train", TRAIN_NEEDS)
    from ..errors import HrlfError
    from . import interrupt

    with interrupt.handled():  # SIGTERM = Ctrl-C: stop after saving nothing half-written
        try:
            log = _train(ctx, data, out, config_file, resume, quiet, threads)
        except HrlfError as e:
            raise _fail(e) from None
        except KeyboardInterrupt as e:
            from . import run

            interrupt.stop(e, run.interrupted_state(out))
        except (OSError, RuntimeError) as e:  # a full disk: one line, no temp file left
            why = write_failure(e)
            if why is None:
                raise
            from . import run

            raise click.ClickException(f"cannot write the run ({why}); "
                                       f"{run.interrupted_state(out)}") from None
    v = log["valid"]
    click.echo(json.dumps({"run_dir": os.path.abspath(out), "model": log["model"],
                           "seconds": log["seconds"], "valid_f1_lav": v["lav"]["f1"],
                           "valid_f1_avg6": v["avg6"]["f1"], "valid_mae_lav": v["lav"]["mae"],
                           "probe_floor": log["probe_floor"], "warning": log["warning"]}))


def _train(ctx, data, out, config_file, resume, quiet, threads) -> dict:
    choice, tuner = _set_threads(threads)
    from . import loop, run

    given = {k: ctx.params[k] for k in _OVERRIDES
             if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
    if resume:
        saved = run.saved_config(out)
        data = data or saved.pop("data", None)
        base = {k: v for k, v in saved.items() if k != "data"}
        for k, v in given.items():
            if k not in ("epochs", "device") and base.get(k) != v:
                raise click.ClickException(
                    f"--{k} {v} differs from the interrupted run's {base.get(k)!r}; drop "
                    "the option or start a new RUN_DIR")
    else:
        base = _read_config(config_file)
    cfg = loop.TrainConfig.from_dict({**base, **given}, source=config_file or "config")
    return run.train_run(cfg, data, out, resume=resume, progress=not quiet,
                         on_epoch=tuner.update if tuner else None,
                         on_start=lambda: logs.tool_log().info(choice.describe()))


@click.command(cls=OneLineCommand, epilog=EVAL_EPILOG, tool="hrlf-eval",
               context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR [RUN_DIR...]")
@click.option("--data", metavar="PATH|synthetic", default=None,
              help="Data to evaluate on: the training data, or a clip list of new clips "
                   "(clips without a split cell are all evaluated) [default: the data the "
                   "first RUN_DIR was trained on, from its config.json].")
@click.option("--out", "out", default=None, metavar="DIR",
              help="Where to write the results [first RUN_DIR/eval].")
@click.option("--split", type=click.Choice(["test", "valid"]), default="test",
              help="Split to evaluate [test].")
@click.option("--seed", type=int, default=1234, help="Eval seed for intra-ratio drops.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG figures.")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="CPU threads for torch [auto: the CPUs other processes leave free].")
def eval_main(run_dirs, data, out, split, seed, no_plots, threads):
    """Evaluate RUN_DIR's student (and teacher) under every missing-modality condition."""
    require_extras("hrlf-eval", TRAIN_NEEDS)
    from ..errors import HrlfError
    from . import interrupt

    with interrupt.handled():
        try:
            _set_threads(threads)
            from . import report

            res = report.evaluate_runs(list(run_dirs), data, out, split=split, seed=seed,
                                       plots=not no_plots)
        except HrlfError as e:
            raise _fail(e) from None
        except KeyboardInterrupt as e:
            interrupt.stop(e, "no results were written")
    clips = res.get("clips", {})
    click.echo(json.dumps({"out": res["out"], **{
        name: {"avg6_f1": round(m["avg6"]["f1"], 4), "lav_f1": round(m["lav"]["f1"], 4),
               **({"clip_sign_acc_lav": clips[name]["conditions"]["lav"]["sign_acc"],
                   "clip_mae_lav": clips[name]["conditions"]["lav"]["mae"]}
                  if name in clips else {})}
        for name, m in res["models"].items()}}))


if __name__ == "__main__":  # torchrun -m hrlf.train.cli ... runs training
    sys.exit(train_main())
