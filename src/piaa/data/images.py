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

import contextlib
import functools
import io
import logging
import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, JpegImagePlugin, UnidentifiedImageError, features

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
from piaa.data.raw import load_raw
from piaa.errors import one_line, where

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "RAW_EXTENSIONS",
    "RENDERING_INTENT",
    "FailureLog",
    "ImageError",
    "as_rgb_image",
    "embedded_previews",
    "from_array",
    "iter_image_files",
    "load_image",
    "to_rgb",
    "to_srgb",
]

log = logging.getLogger("piaa.data.images")

MAX_PIXELS: int = 100_000_000
"""Default decompression-bomb guard: 100 MP is well above any camera yet far below what exhausts memory."""

_ORIENTATION_TAG = 0x0112
_WHITE = (255, 255, 255)


# ---------------------------------------------------------------------------------------------------------
# Mode conversion
# ---------------------------------------------------------------------------------------------------------

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_UINT16_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def _has_transparency(img: Image.Image) -> bool:
    if img.mode in _ALPHA_MODES:
        return True
    if img.mode == "P" and img.palette is not None and img.palette.mode == "RGBA":
        return True
    return "transparency" in img.info and img.mode in ("P", "L", "RGB", "1")


def _from_uint8(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8), mode="L").convert("RGB")


def _scale_to_uint8(arr: np.ndarray, maximum: float) -> np.ndarray:
    """Map [0, maximum] linearly onto [0, 255] with rounding (so 65535 -> 255 and 32768 -> 128)."""
    if maximum <= 0:
        return np.zeros(arr.shape, dtype=np.uint8)
    scaled = np.clip(arr, 0, maximum).astype(np.float64) * (255.0 / maximum)
    return np.rint(scaled).astype(np.uint8)


