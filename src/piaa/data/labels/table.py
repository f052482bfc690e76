"""The CSV label reader (see :mod:`piaa.data.labels` for the accepted columns)."""

from __future__ import annotations

import csv
import math
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from piaa.data.images import IMAGE_EXTENSIONS
from piaa.data.labels.base import (
    FIVE_BIN_COLUMNS,
    IMAGE_COLUMNS,
    MEAN_COLUMNS,
    TEN_BIN_FAMILIES,
    LabelSet,
    _check_file,
    _error,
    check_rows,
    csv_error,
    five_bin_to_ten,
    histogram_labelset,
    mean_to_distribution,
)
from piaa.data.labels.para import para_layout, read_para_labels


def read_csv_labels(path: str | PathLike[str]) -> LabelSet:
    """Read a CSV label file with a header row (see the module docstring for the accepted columns).

    Histograms take priority over a mean column because a histogram carries more information than
    its mean, and because KonIQ-style files carry a 0-100 MOS that must not pass for a 1-10 mean.
    """
    path = Path(path)
    _check_file(path)
    if para_layout(_peek_header(path)) is not None:  # PARA's layouts (see piaa.data.labels.para)
        return read_para_labels(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or not any(h.strip() for h in header):
                raise _error(path, "empty file: a header row is required", 1)
            names = [h.strip().lower() for h in header]
            image_col = _first_column(names, IMAGE_COLUMNS)
            if image_col is None:
                raise _error(
                    path,
                    f"no image column in header {','.join(header)!r}: a header row is required, "
                    f"with one of {', '.join(IMAGE_COLUMNS)}",
                    1,
                )
            fmt, score_names = _score_columns(path, names)
            score_cols = [names.index(n) for n in score_names]
            linenos, ids, files, values = _csv_rows(
                path, reader, len(header), image_col, score_cols, score_names
            )
    except (UnicodeDecodeError, csv.Error) as exc:
        raise csv_error(path, exc) from None
    check_rows(path, ids, linenos)
    return _csv_labelset(path, fmt, score_names, linenos, ids, files, values)


def _peek_header(path: Path) -> list[str]:
    """The header row, or [] when it cannot be read (the full read then reports why)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])
    except (UnicodeDecodeError, csv.Error):
        return []


def _first_column(names: list[str], candidates: tuple[str, ...]) -> int | None:
    for c in candidates:
        if c in names:
            return names.index(c)
    return None


def _score_columns(path: Path, names: list[str]) -> tuple[str, tuple[str, ...]]:
    present = set(names)
    for family in TEN_BIN_FAMILIES:
        if present.issuperset(family):
            return "csv-10bin", family
    if present.issuperset(FIVE_BIN_COLUMNS):
        extra = sorted(present.intersection(f"c{i}" for i in range(6, 11)), key=lambda s: int(s[1:]))
        if extra:
            raise _error(
                path,
                f"ambiguous histogram columns: c1..c5 and {', '.join(extra)} but not all of c1..c10",
                1,
            )
        return "csv-5bin", FIVE_BIN_COLUMNS
    mean_col = _first_column(names, MEAN_COLUMNS)
    if mean_col is not None:
        return "csv-mean", (names[mean_col],)
    raise _error(
        path,
        "no score columns: expected ten histogram columns (c1..c10, count_1..count_10, score1..score10 "
        f"or p1..p10), five columns c1..c5, or a 1-10 mean column ({', '.join(MEAN_COLUMNS)})",
        1,
    )


def _csv_rows(
    path: Path,
    reader: Any,  # csv.reader's type is private (_csv.Reader); only iteration and line_num are used
    n_fields: int,
    image_col: int,
    score_cols: list[int],
    score_names: tuple[str, ...],
    folder_col: int = -1,
) -> tuple[list[int], list[str], list[str], list[list[float]]]:
    """(line numbers, image ids, image files, score values) of the data rows; ``folder_col`` >= 0 names a
    column holding the image's folder (PARA's ``sessionId``). Raises ``LabelFormatError`` naming the line."""
    linenos: list[int] = []
    ids: list[str] = []
    files: list[str] = []
    values: list[list[float]] = []
    for row in reader:
        lineno = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != n_fields:
            raise _error(path, f"expected {n_fields} fields as in the header, found {len(row)}", lineno)
        raw = row[image_col].strip()
        if folder_col >= 0:
            folder = row[folder_col].strip()
            if not folder:
                raise _error(path, "empty sessionId", lineno)
            raw = f"{folder}/{raw}" if raw else ""
        if not raw:
            raise _error(path, "empty image name", lineno)
        suffix = Path(raw).suffix
        if suffix.lower() in IMAGE_EXTENSIONS:
            image_id, file = raw[: -len(suffix)], raw
        else:
            image_id, file = raw, f"{raw}.jpg"
        vals: list[float] = []
        for col, name in zip(score_cols, score_names, strict=True):
            cell = row[col].strip()
            try:
                v = float(cell)
            except ValueError:
                raise _error(path, f"column {name!r} is not a number: {cell!r}", lineno) from None
            if not math.isfinite(v):
                raise _error(path, f"column {name!r} is not finite: {cell!r}", lineno)
            vals.append(v)
        linenos.append(lineno)
        ids.append(image_id)
        files.append(file)
        values.append(vals)
    return linenos, ids, files, values


def _csv_labelset(
    path: Path,
    fmt: str,
    score_names: tuple[str, ...],
    linenos: list[int],
    ids: list[str],
    files: list[str],
    values: list[list[float]],
) -> LabelSet:
    v = np.asarray(values, dtype=np.float64).reshape(len(ids), len(score_names))
    if fmt == "csv-mean":
        bad = np.flatnonzero((v[:, 0] < 1.0) | (v[:, 0] > 10.0))
        if bad.size:
            i = int(bad[0])
            raise _error(
                path,
                f"mean score {v[i, 0]:g} in column {score_names[0]!r} is outside [1, 10] "
                "(scores on another scale, e.g. a 0-100 MOS, are not rescaled)",
                linenos[i],
            )
        return LabelSet(ids=ids, files=files, distributions=mean_to_distribution(v[:, 0]), source_format=fmt)
    to_ten = five_bin_to_ten if fmt == "csv-5bin" else (lambda h: h / h.sum(axis=1, keepdims=True))
    return histogram_labelset(path, fmt, v, score_names, linenos, ids, files, to_ten)
