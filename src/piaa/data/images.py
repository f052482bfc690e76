"""Robust image loading shared by the whole project.

Photo collections are messy: wrong extensions, half-copied files, 16-bit scans, CMYK
exports, phone pictures stored sideways with an EXIF orientation tag, and the odd
decompression bomb. Everything that reads pixels goes through :func:`load_image`, so
every part of the project sees the same thing: a fully decoded, upright, 8-bit RGB image,
or one :class:`ImageError` whose message is a single line naming the file.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "FailureLog",
    "ImageError",
    "iter_image_files",
    "load_image",
    "to_rgb",
]

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"})
"""Suffixes (lower case) that a directory walk picks up; explicit files are taken whatever their name."""

MAX_PIXELS: int = 100_000_000
"""Default decompression-bomb guard: 100 MP is well above any camera yet far below what exhausts memory."""

_ORIENTATION_TAG = 0x0112
_WHITE = (255, 255, 255)


def _one_line(text: str) -> str:
    """Collapse whitespace so that messages from libraries never break a log line."""
    return " ".join(str(text).split())


class ImageError(Exception):
    """A file that cannot be used as an image; ``str()`` is one line, ``"<path>: <reason>"``.

    Batch jobs print these instead of tracebacks, so the message must say which file and why.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(path, reason)  # keeps the exception picklable (DataLoader workers)
        self.path: Path = Path(path)
        self.reason: str = _one_line(reason)

    def __str__(self) -> str:
        path = str(self.path).replace("\r", "\\r").replace("\n", "\\n")  # keep odd names on one line
        return f"{path}: {self.reason}"


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

    An image that is already RGB is returned as is (no copy). Raises ValueError for a mode
    Pillow cannot convert.
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


def _apply_orientation(img: Image.Image) -> None:
    """Rotate/flip ``img`` upright in place; leave it as stored if the EXIF block is corrupt."""
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(img, in_place=True)


def _check_draft_size(draft_size: tuple[int, int] | None) -> tuple[int, int] | None:
    if draft_size is None:
        return None
    if len(draft_size) != 2 or any(int(v) != v or v < 1 for v in draft_size):
        raise ValueError(f"draft_size must be two positive integers, got {draft_size!r}")
    return int(draft_size[0]), int(draft_size[1])


