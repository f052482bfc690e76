"""The album as the web app serves it: image files checked once at startup, looked up only by exact name.

The album is walked like every other command walks a folder (:func:`piaa.data.images.iter_image_files`:
recursive, hidden files skipped, symlinked files and folders followed), so ``collect`` accepts exactly
the photos ``score`` and ``personalize`` accept. Each photo is decoded once at startup; one that cannot
be (truncated, corrupt, not an image) is listed in ``skipped`` with its reason and is never offered,
ranked or served.

Files that are not photos (``notes.txt``, a ``.MOV``) are listed in ``not_photos``, as ``score`` and
``personalize`` list them.

The server never turns a request path into a file path. A name is served only if it is one of the
album-relative names listed at startup (so ``..``, absolute paths, encoded variants and backslashes
simply are not names), and only from the very file recorded at startup: the file is opened once, the
open descriptor's identity (``os.fstat``: device and inode) is checked against the one recorded, and
everything is read through that descriptor (:meth:`ServedAlbum.open`). Checking a path and then
opening it again would race: a symlink flipped between the two served a secret file outside the
album (issue 24). Photos are sent as downscaled JPEG copies: a 24-megapixel
original would take a second to load; a 1024-pixel copy is instant and shows everything a side-by-side
choice needs.
"""

from __future__ import annotations

import io
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from PIL import Image

from piaa.data.images import FailureLog, ImageError, iter_image_files, load_image
from piaa.errors import UsageError
from piaa.preferences import normalize_name

__all__ = ["CACHE_BYTES", "DISPLAY_SIDE", "THUMB_SIDE", "AlbumImageNotFound", "ServedAlbum"]

DISPLAY_SIDE = 1024
THUMB_SIDE = 256
CACHE_BYTES = 64 * 1024 * 1024
CHECK_THREADS = 8  # decoding releases the GIL: a few threads make the startup check several times faster


class AlbumImageNotFound(LookupError):
    """Not an image of this album (whatever the request tried)."""


def _check(path: Path) -> str | None:
    """None if the photo decodes (at display size: DCT scaling keeps this fast), else why not."""
    try:
        load_image(path, draft_size=(DISPLAY_SIDE, DISPLAY_SIDE))
    except ImageError as exc:
        return exc.reason
    except Exception as exc:  # noqa: BLE001 - one odd file must not stop the app from starting
        return f"{type(exc).__name__}: {exc}"
    return None


class ServedAlbum:
    """The album the web app serves: photos under ``root`` that decode, by album-relative POSIX name.

    ``names`` (sorted as walked) are the photos that may be offered; ``files`` maps each to its path;
    ``skipped`` (a ``FailureLog``) lists the image files left out and why. Names are
    ``normalize_name``'d (NFC), so they compare equal to the names in a preference store. Raises
    ``FileNotFoundError`` for a missing folder and ``ValueError`` for fewer than two usable photos.
    """

    def __init__(self, root: str | os.PathLike[str], *, check: bool = True) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: album folder not found")
        found: dict[str, Path] = {}
        self.not_photos = FailureLog()  # files met that are not images (notes.txt, clip.MOV)
        for path in iter_image_files([self.root], skipped=self.not_photos):
            found.setdefault(normalize_name(path.relative_to(self.root).as_posix()), path)
        self.skipped = FailureLog()
        reasons: list[str | None] = [None] * len(found)
        if check and found:
            with ThreadPoolExecutor(min(CHECK_THREADS, os.cpu_count() or 1)) as pool:
                reasons = list(pool.map(_check, found.values()))
        self.files: dict[str, Path] = {}
        self._identity: dict[str, tuple[int, int]] = {}  # name -> (st_dev, st_ino) at startup
        for (name, path), reason in zip(found.items(), reasons, strict=True):
            if reason is None:
                try:
                    st = os.stat(path)
                except OSError as exc:
                    reason = exc.strerror or str(exc)
            if reason is not None:
                self.skipped.add(path, reason)
                continue
            self.files[name] = path
            self._identity[name] = (st.st_dev, st.st_ino)
        if len(self.files) < 2:
            detail = (
                f" ({len(self.skipped)} could not be read: {self.skipped.lines()[0]})" if self.skipped else ""
            )
            raise UsageError(
                f"{self.root}: the album needs at least two images, found {len(self.files)}{detail}"
            )
        self.names = list(self.files)
        self._cache: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._cache_size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.files)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.files

    def skipped_photos(self, log: FailureLog | None = None) -> list[dict[str, str]]:
        """``[{"name", "reason"}]`` for every image file left out at startup (album-relative names), or
        for every entry of ``log`` (``not_photos``: files that are not images)."""
        out = []
        for path, reason in self.skipped if log is None else log:
            out.append({"name": path.relative_to(self.root).as_posix(), "reason": reason})
        return out

    def path(self, name: str) -> Path:
        """The file behind an album name, if it is still the file recorded at startup; else
        ``AlbumImageNotFound``. To read it, use :meth:`open`: a path can change after any check."""
        with self.open(name):
            return self.files[name]

    @contextmanager
    def open(self, name: str) -> Iterator[Path]:
        """Open album photo ``name`` once and yield a path to that open descriptor (``/proc/self/fd/N``
        or ``/dev/fd/N``), after checking that it is the very file recorded at startup (device and
        inode) and a regular file. Whatever reads the yielded path reads that file, however the
        album's links change meanwhile. Raises ``AlbumImageNotFound`` otherwise."""
        path = self.files.get(name)
        if path is None:
            raise AlbumImageNotFound(name)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)  # a FIFO: no wait
        try:
            fd = os.open(path, flags)
        except OSError:
            raise AlbumImageNotFound(name) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != self._identity[name]:
                raise AlbumImageNotFound(name)
            yield _fd_path(fd)
        finally:
            os.close(fd)

    @staticmethod
    def url(name: str, thumb: bool = False) -> str:
        """The page's URL for a photo (``/img/<quoted name>``, ``?size=thumb`` for 256 pixels)."""
        return f"/img/{quote(name, safe='/')}" + ("?size=thumb" if thumb else "")

    def jpeg(self, name: str, side: int = DISPLAY_SIDE) -> bytes:
        """A JPEG copy at most ``side`` pixels on its long edge, upright (EXIF), cached in memory.
        Raises ``AlbumImageNotFound`` for anything not servable (see the module docstring)."""
        with self.open(name) as path:
            key = (name, side, os.stat(path).st_mtime_ns)
            with self._lock:
                data = self._cache.get(key)
                if data is not None:
                    self._cache.move_to_end(key)
                    return data
            try:
                img = load_image(path, draft_size=(side, side))
            except ImageError as exc:
                raise AlbumImageNotFound(name) from exc
        img.thumbnail((side, side), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=88 if side > THUMB_SIDE else 82, optimize=True)
        data = buf.getvalue()
        with self._lock:
            self._cache[key] = data
            self._cache_size += len(data)
            while self._cache_size > CACHE_BYTES and len(self._cache) > 1:
                self._cache_size -= len(self._cache.popitem(last=False)[1])
        return data


def _fd_path(fd: int) -> Path:
    """A path that opens the file behind descriptor ``fd`` itself, not whatever a name points to now."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(folder):
            return Path(folder) / str(fd)
    raise AlbumImageNotFound(f"descriptor {fd}")  # no such file system here: serve nothing rather than race
