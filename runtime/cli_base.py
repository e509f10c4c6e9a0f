"""The click command class of every hrlf CLI: a usage mistake is one ``Error:`` line.

Click prints a usage error (an option out of range, a missing or unknown option) as three
lines: the usage synopsis, a "Try --help" hint and the error. Here it is one line naming
the option, the problem and where to look, with click's exit status 2 kept, the same
shape as the :class:`hrlf.runtime.errors.HrlfError` lines (status 1).
"""
from __future__ import annotations

import click


class OneLineCommand(click.Command):
    """``click.Command`` whose usage errors print as ``Error: <message> (see 'PROG -h')``."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else (info_name or self.name)
            msg = " ".join(e.format_message().split())  # click may wrap a message
            err = click.ClickException(f"{msg} (see '{where} --help')")
            err.exit_code = e.exit_code
            raise err from None


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
