"""REAL-CUR (Ren et al., ICCV 2017): 14 personal albums of about 200 photos, each rated 1-5 by its owner.

Scores are **doubled** (1-5 -> 2-10), as Zhou et al. do to put them on AVA's 1-10 scale; ``3 -> 6.0``.
``root`` holds one folder per user (the folder name is the user id); hidden folders and those starting
with ``_`` (e.g. ``__MACOSX``) and plain files in ``root`` are ignored. Each user folder is read in one
of two ways:

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
   named by a number in [1, 5] (``1`` .. ``5``). Files with an image suffix
   (:data:`piaa.data.images.IMAGE_EXTENSIONS`, any case) directly inside a score folder are the album;
   other files, and images lying directly in the user folder (they carry no score), are ignored. A
   non-numeric or out-of-range sub-folder is an error.

A folder with a label file is read as (a) even if it also has sub-folders; more than one label file,
or neither a label file nor score folders, is an error.
"""

from __future__ import annotations

import math
from pathlib import Path

from piaa.data.datasets.base import (
    DatasetError,
    RatedAlbum,
    Ratings,
    StrPath,
    existing_dir,
    natural_key,
    parse_score,
    text_lines,
    visible,
)
from piaa.data.images import IMAGE_EXTENSIONS
from piaa.errors import file_error

__all__ = ["load_realcur"]

_LABEL_SUFFIXES = frozenset({".txt", ".csv", ".tsv"})


def _split_label_line(line: str) -> list[str]:
    for sep in (",", "\t", ";"):
        if sep in line:
            fields = [f.strip() for f in line.split(sep)]
            while fields and not fields[-1]:  # a trailing separator is harmless
                fields.pop()
            return fields
    return line.rsplit(None, 1)


def _read_labels(label_file: Path, user_dir: Path, user: str, ratings: Ratings) -> None:
    first = True
    for number, line in text_lines(label_file):
        fields = _split_label_line(line)
        if len(fields) != 2 or not fields[0]:
            raise file_error(
                DatasetError, label_file, f"expected an image name and a score, got {line!r}", number
            )
        name, score_text = fields
        if first:
            first = False
            try:
                float(score_text)
            except ValueError:
                continue  # a header line
        ratings.add(user, user_dir / name, 2.0 * parse_score(score_text, label_file, number))


def _read_score_folders(user: str, subdirs: list[Path], ratings: Ratings) -> None:
    found: list[tuple[Path, float]] = []
    for sub in subdirs:
        try:
            score = float(sub.name)
        except ValueError:
            raise file_error(
                DatasetError, sub, "expected a score folder named 1 to 5 (or a label file in the user folder)"
            ) from None
        if not math.isfinite(score) or not 1.0 <= score <= 5.0:
            raise file_error(DatasetError, sub, "score folder is outside [1, 5]")
        for f in sub.iterdir():
            if f.is_file() and visible(f) and f.suffix.lower() in IMAGE_EXTENSIONS:
                found.append((f, score))
    for f, score in sorted(found, key=lambda fs: natural_key(fs[0].name)):
        ratings.add(user, f, 2.0 * score)


def load_realcur(root: StrPath) -> list[RatedAlbum]:
    """REAL-CUR albums, one per user folder of ``root``, scores doubled from 1-5 to 2-10.

    Raises :class:`DatasetError` (one line, naming the file and line) on any layout or row the module
    docstring does not accept.
    """
    base = existing_dir(root)
    ratings = Ratings()
    users = [d for d in base.iterdir() if d.is_dir() and visible(d)]
    if not users:
        raise file_error(DatasetError, base, "no user folders (expected one folder per REAL-CUR album)")
    for user_dir in users:
        user = user_dir.name
        entries = [e for e in user_dir.iterdir() if visible(e)]
        labels = [e for e in entries if e.is_file() and e.suffix.lower() in _LABEL_SUFFIXES]
        subdirs = [e for e in entries if e.is_dir()]
        if len(labels) > 1:
            names = ", ".join(sorted(e.name for e in labels))
            raise file_error(
                DatasetError, user_dir, f"more than one label file ({names}); keep one per album"
            )
        if labels:
            _read_labels(labels[0], user_dir, user, ratings)
        elif subdirs:
            _read_score_folders(user, subdirs, ratings)
        else:
            raise file_error(
                DatasetError, user_dir, "no label file (.txt, .csv, .tsv) and no score folders (1 to 5)"
            )
        if user not in ratings.users():
            raise file_error(DatasetError, user_dir, "album has no rated images")
    return ratings.albums()
