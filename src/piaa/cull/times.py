"""When a photo was taken: EXIF ``DateTimeOriginal`` + ``SubSecTimeOriginal``, else the file's time."""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path

from PIL import Image

EXIF_IFD = 0x8769
DATETIME_ORIGINAL, SUBSEC_ORIGINAL = 0x9003, 0x9291
DATETIME, SUBSEC = 0x0132, 0x9290  # IFD0's DateTime and SubSecTime: the last resort inside EXIF


def parse_exif_time(text: object, subsec: object = None) -> datetime | None:
    """``"2024:05:01 10:11:12"`` (+ sub-second digits ``"25"`` -> 0.25 s) as a naive datetime (the
    camera's local time), None when absent or malformed (``"0000:00:00 00:00:00"``, blanks)."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    if not isinstance(text, str):
        return None
    text = text.strip().rstrip("\x00").strip()
    try:
        t = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if isinstance(subsec, bytes):
        subsec = subsec.decode("ascii", "replace")
    digits = "".join(c for c in str(subsec or "").strip().rstrip("\x00") if c.isdigit())
    if digits:
        t = t.replace(microsecond=int(round(float("0." + digits) * 1e6)) % 1_000_000)
    return t


def exif_time(path: Path) -> datetime | None:
    """The EXIF capture time of ``path`` (only the header is read), None when it has none."""
    try:
        with Image.open(path) as img:
            exif = img.getexif()
            sub = exif.get_ifd(EXIF_IFD)
    except Exception:  # noqa: BLE001 - no readable EXIF just means the file's time is used
        return None
    return parse_exif_time(sub.get(DATETIME_ORIGINAL), sub.get(SUBSEC_ORIGINAL)) or parse_exif_time(
        exif.get(DATETIME), sub.get(SUBSEC)
    )


def capture_time(path: Path) -> tuple[datetime | None, str]:
    """(time, "exif") from the EXIF tags, else (the file's modification time, "file"); (None, "file")
    when even that cannot be read."""
    t = exif_time(path)
    if t is not None:
        return t, "exif"
    with contextlib.suppress(OSError):
        return datetime.fromtimestamp(Path(path).stat().st_mtime), "file"
    return None, "file"


__all__ = ["capture_time", "exif_time", "parse_exif_time"]
