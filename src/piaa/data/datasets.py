"""Loaders for the public personalized-aesthetics benchmarks: REAL-CUR, FLICKR-AES and PARA.

Each loader turns a benchmark's own files into one :class:`Album` per person (their photos and their
ratings on piaa's 1-10 scale), so that evaluation code never needs to know which benchmark it runs on.
None of these data sets ships with piaa; the layouts below are what the public releases look like as far
as we could establish, and each section says how sure that is. Fixtures in ``tests/test_datasets.py``
reproduce every layout accepted here.

Common rules
------------

* A loader returns ``list[Album]`` sorted by user id in natural order (``user2`` before ``user10``;
  plain string order otherwise). Image paths are absolute. Within an album, images keep the order of
  the label file (REAL-CUR score folders: natural order of file names, so the order never leaks the
  scores).
* Missing image files are not an error at load time (a data set is often used partly downloaded or with
  features cached elsewhere); :func:`check_images` lists them when you need all of them.
* Any malformed input is a :class:`DatasetError` (a ``ValueError``) whose message is one line,
  ``"{path}:{line}: problem"`` (``"{path}: problem"`` when no single line is at fault).
* A person who rated the same image more than once gets that image once, with the mean of their
  ratings (it is one photo with one opinion; the ratings are already on the 1-10 scale when averaged).
* Files are read as UTF-8; a byte-order mark is ignored.

REAL-CUR (Ren et al., ICCV 2017) -- :func:`load_realcur`
---------------------------------------------------------

14 personal albums of about 200 photos, each rated 1-5 by the album's owner. Scores are **doubled**
(1-5 -> 2-10), as Zhou et al. do to put them on AVA's 1-10 scale; ``3 -> 6.0``. ``root`` holds one
folder per user (the folder name is the user id); hidden folders and those starting with ``_`` (e.g.
``__MACOSX``) and plain files in ``root`` are ignored. Each user folder is read in one of two ways:

a. *Label file* (a common layout for per-user labels; not confirmed against the release): the folder
   contains its images and exactly one label file (``.txt``, ``.csv`` or ``.tsv``). Each line is an
   image file name (relative to the user folder; may include sub-folders) and a score. Lines may be
   separated by a comma, a tab or a semicolon (the first of these that occurs in the line; exactly two
   fields), or else by whitespace (the last whitespace-separated token is the score, so names may
   contain spaces). Blank lines and lines starting with ``#`` are skipped. The first data line is taken
   as a header, and skipped, when its score field is not a number; any later non-numeric score is an
   error. A score must be a number in [1, 5].
b. *Score folders* (the only layout we found in public code that reads the release: images filed in
   sub-folders named by their score): ``root/<user>/<score>/<image>``, where ``<score>`` is a folder
   named by a number in [1, 5] (``1`` .. ``5``). Files with an image suffix (``.jpg .jpeg .png .webp
   .tif .tiff .bmp``, any case) directly inside a score folder are the album; other files, and images
   lying directly in the user folder (they carry no score), are ignored. A non-numeric or out-of-range
   sub-folder is an error.

A folder with a label file is read as (a) even if it also has sub-folders; more than one label file,
or neither a label file nor score folders, is an error.

FLICKR-AES (Ren et al., ICCV 2017) -- :func:`load_flickr_aes`
---------------------------------------------------------------

``FLICKR-AES_image_labeled_by_each_worker.csv``: comma-separated, header ``worker, imagePair, score``
-- in the public file the header names and the values after the first column carry a leading space
(``A1B2C3D4E5F6G7, farm1_262_...jpg, 4``); every field is stripped, header names are matched
case-insensitively, and a file without a header is read in that column order. Images are
``images_root / imagePair`` (the release's ``40K/`` folder). Scores are 1-5 and are **doubled** like
REAL-CUR's (``5 -> 10.0``), so the two Ren et al. benchmarks share one mapping. (This file is certain:
many public loaders read it with exactly these columns.)

The benchmark's test split is 37 workers (the remaining 173 train the generic model). We could not
establish the official 37 worker ids from a source we trust, so piaa ships no such list: pass it.
``workers=`` is ``"all"``; a list of worker ids; a path (``Path``, or any string other than the
keywords) to a text file of worker ids; or ``"test"`` / ``"train"``, which need ``test_workers=`` (a
list or such a file: the official test workers) and give those workers, or all the others. ``"test"`` or
``"train"`` without ``test_workers`` is a :class:`DatasetError` saying so. A worker-id file has one id
per line (the first comma- or whitespace-separated field is used, so a CSV with the id first also
works); blank lines, ``#`` comments and a first line reading ``worker``/``workers``/``worker_id`` are
skipped. A requested worker who has no rating in the CSV is an error (it means the list and the CSV
do not belong together).

PARA (Yang et al., CVPR 2022) -- :func:`load_para`
-------------------------------------------------

The release is ``PARA/imgs/<sessionId>/<imageName>`` plus ``PARA/annotation/PARA-Images.csv`` (the
per-user annotations; also ``PARA-UserInfo.csv`` and the ``PARA-GiaaTrain/Test.csv`` aggregates, which
are not needed here). ``PARA-Images.csv`` is comma-separated with a header whose columns include
``sessionId, imageName, userId, aestheticScore`` followed by the attribute scores (quality,
composition, color, depth of field, content, light, object emphasis, emotion, difficulty, content
preference, willingness to share, scene); only those four columns are read, found by name
(case-insensitively), so column order and extra columns do not matter. (The layout and these column
names are confirmed by the release's README and by public loaders.) ``aestheticScore`` is on 1-5 in
0.5 steps and is mapped **linearly** onto 1-10 as ``1 + (s - 1) * 9 / 4`` (``1 -> 1``, ``3.5 ->
6.625``, ``5 -> 10``); any number in [1, 5] is accepted. Several annotation files may be given; their
rows are pooled.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np

from piaa.data.images import IMAGE_EXTENSIONS

__all__ = [
    "DATASETS",
    "Album",
    "DatasetError",
    "check_images",
    "load_dataset",
    "load_flickr_aes",
    "load_para",
    "load_realcur",
]

StrPath = str | PathLike[str]

DATASETS: tuple[str, ...] = ("realcur", "flickr-aes", "para")
"""Names :func:`load_dataset` accepts (case, ``-``, ``_`` and spaces are ignored)."""

_LABEL_SUFFIXES = frozenset({".txt", ".csv", ".tsv"})
_WORKER_HEADERS = frozenset({"worker", "workers", "worker_id", "workerid"})
_SPLIT_KEYWORDS = frozenset({"test", "train", "all"})


class DatasetError(ValueError):
    """A benchmark file or folder cannot be read as documented. The message is one line."""


def _error(path: StrPath, problem: str, line: int | None = None) -> DatasetError:
    where = f"{path}:{line}" if line is not None else f"{path}"
    return DatasetError(" ".join(f"{where}: {problem}".split()))


@dataclass(eq=False)
class Album:
    """One person's photos and their ratings on the 1-10 scale (``scores[i]`` rates ``images[i]``)."""

    user: str
    images: list[Path]
    scores: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        # One shape for every loader, checked here rather than trusted at each use.
        self.images = [Path(p) for p in self.images]
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if len(self.images) != self.scores.shape[0]:
            raise ValueError(
                f"Album {self.user!r}: {len(self.images)} images but {self.scores.shape[0]} scores"
            )

    def __len__(self) -> int:
        return len(self.images)


