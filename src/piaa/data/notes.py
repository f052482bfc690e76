"""Notes: what went wrong with a photo that was still usable (a corrupt EXIF block, an unusable colour
profile), as one line naming the file, logged as a warning on the ``piaa.data.images`` logger and listed
in the image's ``info["piaa_notes"]``, instead of raw warnings from the decoders."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Iterator

from PIL import Image

from piaa.errors import one_line, where

log = logging.getLogger("piaa.data.images")


def source_name(img: Image.Image) -> str:
    return getattr(img, "filename", "") or "<image in memory>"


def report_notes(source: str | os.PathLike[str], notes: list[str], img: Image.Image | None = None) -> None:
    """Log each note once as ``"<file>: <note>"`` and list them in ``img.info["piaa_notes"]``."""
    lines = [f"{where(source)}: {one_line(note)}" for note in dict.fromkeys(notes)]
    for line in lines:
        log.warning("%s", line)
    if img is not None and lines:
        img.info["piaa_notes"] = [*img.info.get("piaa_notes", []), *lines]


_local = threading.local()
_lock = threading.Lock()
_DECODERS = r"(PIL|piaa|pillow_heif|rawpy)(\..*)?$"  # modules a decoder's warning is attributed to


def _showwarning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
    """Route a warning raised while this thread decodes a photo into that photo's notes; any other
    warning (another thread's, or outside a load) goes where it went before."""
    sink = getattr(_local, "sink", None)
    if sink is not None:
        if issubclass(category, Image.DecompressionBombWarning):
            return  # max_pixels is the limit that counts; Pillow's hard error still applies
        if issubclass(category, UserWarning):
            sink.append(one_line(message))
            return
    _showwarning.previous(message, category, filename, lineno, file, line)


def _install() -> None:
    with _lock:
        if warnings.showwarning is not _showwarning:
            _showwarning.previous = warnings.showwarning  # type: ignore[attr-defined]
            warnings.showwarning = _showwarning
            # every occurrence, not once per code location: each photo's problems are its own
            warnings.filterwarnings("always", category=UserWarning, module=_DECODERS)


@contextlib.contextmanager
def warnings_as_notes(notes: list[str]) -> Iterator[None]:
    """Turn the decoders' UserWarnings (Pillow's corrupt EXIF, odd chunks) raised by this thread into
    ``notes`` instead of raw warning output; other categories are passed on as they were. Per thread, so
    photos decoded in parallel threads keep their own notes."""
    _install()
    previous = getattr(_local, "sink", None)
    _local.sink = notes
    try:
        yield
    finally:
        _local.sink = previous