def load_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = MAX_PIXELS,
    draft_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Open, fully decode, orient upright and convert one image file to 8-bit RGB.

    Decoding happens here, not lazily later, so a truncated or corrupt file fails at the
    call site with an :class:`ImageError` naming it instead of deep inside a batch.

    ``max_pixels`` (None: no limit of ours) is checked against the header's size before any
    pixel is decoded. Pillow's own warning threshold (``Image.MAX_IMAGE_PIXELS``) is silenced
    for this call, since ``max_pixels`` is the limit that counts; Pillow's hard error (at twice
    that) still applies and is reported as an ImageError too.

    ``draft_size=(width, height)`` lets JPEG decoding use DCT scaling (1/2, 1/4, 1/8), which is
    several times faster for big photos; the result is never smaller than ``draft_size`` in
    either dimension (sizes are meant upright, i.e. after EXIF orientation). Other formats
    ignore it. Callers still resize to their exact input size afterwards.
    """
    draft = _check_draft_size(draft_size)
    p = Path(path)
    try:
        if not p.exists():
            raise ImageError(p, "no such file")
        if p.is_dir():
            raise ImageError(p, "is a directory, not an image file")
        if not p.is_file():
            raise ImageError(p, "not a regular file")
        if p.stat().st_size == 0:
            raise ImageError(p, "file is empty")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(p)
        with img:
            width, height = img.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageError(p, f"image too large ({width}x{height} pixels, limit {max_pixels})")
            if draft is not None and isinstance(img, JpegImagePlugin.JpegImageFile):
                if _orientation(img) in (5, 6, 7, 8):  # stored sideways: the request is for upright size
                    draft = (draft[1], draft[0])
                img.draft("RGB", draft)
            img.load()
            _apply_orientation(img)
            return to_rgb(img)
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
        raise ImageError(p, f"truncated or corrupt image data ({_one_line(str(exc))})") from exc
    except (OSError, SyntaxError, EOFError) as exc:
        detail = _one_line(str(exc))
        reason = "truncated or corrupt image data"
        raise ImageError(p, f"{reason} ({detail})" if detail else reason) from exc
    except Exception as exc:  # decoders raise all sorts (struct.error, IndexError, ...) on garbage
        raise ImageError(p, f"cannot decode image ({type(exc).__name__}: {_one_line(str(exc))})") from exc


# ---------------------------------------------------------------------------------------------------------
# Finding files
# ---------------------------------------------------------------------------------------------------------


def _file_key(path: Path) -> tuple[int, int] | str:
    """Identity of a file, so that the same file reached twice (symlink, ``a/../a``) is yielded once."""
    try:
        st = path.stat()
        return (st.st_dev, st.st_ino)
    except OSError:
        return os.path.abspath(path)


def _walk(directory: Path, recursive: bool, seen_dirs: set[tuple[int, int] | str]) -> Iterator[Path]:
    """Depth-first, entries in name order (a folder's contents come where its name sorts)."""
    key = _file_key(directory)
    if key in seen_dirs:  # symlink loop or a folder listed twice
        return
    seen_dirs.add(key)
    try:
        names = sorted(os.listdir(directory))
    except PermissionError as exc:
        raise ImageError(directory, "permission denied (cannot list directory)") from exc
    except OSError as exc:
        raise ImageError(directory, f"cannot list directory ({_one_line(exc.strerror or str(exc))})") from exc
    for name in names:
        if name.startswith("."):
            continue
        child = directory / name
        if child.is_dir():
            if recursive:
                yield from _walk(child, recursive, seen_dirs)
        elif child.suffix.lower() in IMAGE_EXTENSIONS and child.is_file():
            yield child


def iter_image_files(paths: Iterable[str | os.PathLike[str]], *, recursive: bool = True) -> Iterator[Path]:
    """Expand files and folders into the image files to process, in a deterministic order.

    Folders are walked (recursively unless ``recursive=False``) in sorted name order,
    skipping hidden entries (names starting with '.') and keeping files whose suffix is in
    :data:`IMAGE_EXTENSIONS` (case-insensitive). A file named explicitly is yielded whatever
    its suffix: the user asked for it, and :func:`load_image` will say clearly if it is not an
    image. A file reached twice is yielded once, the first time.

    All paths are checked up front, so a typo raises ``ImageError(path, "no such file or
    directory")`` at the call, before any work is done.
    """
    if isinstance(paths, str | os.PathLike):  # one path, not an iterable of its characters
        paths = [paths]
    roots = [Path(p) for p in paths]
    for root in roots:
        if not root.exists():
            raise ImageError(root, "no such file or directory")
    return _iter_image_files(roots, recursive)


def _iter_image_files(roots: list[Path], recursive: bool) -> Iterator[Path]:
    seen_files: set[tuple[int, int] | str] = set()
    seen_dirs: set[tuple[int, int] | str] = set()
    for root in roots:
        if root.is_dir():
            candidates: Iterable[Path] = _walk(root, recursive, seen_dirs)
        elif root.exists():
            candidates = (root,)
        else:  # vanished since the up-front check
            raise ImageError(root, "no such file or directory")
        for path in candidates:
            key = _file_key(path)
            if key not in seen_files:
                seen_files.add(key)
                yield path


# ---------------------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------------------


class FailureLog:
    """Per-file failures of a batch job: one bad file is reported at the end instead of aborting the run."""

    def __init__(self) -> None:
        self._entries: list[tuple[Path, str]] = []

    def add(self, path: str | os.PathLike[str], reason: str | BaseException) -> None:
        """Record that ``path`` was skipped; ``reason`` may be a message or the exception that was caught."""
        if isinstance(reason, ImageError):
            text = reason.reason
        elif isinstance(reason, BaseException):
            message = _one_line(str(reason))
            text = f"{type(reason).__name__}: {message}" if message else type(reason).__name__
        else:
            text = _one_line(reason)
        self._entries.append((Path(path), text))

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[tuple[Path, str]]:
        return iter(list(self._entries))

    def lines(self) -> list[str]:
        """One ``"<path>: <reason>"`` line per failure, in the order they were added."""
        return [_one_line(f"{path}: {reason}") for path, reason in self._entries]

    def summary(self, noun: str = "image") -> str:
        """Human report such as ``"2 images skipped:"`` plus one indented line each; ``""`` if none."""
        if not self._entries:
            return ""
        count = len(self._entries)
        header = f"{count} {noun if count == 1 else noun + 's'} skipped:"
        return "\n".join([header, *(f"  {line}" for line in self.lines())])
