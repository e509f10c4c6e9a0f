"""The one-call API: ``hrlf.stream(model, source)`` yields one :class:`Result` per segment.

::

    import hrlf

    for r in hrlf.stream("models/mine", "file:call.wav"):
        print(r.t_start, r.score, r.label, r.modalities, r.absent)

    with hrlf.stream("demo", "demo", pace="fast", drop=["audio:8-14"]) as results:
        scores = [r.score for r in results if r.status == "ok"]
    print(results.stats()["accounting_ok"])

It is what ``hrlf-run`` does, as a Python iterator: open the model (``"demo"`` is the
built-in synthetic demo model) and the source by URI (``demo``, ``replay:PATH``, ``stdin``,
``file:PATH``, ``camera0``, ``mic``, ``rtsp://...``), stream the source through a
:class:`~hrlf.runtime.session.Session`, and hand out the results in order. Bad arguments
raise one-line :class:`~hrlf.errors.HrlfError`\\ s at the call, before anything
is streamed; a bad frame later on is a counted drop, never an exception.
"""
from __future__ import annotations

from typing import Iterator, Sequence

from ..errors import InputError
from .model_dir import resolve_model
from .sinks import Result

def parse_drop(text) -> tuple[str, float, float]:
    """``"audio:10-25"`` (or a ``(modality, from_s, to_s)`` tuple) -> the tuple."""
    if isinstance(text, (tuple, list)) and len(text) == 3:
        return (str(text[0]), float(text[1]), float(text[2]))
    try:
        mod, span = str(text).split(":", 1)
        a, b = span.split("-", 1)
        a_s, b_s = float(a), float(b)
    except ValueError:
        raise InputError(f"--drop {text}: expected MODALITY:FROM-TO in seconds, e.g. "
                         "audio:10-25") from None
    if not a_s < b_s:
        raise InputError(f"--drop {text}: FROM must be before TO")
    return (mod, a_s, b_s)


def open_runner(model, source: str = "demo", *, backend: str = "auto",
                precision: str = "auto", provider: str = "auto", threads: int = 1,
                condition: str | None = None, drop: Sequence = (),
                window_s: float | None = None, hop_s: float | None = None,
                duration_s: float | None = None, pace: str = "auto",
                grace_s: float | None = None, max_batch: int = 32, max_jump_s: float = 3600.0,
                pack_device: str = "cpu", strict: bool = False,
                on_backend_error: str = "continue",
                source_options: dict | None = None, backend_options: dict | None = None,
                write=None, output=None, fmt: str = "jsonl", stats_every_s: float = 0.0,
                log=None):
    """Open model, source, backend and session; returns the :class:`Runner` (not started).

    ``hrlf-run`` and :func:`stream` both build their run here; see :func:`stream` for
    the arguments.
    """
    from .backends.base import open_backend
    from .runner import PACES, Runner, check_featurizers
    from .session import Session, SessionConfig
    from .sources import open_source, scheme_of
    from .spec import ModelSpec

    if pace not in PACES:
        raise InputError(f"pace '{pace}': unknown; use one of {', '.join(PACES)}")
    drops = [parse_drop(d) for d in drop]
    model_dir = resolve_model(model, backend)
    spec = ModelSpec.load(model_dir)
    opts = dict(source_options or {})
    if scheme_of(source) == "demo":  # its recording is kept in the model's cache folder
        opts.setdefault("model_dir", model_dir)
    if scheme_of(source) == "stdin" and pace != "auto":
        opts.setdefault("live", pace == "realtime")  # fast: a recorded dump, data deadlines
    src = open_source(source, spec, **opts, **({"duration_s": duration_s} if duration_s else {}))
    try:
        check_featurizers(src, spec)
        if pace == "auto":
            pace = "realtime" if scheme_of(source) == "demo" else "fast"
        if grace_s is None:  # capture sources say how late their frames arrive
            grace_s = max(0.1, float(getattr(src, "latency_s", 0.0) or 0.0))
        cfg = SessionConfig(window_s=window_s, hop_s=hop_s, live=bool(src.live), grace_s=grace_s,
                            max_batch=1 if (src.live or pace == "realtime") else max_batch,
                            condition=condition, drops=drops, device=pack_device,
                            no_data=bool(src.live), max_jump_s=max_jump_s, strict=strict,
                            on_backend_error=on_backend_error)
        if provider != "auto" and backend == "auto":  # a named provider means ONNX Runtime
            backend = "ort"
        be = open_backend(backend, model_dir, spec, precision=precision, provider=provider,
                          threads=threads, max_batch=cfg.max_batch,  # the batches in use (auto measures them)
                          **(backend_options or {}))
        session = Session(be, spec, cfg)
    except BaseException:
        src.close()
        raise
    return Runner(src, session, write=write, fmt=fmt, pace=pace, duration_s=duration_s,
                  stats_every_s=stats_every_s, log=log, output=output)


