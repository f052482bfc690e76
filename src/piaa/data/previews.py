"""Embedded camera previews: a cheaper, opt-in source of pixels for big camera JPEGs (``--previews``)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, JpegImagePlugin

_ORIENTATION_TAG = 0x0112

# Whether draft decoding may take a JPEG's embedded camera preview (an MPF "Large Thumbnail") instead of
# the photo is the caller's choice (``load_image(previews=True)``, ``RunSettings.previews``, ``piaa score
# --previews``): 3.5-3.8 times the throughput for 24-MP camera JPEGs, but scores move. Measured with
# ``benchmarks/bench_throughput.py``'s camera JPEGs (24 MP, 1620x1080 preview): by 0.011 on average and
# up to 0.037 against the photo's own draft decoding, which is itself up to 0.024 from a full-resolution
# decode (the preview: up to 0.033). That is over the 0.02 the project accepts as "the same score", so it
# is off unless asked for. No other way of resampling the preview (nine chains, README "Throughput")
# stays within 0.02 either: the head responds to sub-level pixel differences, which any chain other than
# the photo's own leaves.

PREVIEW_FACTOR = 2
"""A preview is used when it is at least this many times the requested ``draft_size`` in both
dimensions, and it is decoded (DCT-scaled) to no less than this many times the request: scaling it down
to the request itself moved scores by up to 0.07."""


# MPF (CIPA DC-007) entry types of a camera's preview: "Large Thumbnail", VGA and Full HD equivalent.
# Other secondary images (gain maps, stereo and panorama frames) are never taken for the photo.
_MPF_PREVIEW_TYPES = ("Large Thumbnail (VGA Equivalent)", "Large Thumbnail (Full HD Equivalent)")


def _preview_entry(img: JpegImagePlugin.JpegImageFile, draft: tuple[int, int]) -> tuple[int, int] | None:
    """``(file offset, length)`` of the largest MPF preview fit to stand in for ``img`` decoded at
    ``draft`` (stored orientation): a Large Thumbnail at least :data:`PREVIEW_FACTOR` x ``draft`` with
    the photo's aspect ratio (within 1%). None when there is none or the index is unreadable."""
    try:
        # MpoImageFile only (Pillow leaves Ultra HDR files, whose second image is a gain map, as JPEG);
        # it resolves each entry's file offset when opening.
        mp = getattr(img, "mpinfo", None)
        offsets = getattr(img, "_MpoImageFile__mpoffsets", None)
        if not mp or not offsets:
            return None
        entries = [
            (offset, e["Size"])
            for e, offset in zip(mp[0xB002][1:], offsets[1:], strict=False)
            if e["Attribute"]["MPType"] in _MPF_PREVIEW_TYPES and e["Size"] > 0
        ]
        width, height = img.size
        for offset, length in sorted(entries, key=lambda e: -e[1]):  # the largest first
            pw, ph = _header_size(img, offset, length)
            big_enough = pw >= PREVIEW_FACTOR * draft[0] and ph >= PREVIEW_FACTOR * draft[1]
            if big_enough and abs(pw * height - ph * width) <= 0.01 * ph * width:
                return offset, length
    except Exception:  # noqa: BLE001 - a bad index only costs the shortcut
        return None
    return None


def _header_size(img: Image.Image, offset: int, length: int) -> tuple[int, int]:
    """Size of the JPEG stored at ``offset`` in ``img``'s file, read from its header."""
    assert img.fp is not None
    img.fp.seek(offset)
    with Image.open(io.BytesIO(img.fp.read(min(length, 1 << 18)))) as prev:
        return prev.size


def open_preview(
    p: Path, img: JpegImagePlugin.JpegImageFile, draft: tuple[int, int], orientation: int
) -> JpegImagePlugin.JpegImageFile | None:
    """The embedded preview of ``img``, decoded, carrying the photo's orientation and colour profile;
    None when :func:`_preview_entry` finds none or it does not decode (the photo is used then)."""
    entry = _preview_entry(img, draft)
    if entry is None:
        return None
    offset, length = entry
    with open(p, "rb") as f:
        f.seek(offset)
        data = f.read(length)
    try:
        prev = Image.open(io.BytesIO(data))
        if not isinstance(prev, JpegImagePlugin.JpegImageFile):
            return None
        exif = prev.getexif()  # cached: load_image's orientation step reads this object
        exif.pop(_ORIENTATION_TAG, None)
        if orientation != 1:
            exif[_ORIENTATION_TAG] = orientation
        if "icc_profile" not in prev.info and img.info.get("icc_profile"):
            prev.info["icc_profile"] = img.info["icc_profile"]
        # Decoded to twice the request (PREVIEW_FACTOR): as close to a full decode as the photo's draft.
        prev.draft("RGB", (PREVIEW_FACTOR * draft[0], PREVIEW_FACTOR * draft[1]))
        prev.load()
        return prev
    except Exception:  # noqa: BLE001 - a bad preview only costs the shortcut: the photo is decoded
        return None
