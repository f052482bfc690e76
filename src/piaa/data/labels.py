"""Readers for reference-corpus labels: crowd score histograms on the 1-10 scale (the AVA role).

The generic aesthetic model is trained with an EMD loss on a probability mass function
``p = [p_1, ..., p_10]`` per image and scores an image by its mean ``sum_i i * p_i`` (paper, Sec. 3).
Every reader here therefore returns the same thing, a :class:`LabelSet` whose ``distributions`` is an
``N x 10`` float32 array with rows summing to 1, whatever the file looked like. Malformed input is an
error (:class:`LabelFormatError`, one line, ``path:line: problem``), never a silent guess; rows that
are well formed but carry no information (zero votes) are dropped and listed in ``LabelSet.skipped``.

Formats
-------

``ava`` (:func:`read_ava`) -- the ``AVA.txt`` layout: whitespace separated, 15 columns per line::

    index image_id c1 c2 c3 c4 c5 c6 c7 c8 c9 c10 tag1 tag2 challenge_id

``c1..c10`` are vote counts for scores 1..10 and must be non-negative integers; ``p_i = c_i / sum(c)``.
The image file is ``f"{image_id}.jpg"``. ``index``, the tags and the challenge id are not interpreted.
Blank lines are ignored. A line with another column count, a non-integer or negative count, or a
repeated image id is an error naming the line. Rows with zero votes go to ``skipped``.

CSV (:func:`read_csv_labels`) -- comma separated, header row required (header names are matched
case-insensitively, surrounding spaces ignored).

* Image column: the first of ``image, image_id, image_name, imagename, filename, file, path, name, id``
  (in that priority order) present in the header. A value ending in an image extension
  (``.jpg .jpeg .png .bmp .gif .tif .tiff .webp``) is the file name and the id is the value without
  the extension; any other value is the id and the file is ``f"{value}.jpg"``.
* Scores, first match wins:

  a. ``csv-10bin``: ten columns ``c1..c10``, ``count_1..count_10``, ``score1..score10`` or
     ``p1..p10``. Counts or probabilities; each row is divided by its sum.
  b. ``csv-5bin``: five columns ``c1..c5`` (KonIQ-10k style, 5-point ACR counts or probabilities),
     normalised per row and mapped onto the 1-10 scale as described below. A file with ``c1..c5``
     plus only some of ``c6..c10`` is ambiguous and rejected.
  c. ``csv-mean``: a mean score column, the first of ``mean, mean_score, score, mos, rating``, on
     1-10. A mean ``m`` becomes mass ``ceil(m) - m`` on bin ``floor(m)`` and ``m - floor(m)`` on bin
     ``floor(m) + 1`` (all mass on ``m`` when it is an integer), so the distribution's mean is
     exactly ``m`` (6.3 -> ``p6 = 0.7, p7 = 0.3``). A value outside [1, 10] is an error naming the
     line: a 0-100 MOS is not a 1-10 mean and is never rescaled silently.

  No usable columns is an error listing what was expected. Score cells must be finite,
  non-negative numbers; every row must have as many fields as the header; empty rows are ignored;
  a repeated image id is an error. All-zero histograms (a, b) go to ``skipped``.

The 5-point -> 10-point mapping (``csv-5bin``)
----------------------------------------------

A 5-point rating ``r`` sits at ``s(r) = 1 + (r - 1) * 9 / 4`` on the 1-10 scale (1 -> 1, 5 -> 10),
and its mass is split between bins ``floor(s)`` and ``ceil(s)`` in proportion to the distance, i.e.
``1 - frac(s)`` on ``floor(s)`` and ``frac(s)`` on ``ceil(s)``:

====== ======= ==================================
rating s(r)    mass on the 1-10 bins
====== ======= ==================================
1      1.00    bin 1: 1
2      3.25    bin 3: 0.75, bin 4: 0.25
3      5.50    bin 5: 0.50, bin 6: 0.50
4      7.75    bin 7: 0.25, bin 8: 0.75
5      10.00   bin 10: 1
====== ======= ==================================

(:data:`FIVE_TO_TEN` is this 5 x 10 matrix.) Because each rating's mass keeps its mean at ``s(r)``
and ``s`` is linear, the mapped distribution's mean is exactly ``1 + (mean5 - 1) * 9 / 4``: the
mean-preserving linear map of the 5-point mean. Rankings by mean are unchanged. The shape is not a
real 10-point histogram (bins 2 and 9 never get mass, the spread differs), so EMD values on such
labels are not comparable with AVA's. Note the paper itself maps REAL-CUR's 1-5 scores by doubling
(1 -> 2, 5 -> 10); this module uses the endpoint-preserving map instead.

:func:`read_labels` picks the reader: ``.csv`` files, or files whose first line contains a comma,
are CSV; everything else is AVA.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from piaa.data.images import IMAGE_EXTENSIONS

__all__ = [
    "FIVE_TO_TEN",
    "LabelFormatError",
    "LabelSet",
    "five_bin_to_ten",
    "mean_to_distribution",
    "read_ava",
    "read_csv_labels",
    "read_labels",
]

SCORES = np.arange(1, 11, dtype=np.float64)
"""The score of each bin, 1..10."""

IMAGE_COLUMNS = ("image", "image_id", "image_name", "imagename", "filename", "file", "path", "name", "id")
TEN_BIN_FAMILIES = (
    tuple(f"c{i}" for i in range(1, 11)),
    tuple(f"count_{i}" for i in range(1, 11)),
    tuple(f"score{i}" for i in range(1, 11)),
    tuple(f"p{i}" for i in range(1, 11)),
)
FIVE_BIN_COLUMNS = tuple(f"c{i}" for i in range(1, 6))
MEAN_COLUMNS = ("mean", "mean_score", "score", "mos", "rating")

_AVA_COLUMNS = 15
_AVA_COUNTS = slice(2, 12)
_INT_RE = re.compile(r"[+-]?[0-9]+")
_MAX_COUNT = 2**53  # beyond this, counts are not exact as floats and the file is surely corrupt


def _five_to_ten_matrix() -> np.ndarray:
    m = np.zeros((5, 10), dtype=np.float64)
    for r in range(1, 6):
        s = 1.0 + (r - 1) * 9.0 / 4.0
        lo = math.floor(s)
        frac = s - lo
        m[r - 1, lo - 1] += 1.0 - frac
        if frac > 0.0:
            m[r - 1, lo] += frac
    m.setflags(write=False)
    return m


FIVE_TO_TEN: np.ndarray = _five_to_ten_matrix()
"""Row ``r-1`` is where a 5-point rating ``r`` lands on the 10 bins (see the module docstring)."""


class LabelFormatError(ValueError):
    """A label file cannot be read as asked. The message is one line: ``path:line: problem``."""


def _error(path: str | PathLike[str], problem: str, lineno: int | None = None) -> LabelFormatError:
    where = f"{path}:{lineno}" if lineno is not None else f"{path}"
    message = f"{where}: {problem}"
    return LabelFormatError(" ".join(message.splitlines()))


@dataclass
class LabelSet:
    """Crowd score distributions on 1-10 for a set of images, whatever file format they came from."""

    ids: list[str]
    files: list[str]
    distributions: np.ndarray
    source_format: str
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # One shape for every reader, checked once here rather than trusted at each use.
        self.distributions = np.asarray(self.distributions, dtype=np.float32).reshape(-1, 10)
        n = self.distributions.shape[0]
        if len(self.ids) != n or len(self.files) != n:
            raise ValueError(
                f"LabelSet: {len(self.ids)} ids, {len(self.files)} files and {n} distributions differ"
            )

    def __len__(self) -> int:
        return len(self.ids)

    def mean_scores(self) -> np.ndarray:
        """Mean score ``sum_i i * p_i`` per image (float64), the paper's scalar aesthetic score."""
        return self.distributions.astype(np.float64) @ SCORES