def check_images(albums: Iterable[Album]) -> list[str]:
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


# ---------------------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------------------


def _natural_key(text: str) -> tuple[Any, ...]:
    """``user2`` < ``user10``. Splitting on digit runs puts text at even and numbers at odd positions."""
    parts = re.split(r"(\d+)", text)
    return (*(int(p) if i % 2 else p for i, p in enumerate(parts)), text)


def _score(text: str, path: Path, line: int, low: float = 1.0, high: float = 5.0) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _error(path, f"score {text!r} is not a number", line) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise _error(path, f"score {text!r} is outside [{low:g}, {high:g}]", line)
    return value


class _Ratings:
    """Collects (user, image, score) in file order, averaging repeats of the same user and image."""

    def __init__(self) -> None:
        self._by_user: dict[str, dict[Path, list[float]]] = {}

    def add(self, user: str, image: Path, score: float) -> None:
        self._by_user.setdefault(user, {}).setdefault(image, []).append(score)

    def users(self) -> set[str]:
        return set(self._by_user)

    def albums(self, users: Iterable[str] | None = None) -> list[Album]:
        chosen = self._by_user.keys() if users is None else users
        out = []
        for user in sorted(chosen, key=_natural_key):
            ratings = self._by_user[user]
            out.append(Album(user, list(ratings), np.array([np.mean(s) for s in ratings.values()])))
        return out


