"""Which files are images, the errors about them, and the folder walk that finds them.

A file is judged by its content, not its name: phones and cameras write ``.HEIC``, ``.avif``, ``.jfif``
and RAW files, and photos get renamed (a JPEG called ``.png``). The walk never drops a file silently:
each file it meets is either yielded or reported as skipped with its reason.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from PIL import Image

from piaa.errors import ImageError, one_line, where

__all__ = [
    "HEIF_AVAILABLE",
    "IMAGE_EXTENSIONS",
    "RAW_EXTENSIONS",
    "FailureLog",
    "ImageError",
    "iter_image_files",
    "sniff_format",
]

log = logging.getLogger("piaa.data.images")


# ---------------------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------------------


def _register_heif() -> bool:
    """Let Pillow open HEIC/HEIF (iPhones' default format) through pillow-heif, when it is installed."""
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - a hard dependency; a broken install still reads the rest
        return False
    pillow_heif.register_heif_opener()
    return True


HEIF_AVAILABLE: bool = _register_heif()
"""Whether HEIC/HEIF files can be decoded (pillow-heif installed and registered with Pillow)."""

RAW_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".3fr", ".arw", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".gpr", ".iiq", ".kdc", ".mef",
        ".mos", ".mrw", ".nef", ".nrw", ".orf", ".pef", ".raf", ".raw", ".rw2", ".rwl", ".sr2", ".srf",
        ".srw", ".x3f",
    }
)  # fmt: skip
"""Camera RAW suffixes (lower case), decoded with rawpy (LibRaw) rather than Pillow."""

# Pillow registers these, but they are not photos: video, scientific-data stubs that need an external
# handler, vector/PostScript formats that need Ghostscript or Windows, and bare metadata (IPTC).
_NOT_PHOTOS = frozenset(
    {".mpg", ".mpeg", ".h5", ".hdf", ".grib", ".bufr", ".wmf", ".emf", ".eps", ".ps", ".iim"}
)


def _pillow_extensions() -> frozenset[str]:
    readable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    readable.add(".mpo")  # multi-picture JPEGs from stereo and some phone cameras: the JPEG plugin opens them
    if not HEIF_AVAILABLE:  # still taken by the walk, so the load names the missing package
        readable |= {".heic", ".heif", ".hif"}
    return frozenset(readable - _NOT_PHOTOS)


IMAGE_EXTENSIONS: frozenset[str] = _pillow_extensions() | RAW_EXTENSIONS
"""Every suffix (lower case) a folder walk takes by name: all Pillow can read (with pillow-heif
registered: JPEG, PNG, GIF, WebP, TIFF, BMP, HEIC/HEIF, AVIF, JPEG 2000, ...) plus :data:`RAW_EXTENSIONS`.
Files with other suffixes are taken too when their content is an image (:func:`sniff_format`)."""

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"heif"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_RAW_MAGIC = (b"FUJIFILMCCD-RAW", b"IIRO", b"IIRS", b"MMOR", b"IIU\x00")


def sniff_format(head: bytes) -> str | None:
    """The image format that a file's first bytes (at least 16) announce, or None.

    Returns ``"JPEG"``, ``"PNG"``, ``"GIF"``, ``"WEBP"``, ``"BMP"``, ``"TIFF"`` (which includes DNG and
    most TIFF-based RAW files), ``"HEIF"``, ``"AVIF"``, ``"JPEG2000"``, ``"JXL"`` or ``"RAW"`` (RAW
    formats with their own signature: Fujifilm RAF, Canon CR3/CRW, Olympus ORF, Panasonic RW2).
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM" and len(head) >= 14:
        return "BMP"
    if head.startswith(_RAW_MAGIC) or head[6:14] == b"HEAPCCDR":  # RAF, ORF, RW2; CRW
        return "RAW"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS:
            return "AVIF"
        if brand in _HEIF_BRANDS:
            return "HEIF"
        if brand == b"crx ":
            return "RAW"
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return "JPEG2000"
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "JXL"
    return None


def read_head(path: str | os.PathLike[str], size: int = 32) -> bytes:
    """The first ``size`` bytes of a file (raises OSError)."""
    with open(path, "rb") as f:
        return f.read(size)


# ---------------------------------------------------------------------------------------------------------
# Finding files
# ---------------------------------------------------------------------------------------------------------

Skipped = Callable[[Path, str], None]
"""Told about each file or folder a walk does not yield: ``(path, reason)``."""


def _file_key(path: Path) -> tuple[int, int] | str:
    """Identity of a file, so that the same file reached twice (symlink, ``a/../a``) is yielded once."""
    try:
        st = path.stat()
        return (st.st_dev, st.st_ino)
    except OSError:
        return os.path.abspath(path)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return one_line(exc.strerror or str(exc))


SIDECAR_SUFFIXES = (
    ".xmp",
)  # metadata sidecars (darktable, Lightroom, piaa cull --xmp): walked past silently


def _classify(path: Path) -> str | None:
    """None if ``path`` (a non-hidden, non-folder entry) is to be yielded, else why it is skipped."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "broken symbolic link" if path.is_symlink() else "no such file (removed during the walk)"
    except OSError as exc:
        return f"cannot read ({_os_reason(exc)})"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return None  # taken by name; load_image reports an empty or broken one
    try:
        head = read_head(path)
    except OSError as exc:
        return f"cannot read ({_os_reason(exc)})"
    if sniff_format(head) is not None:
        return None
    return "not an image (unrecognised format)"


