"""The errors a user can cause, and the one way their messages are written.

Every such error is a :class:`PiaaError` whose ``str()`` is one line, ``"<file>[:<line>]: <problem>"``:
the command line prints it and exits with status 2 instead of showing a traceback, and batch jobs list
it for the file they skipped.
"""

from __future__ import annotations

import os


def one_line(text: object) -> str:
    """Collapse all whitespace (newlines from libraries included) so a message stays one line."""
    return " ".join(str(text).split())


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)} | {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


def where(path: str | os.PathLike[str], line: int | None = None) -> str:
    """``path`` or ``path:line``, with control characters (NUL, ESC, newlines, DEL) escaped as ``\\x00``,
    ``\\n`` ...: an odd file name or a name from a CSV stays one line and cannot drive the terminal."""
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    text = text.translate(_CONTROL)
    return f"{text}:{line}" if line is not None else text


class PiaaError(Exception):
    """Base of every error a user's input can cause (bad file, store, profile, setting)."""


def file_error(cls: type[Exception], path: str | os.PathLike[str], problem: str, line: int | None = None):
    """``cls("<path>[:<line>]: <problem>")``, the one spelling of a file-naming error."""
    return cls(f"{where(path, line)}: {one_line(problem)}")


class UsageError(PiaaError, ValueError):
    """A value the user gave (an option, a setting, a name) that piaa cannot use."""


class UnknownNameError(UsageError):
    """A name that no registry holds (:class:`piaa.registry.Registry`); the message lists the choices."""
