"""``python -m hrlf.train.reproduce``: the command line of :mod:`hrlf.train.reproduce_runs`
(click and the standard library at import: ``--help`` is instant)."""
from __future__ import annotations

import types

import click

from ..runtime.cli_base import OneLineCommand

EPILOG = """\\b
Examples:
  python -m hrlf.train.reproduce --data ../shared/data/mosi --out results/
  python -m hrlf.train.reproduce --out results/ --resummarize      # no training
  python -m hrlf.train.reproduce --data '' --syn-seeds 0,1 --out /tmp/syn   # synthetic only

\\b
Writes OUT/mosi.json, mosi.md, synthetic.json, synthetic.md and the plots; a rerun with
the same arguments resumes from the finished jobs (OUT/.jobs/). Seed lists are comma- or
space-separated.
"""


class IntList(click.ParamType):
    """``0,1,2`` or ``"0 1 2"`` -> [0, 1, 2]."""

    name = "N,N,..."

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            return [int(v) for v in value]
        try:
            out = [int(v) for v in str(value).replace(",", " ").split()]
        except ValueError:
            self.fail(f"{value!r} is not a list of whole numbers such as 0,1,2.", param, ctx)
        if not out:
            self.fail("empty; give at least one number.", param, ctx)
        return out


def _module():
    from . import reproduce_runs as R  # numpy: only once the command runs

    return R


@click.command(cls=OneLineCommand, tool="reproduce", epilog=EPILOG,
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", default="../shared/data/mosi", show_default=True,
              help="MOSI npz or its folder; '' skips MOSI.")
@click.option("--out", default="results", show_default=True, help="Output folder.")
@click.option("--seeds", type=IntList(), default="0,1,2,3,4,5,6,7,8,9", show_default=True,
              help="MOSI seeds (protocols A and B).")
@click.option("--sweep-seeds", type=IntList(), default="100,101", show_default=True,
              help="Seeds of the tuning sweep and the design step.")
@click.option("--syn-seeds", type=IntList(), default="0,1,2,3,4", show_default=True,
              help="Seeds of the synthetic benchmark.")
@click.option("--epochs", type=click.IntRange(1), default=None,
              help="MOSI max epochs [30].")
@click.option("--syn-epochs", type=click.IntRange(1), default=None,
              help="Synthetic max epochs [150].")
@click.option("--synthetic-config", default=None, metavar="JSON",
              help="JSON overrides of the synthetic benchmark.")
@click.option("--no-synthetic", "synthetic", is_flag=True, flag_value=False, default=True,
              help="Skip the synthetic benchmark.")
@click.option("--folds", type=click.IntRange(2), default=5, show_default=True,
              help="Outer folds of protocol B.")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True,
              help="Training processes.")
@click.option("--protocols", type=click.Choice(["A", "B", "AB"]), default="AB",
              show_default=True, help="MOSI protocols to run.")
@click.option("--n-boot", type=click.IntRange(1), default=2000, show_default=True,
              help="Bootstrap replicates.")
@click.option("--resummarize", is_flag=True,
              help="Rebuild OUT's JSON/Markdown/PNGs from OUT/.runs.pkl, no training.")
@click.option("--wall-note", default=None,
              help="With --resummarize: a sentence on the wall time to print with it (e.g. "
                   "the invocations of a resumed run).")
@click.option("--wall-s", type=float, default=None,
              help="With --resummarize --partial: the measured wall time (the job files' "
                   "time stamps cannot see cached or restarted work).")
@click.option("--partial", is_flag=True,
              help="With --resummarize: summarize the finished jobs of OUT/.jobs/ of an "
                   "interrupted run (labelled partial).")
def main(**options) -> None:
    """Reproduce results/: MOSI (2 protocols, 10 seeds, tuned and isolating baselines) and
    the harder synthetic benchmark, in one command."""
    _module().reproduce(types.SimpleNamespace(**options))


if __name__ == "__main__":
    main(prog_name="python -m hrlf.train.reproduce")
