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


def where(path: str | os.PathLike[str], line: int | None = None) -> str:
    """``path`` or ``path:line``, with control characters escaped so odd file names stay one line."""
    text = str(path).replace("\r", "\\r").replace("\n", "\\n")
    return f"{text}:{line}" if line is not None else text


class PiaaError(Exception):
    """Base of every error a user's input can cause (bad file, store, profile, setting)."""


def file_error(cls: type[Exception], path: str | os.PathLike[str], problem: str, line: int | None = None):
    """``cls("<path>[:<line>]: <problem>")``, the one spelling of a file-naming error."""
    return cls(f"{where(path, line)}: {one_line(problem)}")
