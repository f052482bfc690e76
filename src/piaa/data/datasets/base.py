"""What every benchmark loader shares: the rated-album type, its error, and the parsing helpers.

Common rules
------------

* A loader returns ``list[RatedAlbum]`` sorted by user id in natural order (``user2`` before
  ``user10``; plain string order otherwise). Image paths are absolute. Within an album, images keep the
  order of the label file (REAL-CUR score folders: natural order of file names, so the order never
  leaks the scores).
* Missing image files are not an error at load time (a data set is often used partly downloaded or with
  features cached elsewhere); :func:`check_images` lists them when you need all of them.
* Any malformed input is a :class:`DatasetError` whose message is one line, ``"{path}:{line}: problem"``
  (``"{path}: problem"`` when no single line is at fault), written by :func:`piaa.errors.file_error`.
* A person who rated the same image more than once gets that image once, with the mean of their
  ratings (it is one photo with one opinion; the ratings are already on the 1-10 scale when averaged).
* Files are read as UTF-8; a byte-order mark is ignored.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from piaa.errors import DatasetError, file_error

__all__ = ["DatasetError", "RatedAlbum", "StrPath", "check_images"]

StrPath = str | PathLike[str]


@dataclass(eq=False)
class RatedAlbum:
    """One person's photos and their ratings on piaa's 1-10 scale (``scores[i]`` rates ``images[i]``).

    The one rated-album type: loaders return it, and the benchmark's
    :class:`~piaa.evaluation.worlds.PooledAlbum` extends it with feature-pool rows.
    Raises ``ValueError`` when ``images`` and ``scores`` differ in length.
    """

    user: str
    images: list[Path]
    scores: np.ndarray = field(repr=False)  # (N,) float64, 1-10

    def __post_init__(self) -> None:
        # One shape for every loader, checked here rather than trusted at each use.
        self.images = [Path(p) for p in self.images]
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if len(self.images) != self.scores.shape[0]:
            raise ValueError(
                f"{type(self).__name__} {self.user!r}: {len(self.images)} images but "
                f"{self.scores.shape[0]} scores"
            )

    def __len__(self) -> int:
        return len(self.images)


def check_images(albums: Iterable[RatedAlbum]) -> list[str]:
    """Image paths that are not existing files, each once, in album order (run before evaluating)."""
    missing: list[str] = []
    seen: set[Path] = set()
    for album in albums:
        for path in album.images:
            if path not in seen:
                seen.add(path)
                if not path.is_file():
                    missing.append(str(path))
    return missing


# -------------------------------------------------------------------- parsing helpers, for the loaders


def natural_key(text: str) -> tuple[Any, ...]:
    """``user2`` < ``user10``. Splitting on digit runs puts text at even and numbers at odd positions."""
    parts = re.split(r"(\d+)", text)
    return (*(int(p) if i % 2 else p for i, p in enumerate(parts)), text)


def parse_score(text: str, path: Path, line: int, low: float = 1.0, high: float = 5.0) -> float:
    """A finite number in [low, high], else a :class:`DatasetError` naming ``path:line``."""
    try:
        value = float(text)
    except ValueError:
        raise file_error(DatasetError, path, f"score {text!r} is not a number", line) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise file_error(DatasetError, path, f"score {text!r} is outside [{low:g}, {high:g}]", line)
    return value


class Ratings:
    """Collects (user, image, score) in file order, averaging repeats of the same user and image."""

    def __init__(self) -> None:
        self._by_user: dict[str, dict[Path, list[float]]] = {}

    def add(self, user: str, image: Path, score: float) -> None:
        self._by_user.setdefault(user, {}).setdefault(image, []).append(score)

    def users(self) -> set[str]:
        return set(self._by_user)

    def albums(self, users: Iterable[str] | None = None) -> list[RatedAlbum]:
        chosen = self._by_user.keys() if users is None else users
        out = []
        for user in sorted(chosen, key=natural_key):
            ratings = self._by_user[user]
            out.append(RatedAlbum(user, list(ratings), np.array([np.mean(s) for s in ratings.values()])))
        return out


def existing_file(path: StrPath) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise file_error(DatasetError, p, "no such file")
    return p.resolve()


def existing_dir(path: StrPath) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise file_error(DatasetError, p, "no such folder")
    return p.resolve()


def visible(p: Path) -> bool:
    """Not hidden and not archive debris (``.DS_Store``, ``__MACOSX``)."""
    return not p.name.startswith((".", "_"))


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank, non-comment lines, stripped, with their 1-based numbers."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise file_error(DatasetError, path, f"not UTF-8 text ({exc.reason})") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


def csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Rows of a comma-separated file, fields stripped, blank rows skipped, with their line numbers."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f, skipinitialspace=True)
            start = 1
            for row in reader:
                fields = [v.strip() for v in row]
                if any(fields):
                    yield start, fields
                start = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise file_error(DatasetError, path, f"not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise file_error(DatasetError, path, f"not valid CSV ({exc})") from None