class ResultStream:
    """The iterator :func:`stream` returns: results in segment order until the source ends.

    A context manager: leaving the ``with`` block (or :meth:`close`) stops reading, scores
    what was already read, and closes the source and the backend. :meth:`stats` is the
    session's accounting (as ``hrlf-run``'s summary), also while iterating.
    """

    def __init__(self, runner):
        self.runner = runner
        self._it: Iterator[Result] = runner.results()
        self.closed = False

    def __iter__(self) -> "ResultStream":
        return self

    def __next__(self) -> Result:
        return next(self._it)

    def stats(self) -> dict:
        """Frames received/used/dropped by reason, segments, latency (see Session.stats)."""
        return self.runner.final_stats()

    @property
    def spec(self):
        """The model's :class:`~hrlf.runtime.spec.ModelSpec`."""
        return self.runner.session.spec

    def close(self) -> dict:
        """Stop reading; score the windows already read (their results are discarded);
        close source and backend. Idempotent; returns :meth:`stats`."""
        if not self.closed:
            self.closed = True
            self.runner.request_stop(0)
            for _ in self._it:
                pass
        return self.stats()

    def __enter__(self) -> "ResultStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stream(model, source: str = "demo", **options) -> ResultStream:
    """Stream ``source`` through ``model``; iterate to get one :class:`Result` per segment.

    Args:
        model: a MODEL_DIR made by ``hrlf-export``, or ``"demo"`` (the built-in model).
        source: a source URI: ``demo[:SEED]``, ``replay:PATH[#split]``, ``stdin``,
            ``file:PATH``, ``camera0``, ``mic``, ``rtsp://...`` (as ``hrlf-run --stream``).
        **options: as ``hrlf-run``'s options: ``backend`` (``auto``, ``ort``, ``openvino``,
            ``trt``, ``torch``, ``triton``), ``precision``, ``provider``, ``threads``,
            ``condition`` (``"la"``), ``drop`` (``["audio:10-25"]``), ``window_s``,
            ``hop_s``, ``duration_s``, ``pace`` (``auto``: real time for the demo, as fast
            as possible for files; ``realtime``; ``fast``), ``grace_s``, ``max_batch``,
            ``max_jump_s``, ``pack_device``, ``strict``, ``on_backend_error``
            (``continue``: a failed backend call's windows are dropped, counted as
            ``backend_error``; ``stop``); ``source_options`` (e.g.
            ``{"asr": "off"}``) and ``backend_options`` (e.g. ``{"triton_url": ...}``).

    Returns:
        A :class:`ResultStream`: an iterator of :class:`Result` and a context manager.

    Raises:
        HrlfError: a bad model, source or option (one line), before anything is streamed.
    """
    import inspect

    from ..errors import suggest

    allowed = [p for p in inspect.signature(open_runner).parameters
               if p not in ("model", "source") + _RUNNER_ONLY]
    for key in options:
        if key not in allowed:
            raise TypeError(f"stream(): unknown option '{key}'{suggest(key, allowed)}; "
                            f"options are {', '.join(allowed)}")
    return ResultStream(open_runner(model, source, **options))


#: open_runner arguments that are hrlf-run's output, not stream() options
_RUNNER_ONLY = ("write", "output", "fmt", "stats_every_s", "log")
