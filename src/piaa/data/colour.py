"""Colour: every pixel piaa sees is 8-bit sRGB RGB, whatever mode and ICC profile a photo carries.

Two steps, always in this order: :func:`to_srgb` converts pixels from an embedded ICC profile (Adobe
RGB, Display P3, camera, grey and CMYK profiles) to sRGB with LittleCMS, as a colour-managed viewer
shows them; :func:`to_rgb` turns any mode (alpha, 16-bit, float, palette...) into 8-bit RGB. Problems
that do not cost the image (an unusable profile) become notes, see :mod:`piaa.data.images`.
"""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, ImageCms

from piaa.data.notes import report_notes, source_name
from piaa.errors import one_line

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


def srgb_with_notes(img: Image.Image, notes: list[str]) -> Image.Image:
    """sRGB, then 8-bit RGB; what went wrong but kept the image is appended to ``notes``."""
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
    out = srgb_with_notes(img, notes)
    report_notes(source_name(img), notes)
    return out
