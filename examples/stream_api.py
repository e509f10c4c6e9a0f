"""The one-call API: stream a source through a model, one ``Result`` per segment.

    python examples/stream_api.py [--model demo] [--source demo] [--seconds 26]

What ``hrlf-run MODEL --stream SOURCE`` does, as a Python iterator: ``hrlf.stream`` opens
the model (a MODEL_DIR from ``hrlf-export``, or ``"demo"``) and the source by URI (``demo``,
``replay:PATH``, ``file:call.wav``, ``camera0``, ...), and every result says which
modalities it used and why the others are absent. The built-in demo stream loses audio at
8-14 s, vision at 12-18 s and text at 20-24 s.
"""
from __future__ import annotations

import argparse

import hrlf


def describe(r) -> str:
    """One line per segment: time, label, score, what it used and why the rest is absent."""
    if r.status != "ok":
        return f"{r.t_start:5.1f}-{r.t_end:<5.1f} s  no data ({', '.join(r.reasons)})"
    gone = "".join(f"; no {m}: {why}" for m, why in r.absent.items())
    return (f"{r.t_start:5.1f}-{r.t_end:<5.1f} s  {r.label:<8} {r.score:+.2f}  from "
            f"{'+'.join(r.modalities)}{gone}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="demo", help="MODEL_DIR, or demo (the built-in model)")
    ap.add_argument("--source", default="demo", help="source URI, as hrlf-run --stream")
    ap.add_argument("--seconds", type=float, default=26.0, help="stop after this much stream")
    args = ap.parse_args()
    # pace="fast": files and the demo as fast as possible (the default paces the demo in
    # real time, as hrlf-run does)
    with hrlf.stream(args.model, args.source, pace="fast", duration_s=args.seconds) as results:
        for r in results:
            print(describe(r), flush=True)
    st = results.stats()
    print(f"{st['segments']} segments, {st['used']} of {st['received']} frames used, "
          f"accounting ok: {st['accounting_ok']}")


if __name__ == "__main__":
    main()
