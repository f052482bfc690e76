"""FLICKR-AES (Ren et al., ICCV 2017): 40,000 Flickr photos, each rated 1-5 by five of 210 workers.

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
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Literal

from piaa.data.datasets.base import (
    DatasetError,
    RatedAlbum,
    Ratings,
    StrPath,
    csv_rows,
    existing_file,
    parse_score,
    text_lines,
)
from piaa.errors import file_error

__all__ = ["load_flickr_aes"]

_WORKER_HEADERS = frozenset({"worker", "workers", "worker_id", "workerid"})
_SPLIT_KEYWORDS = frozenset({"test", "train", "all"})


def _read_worker_file(path: StrPath) -> list[str]:
    file = existing_file(path)
    ids: list[str] = []
    for i, (_, line) in enumerate(text_lines(file)):
        worker = re.split(r"[,\s]+", line, maxsplit=1)[0]
        if i == 0 and worker.lower() in _WORKER_HEADERS:
            continue  # a header line
        if worker not in ids:
            ids.append(worker)
    if not ids:
        raise file_error(DatasetError, file, "no worker ids")
    return ids


def _worker_list(spec: StrPath | Sequence[str]) -> list[str]:
    if isinstance(spec, PathLike | str):
        return _read_worker_file(spec)
    ids = [str(w).strip() for w in spec]
    if not ids or not all(ids):
        raise DatasetError("worker list is empty or has an empty id")
    return list(dict.fromkeys(ids))


def _read_csv(path: Path, images_root: Path) -> Ratings:
    ratings = Ratings()
    columns = (0, 1, 2)
    width = 3
    first = True
    for number, row in csv_rows(path):
        if first:
            first = False
            names = [v.lower() for v in row]
            if "worker" in names or "score" in names:
                try:
                    columns = (names.index("worker"), names.index("imagepair"), names.index("score"))
                except ValueError:
                    raise file_error(
                        DatasetError, path, "header must name the columns worker, imagePair and score", number
                    ) from None
                width = len(row)
                continue
        if len(row) != width:
            raise file_error(DatasetError, path, f"expected {width} fields, got {len(row)}", number)
        worker, image, score_text = (row[c] for c in columns)
        if not worker or not image:
            raise file_error(DatasetError, path, "empty worker or image name", number)
        ratings.add(worker, images_root / image, 2.0 * parse_score(score_text, path, number))
    if not ratings.users():
        raise file_error(DatasetError, path, "no ratings")
    return ratings


def _check_workers(path: Path, wanted: Sequence[str], present: set[str]) -> None:
    absent = [w for w in wanted if w not in present]
    if absent:
        shown = ", ".join(absent[:5]) + (f" (and {len(absent) - 5} more)" if len(absent) > 5 else "")
        raise file_error(
            DatasetError, path, f"{len(absent)} requested worker(s) have no ratings here: {shown}"
        )


def load_flickr_aes(
    labels_csv: StrPath,
    images_root: StrPath,
    workers: Literal["test", "train", "all"] | StrPath | Sequence[str] = "test",
    test_workers: StrPath | Sequence[str] | None = None,
) -> list[RatedAlbum]:
    """FLICKR-AES albums, one per worker, scores doubled from 1-5 to 2-10.

    ``workers`` picks whose albums to return; ``"test"``/``"train"`` need the official 37 test-worker
    ids as ``test_workers`` (a list, or a file of one id per line): piaa does not ship them. Raises
    :class:`DatasetError` for a bad file, a missing split list or a requested worker without ratings.
    """
    path = existing_file(labels_csv)
    keyword = isinstance(workers, str) and workers in _SPLIT_KEYWORDS
    if keyword and workers != "all" and test_workers is None:  # say so before reading 193k rows
        raise file_error(
            DatasetError,
            path,
            f"workers={workers!r} needs the official FLICKR-AES test split (37 worker ids), which piaa "
            "does not ship: pass test_workers=<file with one worker id per line, or a list>, or pass "
            "workers=<that file or list> directly",
        )
    ratings = _read_csv(path, Path(images_root).expanduser().resolve())
    present = ratings.users()

    if keyword:
        if workers == "all":
            return ratings.albums()
        assert test_workers is not None  # checked above
        test = _worker_list(test_workers)
        _check_workers(path, test, present)
        if workers == "test":
            return ratings.albums(test)
        return ratings.albums(present - set(test))

    chosen = _worker_list(workers)
    _check_workers(path, chosen, present)
    return ratings.albums(chosen)
