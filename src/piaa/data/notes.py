"""Notes: what went wrong with a photo that was still usable (a corrupt EXIF block, an unusable colour
profile), as one line naming the file, logged as a warning on the ``piaa.data.images`` logger and listed
in the image's ``info["piaa_notes"]``, instead of raw warnings from the decoders."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

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


@contextlib.contextmanager
def warnings_as_notes(notes: list[str]):
    """Turn the decoders' UserWarnings (Pillow's corrupt EXIF, odd chunks) into notes instead of raw
    warning output; other categories (ResourceWarning, DeprecationWarning) are passed on as they were.
    ``warnings.catch_warnings`` is process-wide: loads in parallel threads may swap each other's notes."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:  # type: ignore[assignment]
            warnings.simplefilter("always")
            # max_pixels is the limit that counts; Pillow's hard error still applies.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        for w in caught:
            if issubclass(w.category, UserWarning):
                notes.append(one_line(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
