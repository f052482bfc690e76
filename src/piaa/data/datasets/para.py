"""PARA (Yang et al., CVPR 2022): 31,220 photos, each rated by about 25 of 438 annotators.

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

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from piaa.data.datasets.base import (
    DatasetError,
    RatedAlbum,
    Ratings,
    StrPath,
    csv_rows,
    existing_file,
    parse_score,
)
from piaa.errors import file_error

__all__ = ["load_para"]

_COLUMNS = ("userId", "imageName", "sessionId", "aestheticScore")


def _to_ten(s: float) -> float:
    return 1.0 + (s - 1.0) * 9.0 / 4.0


def _read_csv(path: Path, images_root: Path, ratings: Ratings) -> None:
    header: list[str] | None = None
    idx: dict[str, int] = {}
    for number, row in csv_rows(path):
        if header is None:
            header = [v.lower() for v in row]
            absent = [c for c in _COLUMNS if c.lower() not in header]
            if absent:
                raise file_error(
                    DatasetError, path, f"header lacks PARA-Images.csv column(s) {', '.join(absent)}", number
                )
            idx = {c: header.index(c.lower()) for c in _COLUMNS}
            continue
        if len(row) != len(header):
            raise file_error(DatasetError, path, f"expected {len(header)} fields, got {len(row)}", number)
        user, image, session = row[idx["userId"]], row[idx["imageName"]], row[idx["sessionId"]]
        if not user or not image or not session:
            raise file_error(DatasetError, path, "empty userId, imageName or sessionId", number)
        score = parse_score(row[idx["aestheticScore"]], path, number)
        ratings.add(user, images_root / session / image, _to_ten(score))
    if header is None:
        raise file_error(DatasetError, path, "empty file")


def load_para(
    root: StrPath,
    annotations: StrPath | Sequence[StrPath] | None = None,
    images_root: StrPath | None = None,
) -> list[RatedAlbum]:
    """PARA albums, one per user, ``aestheticScore`` s mapped to ``1 + (s - 1) * 9 / 4`` (1-10).

    Defaults follow the release: ``root/annotation/PARA-Images.csv`` and images under ``root/imgs``.
    Raises :class:`DatasetError` for a missing or malformed annotation file.
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
    ratings = Ratings()
    for f in files:
        _read_csv(existing_file(f), images, ratings)
    if not ratings.users():
        raise file_error(DatasetError, files[0] if len(files) == 1 else base, "no ratings")
    return ratings.albums()
