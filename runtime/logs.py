"""One log format for every hrlf command (``hrlf-train``, ``hrlf-eval``, ``hrlf-export``,
``hrlf-run``, ``reproduce``, ``realmedia``).

stderr carries logs, stdout data. Every log line is a record of the ``hrlf`` logger tree,
written in one of two formats (``--log-format``, or ``$HRLF_LOG_FORMAT``):

* ``text`` (default): ``<tool> <LEVEL> <message>``, e.g.
  ``hrlf-run WARNING audio at t=1.7e+09 s: stream time now counts from ...``;
* ``json``: one JSON object per line with ``time`` (UTC, ISO 8601), ``level``, ``tool``,
  ``logger``, ``message`` and the record's fields (``stats``, ``summary``, ``stage`` ...),
  for log collectors (journald, Loki, Fluent Bit, Vector).

A record carries fields as ``log.info(msg, extra=fields(stats=...))``. A record may also
carry ``extra={"text": LINE}``: its exact text-format line (the JSON summary line of
``hrlf-run``, kept machine-readable in both formats).
"""
from __future__ import annotations

import datetime
import json
import logging
import sys

FORMATS = ("text", "json")
ENV = "HRLF_LOG_FORMAT"
#: a command's own messages (progress, summaries, errors); library code logs under
#: ``hrlf.<package>`` and reaches the same handler
TOOL = "hrlf.cli"
_TIME_FMT = "%Y-%m-%dT%H:%M:%S"
#: loggers whose level setup() sets (reset to inherit first)
MANAGED = ("hrlf.runtime", "hrlf.kernels", "hrlf.capture", "hrlf.train", "hrlf.export")


_STATE = {"format": None}  # the format of the last setup() (None: no CLI configured logs)


def fields(**kw) -> dict:
    """``extra=`` for a record with structured fields (the JSON format's extra keys)."""
    return {"fields": kw}


class Formatter(logging.Formatter):
    """``<tool> <LEVEL> <message>`` (text) or one JSON object (json) per record."""

    def __init__(self, tool: str, fmt: str = "text"):
        super().__init__()
        if fmt not in FORMATS:
            raise ValueError(f"log format {fmt!r}: use one of {FORMATS}")
        self.tool, self.fmt = tool, fmt

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.name == "py.warnings":  # "file:line: Category: text\n  source": one line
            msg = " ".join(msg.strip().splitlines()[0].split())
        if self.fmt == "json":
            t = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            out = {"time": t.strftime(_TIME_FMT) + f".{int(record.msecs):03d}Z",
                   "level": record.levelname, "tool": self.tool, "logger": record.name,
                   "message": msg}
            for k, v in (getattr(record, "fields", None) or {}).items():
                out.setdefault(k, v)
            if record.exc_info:
                out["traceback"] = self.formatException(record.exc_info)
            return json.dumps(out, default=str)
        text = getattr(record, "text", None)
        if text is not None:
            return text
        line = f"{self.tool} {record.levelname} {msg}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class EchoHandler(logging.Handler):
    """Writes to the *current* ``sys.stderr`` (so pipes, CliRunner and tests all see it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stderr
            stream.write(line + "\n")
            stream.flush()
        except (BrokenPipeError, ValueError):  # stderr closed (`| head`) or gone
            pass
        except Exception:  # noqa: BLE001 - logging must never take the command down
            self.handleError(record)


def setup(tool: str, fmt: str = "text", levels: dict | None = None,
          third_party: bool = False) -> logging.Logger:
    """Send the ``hrlf`` loggers to stderr in one format; returns the tool's logger.

    Idempotent: a second call (CliRunner, several commands in one process) replaces the
    handler, so the last format and tool name win.

    Args:
        tool: the name every line starts with (``hrlf-run``).
        fmt: ``text`` or ``json``.
        levels: logger name -> level, e.g. ``{"hrlf.runtime": logging.WARNING}`` (the
            ``hrlf`` tree is at INFO otherwise).
        third_party: also route other libraries' records (the root logger) here.
    """
    handler = EchoHandler()
    handler.setFormatter(Formatter(tool, fmt))
    root, hrlf = logging.getLogger(), logging.getLogger("hrlf")
    for lg in (hrlf, root):
        for h in [h for h in lg.handlers if isinstance(h, EchoHandler)]:
            lg.removeHandler(h)
    # third_party: one handler on the root, which hrlf's records reach too; else on
    # "hrlf" (propagating, so that a test's log capture still sees the records)
    (root if third_party else hrlf).addHandler(handler)
    # Python warnings of the libraries (torch, scikit-learn, ...) in the same format
    logging.captureWarnings(True)
    pyw = logging.getLogger("py.warnings")
    for h in [h for h in pyw.handlers if isinstance(h, EchoHandler)]:
        pyw.removeHandler(h)
    if not third_party:
        pyw.addHandler(handler)
    hrlf.setLevel(logging.INFO)
    hrlf.propagate = True
    if third_party:
        root.setLevel(logging.INFO)
    for name in MANAGED:  # an earlier setup's levels (several commands in one process)
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name, level in (levels or {}).items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger(TOOL).setLevel(logging.INFO)
    _STATE["format"] = fmt
    return logging.getLogger(TOOL)


def interactive() -> bool:
    """True when progress bars may be drawn: stderr is a terminal and logs are text."""
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        tty = False
    return tty and _STATE["format"] != "json"


def tool_log() -> logging.Logger:
    """The logger of a command's own messages."""
    return logging.getLogger(TOOL)


def format_from_args(args, default: str | None = None) -> str:
    """``--log-format`` as given in raw ``args`` (before click parsed them; for the usage
    error that stops parsing), else ``$HRLF_LOG_FORMAT``, else text."""
    import os

    args = list(args or [])
    for i, a in enumerate(args):
        if a == "--log-format" and i + 1 < len(args):
            return args[i + 1] if args[i + 1] in FORMATS else "text"
        if a.startswith("--log-format="):
            v = a.split("=", 1)[1]
            return v if v in FORMATS else "text"
    env = os.environ.get(ENV, default or "text")
    return env if env in FORMATS else "text"
