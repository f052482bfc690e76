"""Robust image loading shared by the whole project: every route to pixels ends here.

Photo collections are messy: HEIC from phones, RAW from cameras, wrong extensions, half-copied files,
16-bit scans, CMYK exports, Adobe RGB or Display P3 colour profiles, pictures stored sideways with an
EXIF orientation tag, and the odd decompression bomb. Everything that reads pixels goes through
:func:`load_image` (files) or :func:`as_rgb_image` (files, PIL images, numpy arrays), so every part of
the project sees the same thing for the same photo: a fully decoded, upright, 8-bit sRGB image, or one
:class:`ImageError` whose message is a single line naming the file. Problems that do not cost the image
(a corrupt EXIF block, an unusable colour profile) become one-line notes naming the file: logged as
warnings on the ``piaa.data.images`` logger and listed in the returned image's ``info["piaa_notes"]``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError, features

from piaa.data import previews
from piaa.data.colour import RENDERING_INTENT, srgb_with_notes, to_rgb, to_srgb
from piaa.data.files import (
    HEIF_AVAILABLE,
    IMAGE_EXTENSIONS,
    RAW_EXTENSIONS,
    FailureLog,
    ImageError,
    iter_image_files,
    read_head,
    sniff_format,
)
from piaa.data.notes import report_notes, source_name, warnings_as_notes
from piaa.data.raw import load_raw
from piaa.errors import one_line

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "RAW_EXTENSIONS",
    "RENDERING_INTENT",
    "FailureLog",
    "ImageError",
    "as_rgb_image",
    "from_array",
    "iter_image_files",
    "load_image",
    "to_rgb",
    "to_srgb",
]

MAX_PIXELS: int = 100_000_000
"""Default decompression-bomb guard: 100 MP is well above any camera yet far below what exhausts memory."""

_KIND_NAMES = {"WEBP": "WebP", "JPEG2000": "JPEG 2000"}  # how sniff_format's names are written to a person
_ORIENTATION_TAG = 0x0112
_WHITE = (255, 255, 255)


# ---------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------

_PILLOW_BOMB_RE = re.compile(r"exceeds limit of (\d+) pixels")


def _orientation(img: Image.Image) -> int:
    """EXIF orientation (1..8), 1 when absent or unreadable: bad metadata must not lose a good image."""
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:
        return 1


def _apply_orientation(img: Image.Image, notes: list[str]) -> None:
    """Rotate/flip ``img`` upright in place; leave it as stored (with a note) if the EXIF is corrupt."""
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except Exception as exc:  # noqa: BLE001 - bad metadata must not lose a good image
        notes.append(f"EXIF orientation unreadable ({type(exc).__name__}); image used as stored")


def _check_draft_size(draft_size: tuple[int, int] | None) -> tuple[int, int] | None:
    if draft_size is None:
        return None
    if len(draft_size) != 2 or any(int(v) != v or v < 1 for v in draft_size):
        raise ValueError(f"draft_size must be two positive integers, got {draft_size!r}")
    return int(draft_size[0]), int(draft_size[1])


def _is_raw(path: Path, kind: str | None) -> bool:
    """RAW by content (RAF, CR3, ORF, RW2 signatures) or by name when the content is TIFF-like or unknown
    (DNG, CR2, NEF, ARW are TIFF inside: Pillow would return their small preview IFD)."""
    return kind == "RAW" or (path.suffix.lower() in RAW_EXTENSIONS and kind in ("TIFF", None))


def _open_pillow(
    p: Path, kind: str | None, max_pixels: int | None, draft: tuple[int, int] | None, use_previews: bool
):
    if kind == "HEIF" and not HEIF_AVAILABLE:
        raise ImageError(p, "HEIC/HEIF images need the pillow-heif package (pip install pillow-heif)")
    if kind == "AVIF" and not features.check("avif"):
        raise ImageError(p, "AVIF images need Pillow 11.3 or later built with AVIF support")
    img = Image.open(p)
    width, height = img.size
    if max_pixels is not None and width * height > max_pixels:
        img.close()
        raise ImageError(p, f"image too large ({width}x{height} pixels, limit {max_pixels})")
    if draft is not None and isinstance(img, JpegImagePlugin.JpegImageFile):
        orientation = _orientation(img)
        if orientation in (5, 6, 7, 8):  # stored sideways: the request is for upright size
            draft = (draft[1], draft[0])
        preview = previews.open_preview(p, img, draft, orientation) if use_previews else None
        if preview is not None:
            img.close()
            return preview
        img.draft("RGB", draft)
    with img:
        img.load()
    return img


def load_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
    previews: bool = False,
) -> Image.Image:
    """Open, fully decode, orient upright and convert one image file to 8-bit sRGB.

    The format is judged by content (a JPEG named ``.png`` loads); HEIC/HEIF via pillow-heif, AVIF via
    Pillow, camera RAW via rawpy (:func:`piaa.data.raw.load_raw`: the embedded preview when it covers
    ``draft_size``, else a demosaic). Decoding happens here, not lazily later, so a truncated or corrupt
    file fails at the call site with an :class:`ImageError` naming it instead of deep inside a batch.
    Colour profiles are converted by :func:`to_srgb`; warnings and unusable metadata become notes
    (module doc).

    ``max_pixels`` (None: no limit of ours) is checked against the header's size before any pixel is
    decoded. Pillow's own warning threshold (``Image.MAX_IMAGE_PIXELS``) is silenced for this call,
    since ``max_pixels`` is the limit that counts; Pillow's hard error (at twice that) still applies and
    is reported as an ImageError too.

    ``draft_size=(width, height)`` lets JPEG decoding use DCT scaling (1/2, 1/4, 1/8), which is several
    times faster for big photos; the result is never smaller than ``draft_size`` in either dimension
    (sizes are meant upright, i.e. after EXIF orientation). With ``previews=True``, a JPEG
    carrying a camera preview (an MPF "Large Thumbnail") at least ``previews.PREVIEW_FACTOR`` x ``draft_size``
    with the photo's aspect ratio is decoded from that preview instead. Other formats ignore
    ``draft_size``, except RAW (it picks the preview). Callers still resize to their exact input size
    afterwards. Raises ValueError for a malformed ``draft_size``.
    """
    draft = _check_draft_size(draft_size)
    p = Path(path)
    notes: list[str] = []
    kind: str | None = None
    try:
        if not p.exists():
            raise ImageError(p, "no such file")
        if p.is_dir():
            raise ImageError(p, "is a directory, not an image file")
        if not p.is_file():
            raise ImageError(p, "not a regular file")
        if p.stat().st_size == 0:
            raise ImageError(p, "file is empty")
        kind = sniff_format(read_head(p))
        if kind == "JXL" and ".jxl" not in IMAGE_EXTENSIONS:
            raise ImageError(p, "JPEG XL images are not supported (convert to JPEG, PNG or AVIF)")
        with warnings_as_notes(notes):
            if _is_raw(p, kind):
                img = load_raw(p, max_pixels=max_pixels, draft_size=draft)
            else:
                img = _open_pillow(p, kind, max_pixels, draft, previews)
            _apply_orientation(img, notes)
            out = srgb_with_notes(img, notes)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        match = _PILLOW_BOMB_RE.search(str(exc))
        limit = match.group(1) if match else "Image.MAX_IMAGE_PIXELS x 2"
        reason = f"image too large (over Pillow's decompression-bomb limit of {limit} pixels)"
        raise ImageError(p, reason) from exc
    except UnidentifiedImageError as exc:
        if kind is not None:  # a real signature that Pillow gives up on: a damaged file, not a stranger
            raise ImageError(p, f"damaged {_KIND_NAMES.get(kind, kind)} file (cannot be decoded)") from exc
        raise ImageError(p, "not an image file (unrecognised format)") from exc
    except PermissionError as exc:
        raise ImageError(p, "permission denied") from exc
    except FileNotFoundError as exc:  # removed between the checks and the open
        raise ImageError(p, "no such file") from exc
    except MemoryError as exc:
        raise ImageError(p, "out of memory while decoding") from exc
    except ValueError as exc:
        if "unsupported image mode" in str(exc):
            raise ImageError(p, str(exc)) from exc
        raise ImageError(p, f"truncated or corrupt image data ({one_line(exc)})") from exc
    except (OSError, SyntaxError, EOFError) as exc:
        detail = one_line(exc)
        reason = "truncated or corrupt image data"
        raise ImageError(p, f"{reason} ({detail})" if detail else reason) from exc
    except Exception as exc:  # decoders raise all sorts (struct.error, IndexError, ...) on garbage
        raise ImageError(p, f"cannot decode image ({type(exc).__name__}: {one_line(exc)})") from exc
    out.info.pop("icc_profile", None)  # ours: used (or judged unusable) once, never again downstream
    report_notes(p, notes, out)
    return out


# ---------------------------------------------------------------------------------------------------------
# Any route
# ---------------------------------------------------------------------------------------------------------


def from_array(array: np.ndarray) -> Image.Image:
    """A numpy image as 8-bit RGB: H x W (grey), H x W x 1, 3 (RGB) or 4 (RGBA, over white).

    uint8 is taken as is, uint16 scaled 65535 -> 255, floats must lie in [0, 1] (scaled by 255 and
    rounded, so ``u8 / 255`` gives back the same pixels). Arrays carry no profile: they are taken as
    sRGB. Raises ValueError (one line naming the shape and dtype) for anything else.
    """
    a = np.asarray(array)
    what = f"shape {a.shape}, dtype {a.dtype}"
    expected = "expected H x W or H x W x 1/3/4 of uint8, uint16 or float in [0, 1]"
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4))) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"image array has {what}; {expected}")
    if a.dtype == np.uint8:
        u8 = a
    elif a.dtype == np.uint16:
        u8 = ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all() or a.min() < 0.0 or a.max() > 1.0:
            raise ValueError(f"image array has {what} with values outside [0, 1] or not finite; {expected}")
        u8 = np.rint(a.astype(np.float64) * 255.0).astype(np.uint8)
    else:
        raise ValueError(f"image array has {what}; {expected}")
    if u8.ndim == 3 and u8.shape[2] == 1:
        u8 = u8[..., 0]
    mode = "L" if u8.ndim == 2 else ("RGB" if u8.shape[2] == 3 else "RGBA")
    return to_rgb(Image.fromarray(np.ascontiguousarray(u8), mode=mode))


def as_rgb_image(
    image: str | os.PathLike[str] | Image.Image | np.ndarray,
    *,
    max_pixels: int | None = MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> Image.Image:
    """The one way to pixels, so a photo gives the same pixels (and score) however it arrives.

    * a path: :func:`load_image` (``max_pixels`` and ``draft_size`` apply only here);
    * a PIL image: EXIF orientation applied, embedded profile converted (:func:`to_srgb`), mode made
      8-bit RGB; the caller's image is never modified (an upright sRGB RGB image is returned as is);
    * a numpy array: :func:`from_array`, taken as sRGB.

    Raises :class:`ImageError` for a file, or for a lazily opened PIL image whose data is corrupt;
    ValueError for a bad array or mode; TypeError for anything else.
    """
    if isinstance(image, str | os.PathLike):
        return load_image(image, max_pixels=max_pixels, draft_size=draft_size)
    if isinstance(image, np.ndarray):
        return from_array(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a path, PIL image or numpy array, got {type(image).__name__}")
    source = source_name(image)
    notes: list[str] = []
    try:
        with warnings_as_notes(notes):
            image.load()
            if _orientation(image) != 1:
                turned = ImageOps.exif_transpose(image)  # a copy: the caller's image stays as it is
                if turned is not None:
                    image = turned
            out = srgb_with_notes(image, notes)
    except (OSError, SyntaxError, EOFError) as exc:
        raise ImageError(source, f"truncated or corrupt image data ({one_line(exc)})") from exc
    report_notes(source, notes, out if out is not image else None)
    return out