def _walk(
    directory: Path, recursive: bool, seen_dirs: set[tuple[int, int] | str], skipped: Skipped
) -> Iterator[Path]:
    """Depth-first, entries in name order (a folder's contents come where its name sorts)."""
    key = _file_key(directory)
    if key in seen_dirs:  # symlink loop or a folder listed twice
        return
    seen_dirs.add(key)
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        skipped(directory, f"cannot list folder ({_os_reason(exc)})")
        return
    for name in names:
        if name.startswith("."):  # hidden by convention (.DS_Store, ._IMG_0001.JPG, .thumbnails/)
            continue
        if name.lower().endswith(SIDECAR_SUFFIXES):  # a photo's metadata beside it, not a bad photo
            continue
        child = directory / name
        if child.is_dir():
            if recursive:
                yield from _walk(child, recursive, seen_dirs, skipped)
            else:
                skipped(child, "folder (not walked: not recursive)")
            continue
        reason = _classify(child)
        if reason is None:
            yield child
        else:
            skipped(child, reason)


def _skipped_callback(skipped: FailureLog | Skipped | None) -> Skipped:
    if skipped is None:
        return lambda path, reason: log.debug("%s: skipped: %s", where(path), reason)
    if isinstance(skipped, FailureLog):
        return skipped.add
    return skipped


def iter_image_files(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    recursive: bool = True,
    skipped: FailureLog | Skipped | None = None,
) -> Iterator[Path]:
    """Expand files and folders into the image files to process, in a deterministic order.

    Folders are walked (recursively unless ``recursive=False``) in sorted name order, ignoring hidden
    entries (names starting with '.'). A file is yielded when its suffix is in :data:`IMAGE_EXTENSIONS`
    (case-insensitive) or when its first bytes are an image signature (:func:`sniff_format`: a photo
    with no or an odd suffix). Every other entry met is passed to ``skipped`` with its reason
    (``notes.txt: not an image (unrecognised format)``, a folder that cannot be listed, a broken link,
    a sub-folder when not recursive): give a :class:`FailureLog` or a ``(path, reason)`` callback to
    list them for the user; without one they go to the debug log. A file named explicitly is yielded
    whatever its suffix or content: the user asked for it, and :func:`load_image` says clearly if it is
    not an image. A file reached twice is yielded once, the first time.

    All paths are checked up front, so a typo raises ``ImageError(path, "no such file or directory")``
    at the call, before any work is done, and so does a named folder that cannot be listed
    (``"cannot list folder (permission denied)"``); a sub-folder that cannot be listed is skipped.
    """
    if isinstance(paths, str | os.PathLike):  # one path, not an iterable of its characters
        paths = [paths]
    roots = [Path(p) for p in paths]
    for root in roots:
        if not root.exists():
            raise ImageError(root, "no such file or directory")
        if root.is_dir():
            try:
                os.listdir(root)
            except OSError as exc:
                raise ImageError(root, f"cannot list folder ({_os_reason(exc)})") from exc
    return _iter_image_files(roots, recursive, _skipped_callback(skipped))


def _iter_image_files(roots: list[Path], recursive: bool, skipped: Skipped) -> Iterator[Path]:
    seen_files: set[tuple[int, int] | str] = set()
    seen_dirs: set[tuple[int, int] | str] = set()
    for root in roots:
        if root.is_dir():
            candidates: Iterable[Path] = _walk(root, recursive, seen_dirs, skipped)
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
    """Per-file failures of a batch job: one bad file is reported at the end instead of aborting the run.

    Also the ``skipped`` sink of :func:`iter_image_files` (it is a ``(path, reason)`` callable).
    """

    def __init__(self) -> None:
        self._entries: list[tuple[Path, str]] = []

    def add(self, path: str | os.PathLike[str], reason: str | BaseException) -> None:
        """Record that ``path`` was skipped; ``reason`` may be a message or the exception that was caught."""
        if isinstance(reason, ImageError):
            text = reason.reason
        elif isinstance(reason, BaseException):
            message = one_line(str(reason))
            text = f"{type(reason).__name__}: {message}" if message else type(reason).__name__
        else:
            text = one_line(reason)
        self._entries.append((Path(path), text))

    __call__ = add

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[tuple[Path, str]]:
        return iter(list(self._entries))

    def lines(self) -> list[str]:
        """One ``"<path>: <reason>"`` line per failure, in the order they were added."""
        return [f"{where(path)}: {reason}" for path, reason in self._entries]

    def summary(self, noun: str = "image", what: str = "skipped") -> str:
        """Human report such as ``"2 images skipped:"`` (``what`` befell them) plus one indented line
        each; ``""`` if none."""
        if not self._entries:
            return ""
        count = len(self._entries)
        header = f"{count} {noun if count == 1 else noun + 's'} {what}:"
        return "\n".join([header, *(f"  {line}" for line in self.lines())])
