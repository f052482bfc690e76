"""The album as the web app sees it: a fixed list of image files, looked up only by exact name.

The server never turns a request path into a file path. A name is served only if it is one of the
album-relative names listed at startup (so ``..``, absolute paths, encoded variants and backslashes
simply are not names), and only if the file still resolves inside the album (a symlink may have been
re-pointed since). Photos are sent as downscaled JPEG copies: a 24-megapixel original would take a
second to load; a 1024-pixel copy is instant and shows everything a side-by-side choice needs.
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from pathlib import Path
from urllib.parse import quote

from PIL import Image

from piaa.data.images import ImageError, iter_image_files, load_image

DISPLAY_SIDE = 1024
THUMB_SIDE = 256
CACHE_BYTES = 64 * 1024 * 1024


class AlbumImageNotFound(LookupError):
    """Not an image of this album (whatever the request tried)."""


class ServedAlbum:
    """The album the web app serves: image files under ``root`` (recursively, hidden files skipped),
    by album-relative POSIX name."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: album folder not found")
        self._real_root = self.root.resolve()
        self.files: dict[str, Path] = {}
        for path in iter_image_files([self.root]):
            if self._inside(path):  # symlinks leading out of the album are not part of it
                self.files[path.relative_to(self.root).as_posix()] = path
        if len(self.files) < 2:
            raise ValueError(f"{self.root}: the album needs at least two images, found {len(self.files)}")
        self.names = list(self.files)
        self._cache: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._cache_size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.files)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.files

    def _inside(self, path: Path) -> bool:
        try:
            return path.resolve().is_relative_to(self._real_root) and path.is_file()
        except OSError:
            return False

    def path(self, name: str) -> Path:
        """The file behind an album name, or ``AlbumImageNotFound``."""
        path = self.files.get(name)
        if path is None or not self._inside(path):
            raise AlbumImageNotFound(name)
        return path

    @staticmethod
    def url(name: str, thumb: bool = False) -> str:
        return f"/img/{quote(name, safe='/')}" + ("?size=thumb" if thumb else "")

    def jpeg(self, name: str, side: int = DISPLAY_SIDE) -> bytes:
        """A JPEG copy at most ``side`` pixels on its long edge, upright (EXIF), cached in memory."""
        path = self.path(name)
        key = (name, side, path.stat().st_mtime_ns)
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
