"""The errors a user can cause, and the one way their messages are written.

Every such error is a :class:`PiaaError` whose ``str()`` is one line, ``"<file>[:<line>]: <problem>"``:
the command line prints it and exits with status 2 instead of showing a traceback, and batch jobs list
it for the file they skipped. Every such error class is defined here (its old module re-exports it), so
the command line can turn exactly these, and ``OSError`` on the user's own files, into exit status 2
while any other exception shows as the bug it is.
"""

from __future__ import annotations

import os
from pathlib import Path


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


class BackboneError(PiaaError, RuntimeError):
    """A backbone cannot be built as asked (unknown name, missing or mismatched weights)."""


class ReferenceCorpusError(PiaaError, RuntimeError):
    """A reference store is missing, incomplete, corrupt or made with another backbone."""


class AttributeHeadsError(PiaaError, ValueError):
    """An attribute table or a saved attribute-heads file is malformed or does not fit the features."""


class ProfileError(PiaaError, RuntimeError):
    """A profile folder is missing, partial, corrupt or incompatible with this installation."""


class LabelFormatError(PiaaError, ValueError):
    """A label file cannot be read as asked. The message is one line: ``path:line: problem``."""


class DatasetError(PiaaError, ValueError):
    """A benchmark file or folder cannot be read as documented. The message is one line.

    A :class:`ValueError` too, as it was before :class:`~piaa.errors.PiaaError` existed."""


class ImageError(PiaaError):
    """A file that cannot be used as an image; ``str()`` is one line, ``"<path>: <reason>"``.

    Batch jobs print these instead of tracebacks, so the message must say which file and why.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(path, reason)  # keeps the exception picklable (DataLoader workers)
        self.path: Path = Path(path)
        self.reason: str = one_line(reason)

    def __str__(self) -> str:
        return f"{where(self.path)}: {self.reason}"


class PreferenceError(PiaaError, ValueError):
    """A preference file or store that cannot be used as it is; ``str()`` is one line naming the file."""


class SidecarError(PiaaError, ValueError):
    """A sidecar that exists but cannot be merged into (not XML, no rdf:Description)."""


class ExplainError(PiaaError, ValueError):
    """A profile cannot be explained: no judgements, its photos are missing, or too few pairs."""


class SettingError(UsageError):
    """A training setting of the wrong type, or no such setting (``--set``, a profile's config)."""


class SelectionError(UsageError):
    """A candidate's name that is none of the selection's candidates."""