def _unpremultiply_la(img: Image.Image) -> Image.Image:
    """Premultiplied grey + alpha ("La") to plain "LA"; Pillow has no conversion for it."""
    arr = np.asarray(img).astype(np.uint32)
    grey, alpha = arr[..., 0], arr[..., 1]
    plain = np.where(alpha > 0, np.minimum((grey * 255 + alpha // 2) // np.maximum(alpha, 1), 255), 0)
    return Image.fromarray(np.stack([plain, alpha], axis=-1).astype(np.uint8), mode="LA")


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, the one layout the models are trained on.

    * Transparent images (RGBA, LA, PA, La, RGBa, P or L/RGB with a transparency key) are
      composited over WHITE: that is what an image viewer or web page shows, so it is what a
      person rated. (Dropping alpha would reveal arbitrary, often black, colour under it.)
    * 16-bit modes (``I;16``, ``I;16L``, ``I;16B``, ``I;16N``) are scaled, 65535 -> 255;
      Pillow's own conversion clips everything above 255 to white.
    * ``I`` (32-bit signed) is treated as 16-bit data when its maximum is <= 65535 (that is how
      16-bit PNGs and TIFFs usually arrive); otherwise it is scaled by its own maximum.
      Negative values become 0.
    * ``F`` (float) is taken as [0, 1] when its maximum is <= 1, else as [0, 255] and clipped.
      NaN becomes 0.
    * Everything else (1, L, P, CMYK, YCbCr, RGBX, LAB, HSV, ...) uses Pillow's conversion.

    Colour profiles are not looked at here: :func:`to_srgb` converts them first. An image that is
    already RGB is returned as is (no copy). Raises ValueError for a mode Pillow cannot convert.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if _has_transparency(img):
        rgba = _unpremultiply_la(img).convert("RGBA") if mode == "La" else img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_WHITE, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in _UINT16_MODES:
        arr = np.asarray(img).astype(np.uint32)
        return _from_uint8((arr * 255 + 32767) // 65535)
    if mode == "I":
        arr = np.asarray(img)
        peak = int(arr.max()) if arr.size else 0
        return _from_uint8(_scale_to_uint8(arr, 65535 if peak <= 65535 else peak))
    if mode == "F":
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=np.inf, neginf=0.0)
        finite = arr[np.isfinite(arr)]
        if finite.size == 0 or float(finite.max()) <= 1.0:
            arr = arr * 255.0
        return _from_uint8(np.rint(np.clip(arr, 0.0, 255.0)))
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ValueError(f"unsupported image mode {mode!r}") from exc


# ---------------------------------------------------------------------------------------------------------
# Colour management
# ---------------------------------------------------------------------------------------------------------

RENDERING_INTENT = ImageCms.Intent.RELATIVE_COLORIMETRIC
"""How embedded profiles are converted to sRGB. Relative colorimetric keeps every colour that sRGB can
show exactly and clips the rest, which is what colour-managed browsers and photo viewers do, i.e. what
the person saw when judging. For matrix profiles (Adobe RGB, Display P3, camera profiles: nearly every
photo) lcms has no perceptual table and the intents give the same pixels; only LUT profiles (CMYK print
profiles) differ, where perceptual would also shift in-gamut colours."""

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# Profile colour space -> the 8-bit Pillow mode its pixels come in.
_SPACE_MODES = {"RGB": "RGB", "GRAY": "L", "CMYK": "CMYK", "LAB": "LAB"}
_MODE_NAMES = {"RGB": "RGB", "L": "greyscale", "CMYK": "CMYK", "LAB": "Lab"}


def _is_identity(transform: ImageCms.ImageCmsTransform, mode: str) -> bool:
    """Whether an RGB or grey -> sRGB transform moves no value by more than one level (an sRGB profile
    by another name): such files keep their stored pixels, so tagged and untagged copies are identical."""
    if mode == "L":
        grid = np.arange(256, dtype=np.uint8).reshape(1, -1)
        want = np.repeat(grid[..., None], 3, axis=-1)
    else:
        levels = np.linspace(0, 255, 18).round().astype(np.uint8)
        want = grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(1, -1, 3)
    out = np.asarray(transform.apply(Image.fromarray(grid, mode)), dtype=np.int16)
    return int(np.abs(out - want).max()) <= 1


@functools.lru_cache(maxsize=32)
def _profile_transform(icc: bytes) -> tuple[ImageCms.ImageCmsTransform | None, str, str | None]:
    """``(transform to sRGB or None if it would change nothing, input mode, problem or None)``."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space.strip().upper()
    except Exception as exc:  # noqa: BLE001 - lcms reports garbage in several ways
        return None, "", f"embedded colour profile is unreadable ({one_line(exc)}); colours used as stored"
    mode = _SPACE_MODES.get(space)
    if mode is None:
        return None, "", f"embedded colour profile is for {space or 'unknown'} data; colours used as stored"
    try:
        transform = ImageCms.buildTransform(
            profile, _SRGB, mode, "RGB", RENDERING_INTENT, flags=ImageCms.Flags.NOCACHE
        )
    except Exception as exc:  # noqa: BLE001
        return None, mode, f"embedded colour profile is unusable ({one_line(exc)}); colours used as stored"
    if mode in ("RGB", "L") and _is_identity(transform, mode):
        return None, mode, None
    return transform, mode, None


def _split_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    if img.mode == "La":
        img = _unpremultiply_la(img)
    elif img.mode == "RGBa":
        img = img.convert("RGBA")
    elif img.mode in ("P", "PA") or (img.mode in ("L", "RGB", "1") and "transparency" in img.info):
        img = img.convert("RGBA") if _has_transparency(img) else img.convert("RGB")
    if img.mode in ("RGBA", "LA"):
        return img.convert(img.mode[:-1]), img.getchannel("A")
    return img, None


def _colour_part(img: Image.Image, mode: str) -> tuple[Image.Image, Image.Image | None] | None:
    """The pixels in the profile's 8-bit mode plus any alpha; None when they are not in that space."""
    colour, alpha = _split_alpha(img)
    if mode == "RGB" and colour.mode in ("RGB", "RGBX"):
        return colour.convert("RGB"), alpha
    if mode == "L" and colour.mode in ("1", "L", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"):
        return to_rgb(colour).getchannel("R"), alpha  # 16-bit and float scaled as to_rgb does
    if colour.mode == mode:
        return colour, alpha
    return None


def _convert_profile(img: Image.Image, notes: list[str]) -> Image.Image | None:
    """``img`` converted to sRGB (RGB or RGBA) by its embedded profile; None if there is nothing to do."""
    icc = img.info.get("icc_profile")
    if not icc:
        return None
    transform, mode, problem = _profile_transform(bytes(icc))
    if problem:
        notes.append(problem)
    if transform is None:
        return None
    parts = _colour_part(img, mode)
    if parts is None:
        notes.append(
            f"embedded colour profile is for {_MODE_NAMES[mode]} data but the image is {img.mode}; "
            "colours used as stored"
        )
        return None
    colour, alpha = parts
    out = transform.apply(colour)
    out.info.pop("icc_profile", None)
    if alpha is not None:
        out.putalpha(alpha)
    return out


def _srgb(img: Image.Image, notes: list[str]) -> Image.Image:
    converted = _convert_profile(img, notes)
    out = to_rgb(converted if converted is not None else img)
    if out is not img:
        out.info.pop("icc_profile", None)  # the pixels are sRGB now: converting again would be wrong
    return out


def to_srgb(img: Image.Image) -> Image.Image:
    """Convert an image to 8-bit RGB in sRGB, the colour space the models were trained on.

    An embedded ICC profile (``img.info["icc_profile"]``: Adobe RGB, Display P3, camera, grey and CMYK
    profiles) is converted with lcms at :data:`RENDERING_INTENT`; then :func:`to_rgb` handles the mode.
    The result carries no profile, so converting twice is harmless. A profile that is unreadable, for
    another colour space than the pixels, or already sRGB leaves the stored colours as they are (the
    first two with a logged one-line note). ``img`` is not modified; an RGB image without a profile is
    returned as is. Raises ValueError for a mode Pillow cannot convert.
    """
    notes: list[str] = []
    out = _srgb(img, notes)
    _report(_source(img), notes)
    return out


# ---------------------------------------------------------------------------------------------------------
# Notes
# ---------------------------------------------------------------------------------------------------------


def _source(img: Image.Image) -> str:
    return getattr(img, "filename", "") or "<image in memory>"


def _report(source: str | os.PathLike[str], notes: list[str], img: Image.Image | None = None) -> None:
    """Log each note once as ``"<file>: <note>"`` and list them in ``img.info["piaa_notes"]``."""
    lines = [f"{where(source)}: {one_line(note)}" for note in dict.fromkeys(notes)]
    for line in lines:
        log.warning("%s", line)
    if img is not None and lines:
        img.info["piaa_notes"] = [*img.info.get("piaa_notes", []), *lines]


@contextlib.contextmanager
def _warnings_as_notes(notes: list[str]):
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


def _open_pillow(p: Path, kind: str | None, max_pixels: int | None, draft: tuple[int, int] | None):
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
        preview = _open_preview(p, img, draft, orientation) if EMBEDDED_PREVIEWS else None
        if preview is not None:
            img.close()
            return preview
        img.draft("RGB", draft)
    with img:
        img.load()
    return img


# ---------------------------------------------------------------------------------------------------------
# Embedded previews
# ---------------------------------------------------------------------------------------------------------

EMBEDDED_PREVIEWS = False
"""Whether draft decoding may take a JPEG's embedded camera preview (an MPF "Large Thumbnail") instead of
the photo: 3.5 times the throughput for 24-MP camera JPEGs, but scores move. Measured with
``benchmarks/bench_throughput.py``'s camera JPEGs (24 MP, 1620x1080 preview): by 0.011 on average and
up to 0.037 against the photo's own draft decoding, which is itself up to 0.022 from a full-resolution
decode (the preview: up to 0.038). That is over the 0.02 the project accepts as "the same score", so it
is off unless asked for (:func:`embedded_previews`, ``piaa score --previews``)."""

PREVIEW_FACTOR = 2
"""A preview is used when it is at least this many times the requested ``draft_size`` in both
dimensions, and it is decoded (DCT-scaled) to no less than this many times the request: scaling it down
to the request itself moved scores by up to 0.07."""


@contextlib.contextmanager
def embedded_previews(on: bool = True) -> Iterator[None]:
    """Let :func:`load_image` use embedded camera previews (:data:`EMBEDDED_PREVIEWS`) while the block
    runs: a process-wide setting, so that decode threads and (forked) decode processes see it."""
    global EMBEDDED_PREVIEWS
    before, EMBEDDED_PREVIEWS = EMBEDDED_PREVIEWS, on
    try:
        yield
    finally:
        EMBEDDED_PREVIEWS = before


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


def _open_preview(
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


def load_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
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
    (sizes are meant upright, i.e. after EXIF orientation). With :func:`embedded_previews` on, a JPEG
    carrying a camera preview (an MPF "Large Thumbnail") at least :data:`PREVIEW_FACTOR` x ``draft_size``
    with the photo's aspect ratio is decoded from that preview instead. Other formats ignore
    ``draft_size``, except RAW (it picks the preview). Callers still resize to their exact input size
    afterwards. Raises ValueError for a malformed ``draft_size``.
    """
    draft = _check_draft_size(draft_size)
    p = Path(path)
    notes: list[str] = []
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
        with _warnings_as_notes(notes):
            if _is_raw(p, kind):
                img = load_raw(p, max_pixels=max_pixels, draft_size=draft)
            else:
                img = _open_pillow(p, kind, max_pixels, draft)
            _apply_orientation(img, notes)
            out = _srgb(img, notes)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        match = _PILLOW_BOMB_RE.search(str(exc))
        limit = match.group(1) if match else "Image.MAX_IMAGE_PIXELS x 2"
        reason = f"image too large (over Pillow's decompression-bomb limit of {limit} pixels)"
        raise ImageError(p, reason) from exc
    except UnidentifiedImageError as exc:
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
    _report(p, notes, out)
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
    source = _source(image)
    notes: list[str] = []
    try:
        with _warnings_as_notes(notes):
            image.load()
            if _orientation(image) != 1:
                turned = ImageOps.exif_transpose(image)  # a copy: the caller's image stays as it is
                if turned is not None:
                    image = turned
            out = _srgb(image, notes)
    except (OSError, SyntaxError, EOFError) as exc:
        raise ImageError(source, f"truncated or corrupt image data ({one_line(exc)})") from exc
    _report(source, notes, out if out is not image else None)
    return out
