"""The click command class of every hrlf CLI: one log format, ``--version``, one exit-code
table, and every error one line.

Every command gets ``--version`` and ``--log-format text|json`` (or ``$HRLF_LOG_FORMAT``;
see :mod:`hrlf.runtime.logs`). Errors are log records of level ERROR in that format, and
the exit status says what happened (docs/exit-status.md):

====  =====================================================================================
0     finished (``hrlf-run``: also a stream stopped by SIGINT/SIGTERM after its flush)
1     a user error: bad input, data, model or source (an :class:`HrlfError`), one line
2     a usage error: an unknown or missing option, a value of the wrong type or out of
      its range, one line naming the option
70    an internal error (a bug): the traceback is logged; please report it
130   interrupted by SIGINT (Ctrl-C) before finishing; nothing half-written
143   interrupted by SIGTERM before finishing; nothing half-written
====  =====================================================================================
"""
from __future__ import annotations

import signal

import click

from . import logs

#: exit status -> meaning (docs/exit-status.md's table is this one; a test checks)
EXIT = {"ok": 0, "user_error": 1, "usage_error": 2, "internal_error": 70,
        "sigint": 130, "sigterm": 143}


def _version(ctx: click.Context, _param, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from ..version import __version__

    name = getattr(ctx.command, "tool", None) or ctx.find_root().info_name or ctx.command.name
    click.echo(f"{name} {__version__}")
    ctx.exit(0)


def _one_line(e: BaseException) -> str:
    text = e.format_message() if isinstance(e, click.ClickException) else str(e)
    return " ".join(text.split()) or type(e).__name__  # click may wrap a message


class OneLineCommand(click.Command):
    """``click.Command`` with ``--version``, ``--log-format`` and one-line errors.

    Args (besides click's):
        tool: the name log lines start with (default: the program name).
        log_levels: logger name -> level for this tool (e.g. the runtime's own loggers
            at WARNING unless ``-v``); ``verbose_levels`` replace them with ``-v``.
        third_party_verbose: with ``-v``, also log other libraries' records.
    """

    def __init__(self, *args, tool: str | None = None, log_levels: dict | None = None,
                 verbose_levels: dict | None = None, third_party_verbose: bool = False,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.tool = tool
        self.log_levels, self.verbose_levels = log_levels or {}, verbose_levels or {}
        self.third_party_verbose = third_party_verbose
        self.params += [
            click.Option(["--log-format"], type=click.Choice(logs.FORMATS), default="text",
                         show_default=True, envvar=logs.ENV,
                         help=f"stderr log lines as text ('TOOL LEVEL message') or JSON "
                              f"objects (time, level, tool, message, fields) [env "
                              f"{logs.ENV}]."),
            click.Option(["--version"], is_flag=True, expose_value=False, is_eager=True,
                         callback=_version, help="Print the version and exit.")]

    def _tool(self, info_name: str | None) -> str:
        return self.tool or info_name or self.name or "hrlf"

    def make_context(self, info_name, args, parent=None, **extra):
        raw = list(args)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else self._tool(info_name)
            log = logs.setup(self._tool(info_name), logs.format_from_args(raw))
            log.error("%s (see '%s --help')", _one_line(e), where,
                      extra=logs.fields(exit_code=e.exit_code))
            raise click.exceptions.Exit(e.exit_code) from None

    def invoke(self, ctx: click.Context):
        fmt = ctx.params.pop("log_format", "text")
        verbose = bool(ctx.params.get("verbose"))
        levels = {**self.log_levels, **(self.verbose_levels if verbose else {})}
        log = logs.setup(self._tool(ctx.info_name), fmt, levels,
                         third_party=verbose and self.third_party_verbose)
        from ..errors import HrlfError

        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (HrlfError, click.ClickException) as e:
            code = getattr(e, "exit_code", EXIT["user_error"])
            see = f" (see '{ctx.command_path} --help')" if isinstance(e, click.UsageError) else ""
            log.error("%s%s", _one_line(e), see, extra=logs.fields(exit_code=code))
            raise click.exceptions.Exit(code) from None
        except KeyboardInterrupt as e:  # commands that keep state say more themselves
            signum = int(getattr(e, "signum", signal.SIGINT))
            name = signal.Signals(signum).name
            log.warning("Interrupted by %s", name, extra=logs.fields(signal=name))
            raise click.exceptions.Exit(128 + signum) from None
        except Exception as e:  # a bug: keep the traceback, say so, and a distinct status
            log.error("internal error (%s: %s); this is a bug, please report it with the "
                      "traceback", type(e).__name__, str(e).split("\n")[0],
                      exc_info=True, extra=logs.fields(exit_code=EXIT["internal_error"]))
            raise click.exceptions.Exit(EXIT["internal_error"]) from None


def usage_error(message: str) -> click.UsageError:
    """A usage error raised inside a command (exit status 2, one line)."""
    return click.UsageError(message)


#: errno values that mean "the disk cannot take the file" (not a user's wrong path)
_DISK = {"ENOSPC": "no space left on the device", "EDQUOT": "disk quota exceeded",
         "EFBIG": "file too large", "EROFS": "read-only file system", "EIO": "I/O error"}


def write_failure(e: BaseException) -> str | None:
    """One-line reason when ``e`` is a write the disk refused (full, quota, read-only, I/O
    error), else None. torch and onnx report a full disk as a RuntimeError whose message
    holds the C library's words, so those count too."""
    import errno

    if isinstance(e, OSError) and e.errno is not None:
        for name, why in _DISK.items():
            if e.errno == getattr(errno, name, None):
                where = f"{e.filename}: " if e.filename else ""
                return f"{where}{why}"
        return None
    text = str(e)
    if isinstance(e, RuntimeError) and ("file write failed" in text or
                                        "No space left" in text):
        return "no space left on the device"
    return None


def require_extras(command: str, needs: dict[str, tuple[str, ...]]) -> None:
    """One ``Error:`` line naming the extra to install when a module a command needs is
    missing (``needs``: extra -> modules), instead of an import traceback later."""
    import importlib.util

    def absent(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is None
        except ValueError:  # sys.modules[module] is None: imports of it fail
            return True

    missing = {extra: [m for m in mods if absent(m)] for extra, mods in needs.items()}
    missing = {k: v for k, v in missing.items() if v}
    if missing:
        mods = ", ".join(m for v in missing.values() for m in v)
        raise click.ClickException(f"{command} needs {mods}, which this install lacks (the "
                                   f"runtime-only install); pip install "
                                   f"'hrlf[{','.join(needs)}]'")