def mean_to_distribution(means: np.ndarray | float) -> np.ndarray:
    """Spread 1-10 mean scores over the two nearest bins so that each row's mean is exactly the input.

    Returns an ``(N, 10)`` float64 array (``(10,)`` for a scalar). Raises ``ValueError`` outside [1, 10].
    """
    m = np.asarray(means, dtype=np.float64)
    flat = m.reshape(-1)
    if not np.all(np.isfinite(flat)) or np.any((flat < 1.0) | (flat > 10.0)):
        raise ValueError("mean scores must lie in [1, 10]")
    lo = np.minimum(np.floor(flat), 9.0)  # m == 10 puts weight 1 on bin 10 via frac == 1
    frac = flat - lo
    out = np.zeros((flat.size, 10), dtype=np.float64)
    rows = np.arange(flat.size)
    lo_idx = lo.astype(np.int64) - 1
    out[rows, lo_idx] = 1.0 - frac
    out[rows, lo_idx + 1] = frac
    return out.reshape(*m.shape, 10)


def five_bin_to_ten(p5: np.ndarray) -> np.ndarray:
    """Map 5-point histograms (counts or probabilities, ``(..., 5)``) to normalised 1-10 distributions.

    Uses :data:`FIVE_TO_TEN`; the result's mean is ``1 + (mean5 - 1) * 9 / 4``. Rows must have a
    positive sum.
    """
    p = np.asarray(p5, dtype=np.float64)
    if p.shape[-1] != 5:
        raise ValueError(f"expected 5 bins in the last axis, got shape {p.shape}")
    total = p.sum(axis=-1, keepdims=True)
    if np.any(p < 0) or np.any(total <= 0):
        raise ValueError("5-point histograms must be non-negative with a positive sum")
    return (p / total) @ FIVE_TO_TEN