def _existing_file(path: StrPath) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise _error(p, "no such file")
    return p.resolve()


def _existing_dir(path: StrPath) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise _error(p, "no such folder")
    return p.resolve()


def _visible(p: Path) -> bool:
    return not p.name.startswith((".", "_"))


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank, non-comment lines with their 1-based numbers."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error(path, f"not UTF-8 text ({exc.reason})") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
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
        raise _error(path, f"not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise _error(path, f"not valid CSV ({exc})") from None


# ---------------------------------------------------------------------------------------------------------
# REAL-CUR
# ---------------------------------------------------------------------------------------------------------


def _split_label_line(line: str) -> list[str]:
    for sep in (",", "\t", ";"):
        if sep in line:
            fields = [f.strip() for f in line.split(sep)]
            while fields and not fields[-1]:  # a trailing separator is harmless
                fields.pop()
            return fields
    return line.rsplit(None, 1)


def _read_realcur_labels(label_file: Path, user_dir: Path, user: str, ratings: _Ratings) -> None:
    first = True
    for number, line in _lines(label_file):
        fields = _split_label_line(line)
        if len(fields) != 2 or not fields[0]:
            raise _error(label_file, f"expected an image name and a score, got {line!r}", number)
        name, score_text = fields
        if first:
            first = False
            try:
                float(score_text)
            except ValueError:
                continue  # a header line
        ratings.add(user, user_dir / name, 2.0 * _score(score_text, label_file, number))


def _read_realcur_score_folders(user_dir: Path, user: str, subdirs: list[Path], ratings: _Ratings) -> None:
    found: list[tuple[Path, float]] = []
    for sub in subdirs:
        try:
            score = float(sub.name)
        except ValueError:
            raise _error(
                sub, "expected a score folder named 1 to 5 (or a label file in the user folder)"
            ) from None
        if not math.isfinite(score) or not 1.0 <= score <= 5.0:
            raise _error(sub, "score folder is outside [1, 5]")
        for f in sub.iterdir():
            if f.is_file() and _visible(f) and f.suffix.lower() in IMAGE_EXTENSIONS:
                found.append((f, score))
    for f, score in sorted(found, key=lambda fs: _natural_key(fs[0].name)):
        ratings.add(user, f, 2.0 * score)


def load_realcur(root: StrPath) -> list[Album]:
    """REAL-CUR albums, scores doubled from 1-5 to 2-10 (see the module docstring for the layouts)."""
    base = _existing_dir(root)
    ratings = _Ratings()
    users = [d for d in base.iterdir() if d.is_dir() and _visible(d)]
    if not users:
        raise _error(base, "no user folders (expected one folder per REAL-CUR album)")
    for user_dir in users:
        user = user_dir.name
        entries = [e for e in user_dir.iterdir() if _visible(e)]
        labels = [e for e in entries if e.is_file() and e.suffix.lower() in _LABEL_SUFFIXES]
        subdirs = [e for e in entries if e.is_dir()]
        if len(labels) > 1:
            names = ", ".join(sorted(e.name for e in labels))
            raise _error(user_dir, f"more than one label file ({names}); keep one per album")
        if labels:
            _read_realcur_labels(labels[0], user_dir, user, ratings)
        elif subdirs:
            _read_realcur_score_folders(user_dir, user, subdirs, ratings)
        else:
            raise _error(user_dir, "no label file (.txt, .csv, .tsv) and no score folders (1 to 5)")
        if user not in ratings.users():
            raise _error(user_dir, "album has no rated images")
    return ratings.albums()


# ---------------------------------------------------------------------------------------------------------
# FLICKR-AES
# ---------------------------------------------------------------------------------------------------------


def _read_worker_file(path: StrPath) -> list[str]:
    file = _existing_file(path)
    ids: list[str] = []
    for i, (_, line) in enumerate(_lines(file)):
        worker = re.split(r"[,\s]+", line, maxsplit=1)[0]
        if i == 0 and worker.lower() in _WORKER_HEADERS:
            continue  # a header line
        if worker not in ids:
            ids.append(worker)
    if not ids:
        raise _error(file, "no worker ids")
    return ids


def _worker_list(spec: StrPath | Sequence[str]) -> list[str]:
    if isinstance(spec, PathLike | str):
        return _read_worker_file(spec)
    ids = [str(w).strip() for w in spec]
    if not ids or not all(ids):
        raise DatasetError("worker list is empty or has an empty id")
    return list(dict.fromkeys(ids))


def _read_flickr_csv(path: Path, images_root: Path) -> _Ratings:
    ratings = _Ratings()
    columns = (0, 1, 2)
    width = 3
    first = True
    for number, row in _csv_rows(path):
        if first:
            first = False
            names = [v.lower() for v in row]
            if "worker" in names or "score" in names:
                try:
                    columns = (names.index("worker"), names.index("imagepair"), names.index("score"))
                except ValueError:
                    raise _error(
                        path, "header must name the columns worker, imagePair and score", number
                    ) from None
                width = len(row)
                continue
        if len(row) != width:
            raise _error(path, f"expected {width} fields, got {len(row)}", number)
        worker, image, score_text = (row[c] for c in columns)
        if not worker or not image:
            raise _error(path, "empty worker or image name", number)
        ratings.add(worker, images_root / image, 2.0 * _score(score_text, path, number))
    if not ratings.users():
        raise _error(path, "no ratings")
    return ratings


def load_flickr_aes(
    labels_csv: StrPath,
    images_root: StrPath,
    workers: Literal["test", "train", "all"] | StrPath | Sequence[str] = "test",
    test_workers: StrPath | Sequence[str] | None = None,
) -> list[Album]:
    """FLICKR-AES albums, one per worker, scores doubled from 1-5 to 2-10.

    ``workers`` picks whose albums to return; ``"test"``/``"train"`` need the official 37 test-worker
    ids as ``test_workers`` (a list, or a file of one id per line): piaa does not ship them.
    """
    path = _existing_file(labels_csv)
    keyword = isinstance(workers, str) and workers in _SPLIT_KEYWORDS
    if keyword and workers != "all" and test_workers is None:  # say so before reading 193k rows
        raise _error(
            path,
            f"workers={workers!r} needs the official FLICKR-AES test split (37 worker ids), which piaa "
            "does not ship: pass test_workers=<file with one worker id per line, or a list>, or pass "
            "workers=<that file or list> directly",
        )
    ratings = _read_flickr_csv(path, Path(images_root).expanduser().resolve())
    present = ratings.users()

    if keyword:
        if workers == "all":
            return ratings.albums()
        assert test_workers is not None  # checked above
        test = _worker_list(test_workers)
        _check_workers(path, test, present)
        if workers == "test":
            return ratings.albums(test)
        chosen = present - set(test)
        return ratings.albums(chosen)

    chosen_list = _worker_list(workers)
    _check_workers(path, chosen_list, present)
    return ratings.albums(chosen_list)


def _check_workers(path: Path, wanted: Sequence[str], present: set[str]) -> None:
    absent = [w for w in wanted if w not in present]
    if absent:
        shown = ", ".join(absent[:5]) + (f" (and {len(absent) - 5} more)" if len(absent) > 5 else "")
        raise _error(path, f"{len(absent)} requested worker(s) have no ratings here: {shown}")


# ---------------------------------------------------------------------------------------------------------
# PARA
# ---------------------------------------------------------------------------------------------------------

_PARA_COLUMNS = ("userId", "imageName", "sessionId", "aestheticScore")


def _para_to_ten(s: float) -> float:
    return 1.0 + (s - 1.0) * 9.0 / 4.0


def _read_para_csv(path: Path, images_root: Path, ratings: _Ratings) -> None:
    header: list[str] | None = None
    idx: dict[str, int] = {}
    for number, row in _csv_rows(path):
        if header is None:
            header = [v.lower() for v in row]
            absent = [c for c in _PARA_COLUMNS if c.lower() not in header]
            if absent:
                raise _error(path, f"header lacks PARA-Images.csv column(s) {', '.join(absent)}", number)
            idx = {c: header.index(c.lower()) for c in _PARA_COLUMNS}
            continue
        if len(row) != len(header):
            raise _error(path, f"expected {len(header)} fields, got {len(row)}", number)
        user, image, session = row[idx["userId"]], row[idx["imageName"]], row[idx["sessionId"]]
        if not user or not image or not session:
            raise _error(path, "empty userId, imageName or sessionId", number)
        score = _score(row[idx["aestheticScore"]], path, number)
        ratings.add(user, images_root / session / image, _para_to_ten(score))
    if header is None:
        raise _error(path, "empty file")


def load_para(
    root: StrPath,
    annotations: StrPath | Sequence[StrPath] | None = None,
    images_root: StrPath | None = None,
) -> list[Album]:
    """PARA albums, one per user, ``aestheticScore`` s mapped to ``1 + (s - 1) * 9 / 4``.

    Defaults follow the release: ``root/annotation/PARA-Images.csv`` and images under ``root/imgs``.
    """
    base = Path(root).expanduser()
    if annotations is None:
        files = [base / "annotation" / "PARA-Images.csv"]
    elif isinstance(annotations, str | PathLike):
        files = [Path(annotations)]
    else:
        files = [Path(a) for a in annotations]
    if not files:
        raise DatasetError("no PARA annotation files given")
    images = Path(images_root).expanduser() if images_root is not None else base / "imgs"
    images = images.resolve()
    ratings = _Ratings()
    for f in files:
        _read_para_csv(_existing_file(f), images, ratings)
    if not ratings.users():
        raise _error(files[0] if len(files) == 1 else base, "no ratings")
    return ratings.albums()


# ---------------------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------------------

_LOADERS: dict[str, Callable[..., list[Album]]] = {
    "realcur": load_realcur,
    "flickraes": load_flickr_aes,
    "para": load_para,
}


def dataset_key(name: str) -> str:
    """``"FLICKR-AES"``, ``"flickr_aes"``, ``"flickr aes"`` -> ``"flickraes"``: one spelling per loader."""
    return re.sub(r"[-_\s]", "", name.lower())


def load_dataset(name: str, **kwargs: Any) -> list[Album]:
    """Load a benchmark by name (``"realcur"``, ``"flickr-aes"``, ``"para"``); kwargs go to its loader."""
    key = dataset_key(name)
    if key not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return _LOADERS[key](**kwargs)
