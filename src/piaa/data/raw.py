"""Camera RAW files (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2, ...) through rawpy (LibRaw).

Demosaicing a 24-megapixel RAW takes seconds; every camera also embeds the JPEG it would have shot,
usually at full or near-full size. That preview is what the photographer saw on the camera and in most
viewers, so it is used whenever it is at least as large as what the caller needs; otherwise the RAW
data is demosaiced with the camera's white balance into 8-bit sRGB (LibRaw's default output space).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from piaa.data.files import ImageError

__all__ = ["RAW_PREVIEW_MIN", "load_raw"]

RAW_PREVIEW_MIN: tuple[int, int] = (1024, 1024)
"""Smallest embedded preview used when the caller gives no ``draft_size``: enough for any backbone
input (224-512 px) and for the web page's thumbnails, and far faster than demosaicing."""

# LibRaw's flip code -> the transpose that makes the image upright (what postprocess() applies itself).
_FLIP = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270}


def _rawpy():
    try:
        import rawpy
    except ImportError:  # pragma: no cover - a hard dependency
        return None
    return rawpy


def _covers(size: tuple[int, int], need: tuple[int, int]) -> bool:
    """Whether an image of ``size`` is at least ``need`` in both dimensions, whichever way it is turned."""
    return sorted(size)[0] >= sorted(need)[0] and sorted(size)[1] >= sorted(need)[1]


def _preview(raw, need: tuple[int, int], flip: int, draft: bool) -> Image.Image | None:
    """The embedded JPEG (or bitmap) preview, upright, when it covers ``need``; else None."""
    rawpy = _rawpy()
    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        img = Image.open(io.BytesIO(thumb.data))
        if not _covers(img.size, need):
            return None
        if draft:  # DCT scaling, never below the request whichever way the preview is turned
            img.draft("RGB", (max(need), max(need)))
        img.load()
        if img.getexif().get(0x0112, 1) in (1, None):  # the preview says nothing: the RAW's flip counts
            img = img.transpose(_FLIP[flip]) if flip in _FLIP else img
        return img  # a preview with its own orientation tag is turned by load_image, like any JPEG
    array = np.asarray(thumb.data)
    if array.ndim != 3 or array.shape[2] != 3 or not _covers((array.shape[1], array.shape[0]), need):
        return None
    img = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8), mode="RGB")
    return img.transpose(_FLIP[flip]) if flip in _FLIP else img


def load_raw(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = None,
    draft_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode a camera RAW file to an upright image (RGB, or a JPEG preview still carrying its EXIF
    and ICC data for :func:`~piaa.data.images.load_image` to apply).

    The embedded preview is used when it covers ``draft_size`` (default :data:`RAW_PREVIEW_MIN`);
    otherwise ``postprocess(use_camera_wb=True, output_bps=8)``. Raises :class:`ImageError` when rawpy
    is missing, LibRaw cannot read the file, or the sensor exceeds ``max_pixels``.
    """
    p = Path(path)
    rawpy = _rawpy()
    if rawpy is None:
        raise ImageError(p, "camera RAW files need the rawpy package (pip install rawpy)")
    need = draft_size or RAW_PREVIEW_MIN
    try:
        with rawpy.imread(str(p)) as raw:
            width, height = raw.sizes.width, raw.sizes.height
            if max_pixels is not None and width * height > max_pixels:
                raise ImageError(p, f"image too large ({width}x{height} pixels, limit {max_pixels})")
            preview = _preview(raw, need, raw.sizes.flip, draft_size is not None)
            if preview is not None:
                return preview
            rgb = raw.postprocess(use_camera_wb=True, output_bps=8)
    except rawpy.LibRawFileUnsupportedError as exc:
        raise ImageError(p, "not a camera RAW file LibRaw can read (unsupported or corrupt)") from exc
    except rawpy.LibRawIOError as exc:
        raise ImageError(p, "truncated or corrupt RAW data") from exc
    except rawpy.LibRawError as exc:
        raise ImageError(p, f"cannot decode RAW file ({type(exc).__name__}: {exc})") from exc
    return Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), mode="RGB")