def _check_file(path: Path) -> None:
    if not path.exists():
        raise _error(path, "no such file")
    if not path.is_file():
        raise _error(path, "not a regular file")


# --------------------------------------------------------------------------------------------- AVA


def read_ava(path: str | PathLike[str]) -> LabelSet:
    """Read an ``AVA.txt``-style file: ``index image_id c1..c10 tag1 tag2 challenge_id`` per line.

    Vectorised (numpy) because AVA proper has 255k rows; a line-by-line pass runs only to name the
    offending line when the fast path finds the file malformed.
    """
    path = Path(path)
    _check_file(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error(path, f"not UTF-8 text (byte {exc.start})") from None
    parsed = _ava_fast(data, text)
    if parsed is None:
        parsed = _ava_slow(path, text)  # raises with a line number when the file is malformed
    linenos, ids, counts = parsed
    return _ava_labelset(path, linenos, ids, counts)


def _ava_fast(data: bytes, text: str) -> tuple[np.ndarray, list[str], np.ndarray] | None:
    """Parse a well-formed AVA file with numpy; ``None`` when anything looks off."""
    if not data.strip():
        return None
    b = np.frombuffer(data, dtype=np.uint8)
    if b.max() >= 0x80:
        return None  # non-ASCII: str.split() knows Unicode whitespace, this byte scan does not
    newline = b == ord("\n")
    # The bytes str.split() treats as whitespace in ASCII: \t \n \v \f \r, \x1c-\x1f and space.
    space = ((b >= 0x09) & (b <= 0x0D)) | ((b >= 0x1C) & (b <= 0x20))
    token_start = ~space
    token_start[1:] &= space[:-1]
    token_pos = np.flatnonzero(token_start)
    newline_pos = np.flatnonzero(newline)
    n_lines = newline_pos.size + 1
    # Tokens on line k = tokens before its closing newline minus tokens before the previous one.
    per_line = np.diff(np.searchsorted(token_pos, newline_pos), prepend=0, append=token_pos.size)
    nonblank = np.flatnonzero(per_line)
    if np.any(per_line[nonblank] != _AVA_COLUMNS):
        return None
    all_lines = text.split("\n")
    if len(all_lines) != n_lines:
        return None
    lines = [all_lines[i] for i in nonblank.tolist()]
    try:
        counts = np.loadtxt(lines, dtype=np.int64, comments=None, usecols=range(2, 12), ndmin=2)
    except ValueError:
        return None
    if counts.shape != (len(lines), 10):
        return None  # loadtxt saw lines differently from the byte count: let the slow path decide
    ids = [line.split(None, 2)[1] for line in lines]
    if np.any(counts < 0) or np.any(counts > _MAX_COUNT):
        return None
    return nonblank + 1, ids, counts


def _ava_slow(path: Path, text: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Line-by-line AVA parse that names the first malformed line."""
    linenos: list[int] = []
    ids: list[str] = []
    rows: list[list[int]] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != _AVA_COLUMNS:
            raise _error(
                path,
                f"expected {_AVA_COLUMNS} whitespace-separated columns "
                "(index image_id c1..c10 tag1 tag2 challenge_id), "
                f"found {len(parts)}",
                lineno,
            )
        row: list[int] = []
        for k, tok in enumerate(parts[_AVA_COUNTS], start=1):
            if not _INT_RE.fullmatch(tok):
                raise _error(path, f"vote count c{k} is not an integer: {tok!r}", lineno)
            value = int(tok)
            if value < 0:
                raise _error(path, f"vote count c{k} is negative: {value}", lineno)
            if value > _MAX_COUNT:
                raise _error(path, f"vote count c{k} is implausibly large: {value}", lineno)
            row.append(value)
        linenos.append(lineno)
        ids.append(parts[1])
        rows.append(row)
    if not rows:
        raise _error(path, "no label rows")
    return np.asarray(linenos, dtype=np.int64), ids, np.asarray(rows, dtype=np.int64).reshape(-1, 10)


def _ava_labelset(path: Path, linenos: np.ndarray, ids: list[str], counts: np.ndarray) -> LabelSet:
    _check_unique_ids(path, ids, linenos)
    totals = counts.sum(axis=1)
    keep = totals > 0
    skipped = [f"{path}:{linenos[i]}: image {ids[i]}: zero votes" for i in np.flatnonzero(~keep).tolist()]
    kept_ids = [ids[i] for i in np.flatnonzero(keep).tolist()] if skipped else ids
    dist = counts[keep].astype(np.float64) / totals[keep, None]
    return LabelSet(
        ids=kept_ids,
        files=[f"{i}.jpg" for i in kept_ids],
        distributions=dist.astype(np.float32),
        source_format="ava",
        skipped=skipped,
    )


def _check_unique_ids(path: Path, ids: list[str], linenos: np.ndarray | list[int]) -> None:
    if len(set(ids)) == len(ids):
        return
    first: dict[str, int] = {}
    for image_id, lineno in zip(ids, linenos, strict=True):
        if image_id in first:
            raise _error(
                path, f"duplicate image id {image_id!r} (first seen on line {first[image_id]})", int(lineno)
            )
        first[image_id] = int(lineno)


# --------------------------------------------------------------------------------------------- CSV


def read_csv_labels(path: str | PathLike[str]) -> LabelSet:
    """Read a CSV label file with a header row (see the module docstring for the accepted columns).

    Histograms take priority over a mean column because a histogram carries more information than
    its mean, and because KonIQ-style files carry a 0-100 MOS that must not pass for a 1-10 mean.
    """
    path = Path(path)
    _check_file(path)
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
    except UnicodeDecodeError as exc:
        raise _error(path, f"not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise _error(path, f"CSV syntax error: {exc}") from None
    if not ids:
        raise _error(path, "no data rows after the header")
    _check_unique_ids(path, ids, linenos)
    return _csv_labelset(path, fmt, score_names, linenos, ids, files, values)


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
) -> tuple[list[int], list[str], list[str], list[list[float]]]:
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
    neg = np.flatnonzero((v < 0).any(axis=1))
    if neg.size:
        i = int(neg[0])
        j = int(np.flatnonzero(v[i] < 0)[0])
        raise _error(path, f"column {score_names[j]!r} is negative: {v[i, j]:g}", linenos[i])
    totals = v.sum(axis=1)
    keep = totals > 0
    skipped = [f"{path}:{linenos[i]}: image {ids[i]}: all-zero histogram" for i in np.flatnonzero(~keep)]
    kept = np.flatnonzero(keep)
    dist = five_bin_to_ten(v[keep]) if fmt == "csv-5bin" else v[keep] / totals[keep, None]
    return LabelSet(
        ids=[ids[i] for i in kept],
        files=[files[i] for i in kept],
        distributions=dist.reshape(-1, 10),
        source_format=fmt,
        skipped=skipped,
    )


# ------------------------------------------------------------------------------------------ dispatch


def read_labels(path: str | PathLike[str], fmt: str = "auto") -> LabelSet:
    """Read a label file as ``fmt`` ("ava", "csv"), or guess: ``.csv`` or a comma on line 1 means CSV."""
    if fmt not in ("auto", "ava", "csv"):
        raise ValueError(f"unknown label format {fmt!r}: expected 'auto', 'ava' or 'csv'")
    p = Path(path)
    _check_file(p)
    if fmt == "auto":
        with p.open("rb") as f:
            first = f.readline()
        fmt = "csv" if p.suffix.lower() == ".csv" or b"," in first else "ava"
    return read_csv_labels(p) if fmt == "csv" else read_ava(p)
