"""What every label reader returns (:class:`LabelSet`), the 5- and 1-point to 10-bin maps, and errors."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from piaa.errors import LabelFormatError, UsageError, file_error

__all__ = [
    "FIVE_TO_TEN",
    "mean_score",
    "LabelFormatError",
    "LabelSet",
    "five_bin_to_ten",
    "mean_to_distribution",
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


def _error(path: str | PathLike[str], problem: str, lineno: int | None = None) -> LabelFormatError:
    return file_error(LabelFormatError, path, problem, lineno)


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
        return mean_score(self.distributions.astype(np.float64))


def mean_score(p: Any) -> Any:
    """The paper's scalar score of 10-bin distributions: ``sum_i i * p_i`` on 1-10 (section 3).
    ``(..., 10)`` numpy array or torch tensor -> ``(...)`` of the same kind (differentiable for tensors)."""
    if isinstance(p, np.ndarray):
        return p @ SCORES.astype(p.dtype if p.dtype.kind == "f" else np.float64)
    return p @ p.new_tensor(SCORES)


def mean_to_distribution(means: np.ndarray | float) -> np.ndarray:
    """Spread 1-10 mean scores over the two nearest bins so that each row's mean is exactly the input.

    Returns an ``(N, 10)`` float64 array (``(10,)`` for a scalar). Raises ``ValueError`` outside [1, 10].
    """
    m = np.asarray(means, dtype=np.float64)
    flat = m.reshape(-1)
    if not np.all(np.isfinite(flat)) or np.any((flat < 1.0) | (flat > 10.0)):
        raise UsageError("mean scores must lie in [1, 10]")
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
    return histogram_to_ten(p5, FIVE_TO_TEN)


def histogram_to_ten(p: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Histograms over K bins (counts or probabilities, ``(..., K)``), normalised and mapped onto the 10
    bins by ``matrix`` (K x 10). Raises ``ValueError`` for another K or a row that is negative or empty."""
    p = np.asarray(p, dtype=np.float64)
    k = matrix.shape[0]
    if p.shape[-1] != k:
        raise ValueError(f"expected {k} bins in the last axis, got shape {p.shape}")
    total = p.sum(axis=-1, keepdims=True)
    if np.any(p < 0) or np.any(total <= 0):
        raise ValueError(f"{k}-bin histograms must be non-negative with a positive sum")
    return (p / total) @ matrix


def histogram_labelset(
    path: Path,
    fmt: str,
    v: np.ndarray,
    names: Sequence[str],
    linenos: Sequence[int],
    ids: list[str],
    files: list[str],
    to_ten: Callable[[np.ndarray], np.ndarray],
) -> LabelSet:
    """A :class:`LabelSet` from histogram rows ``v`` (N x K vote counts or probabilities, columns
    ``names``): a negative cell is an error naming its line; rows without votes are skipped and listed."""
    neg = np.flatnonzero((v < 0).any(axis=1))
    if neg.size:
        i = int(neg[0])
        j = int(np.flatnonzero(v[i] < 0)[0])
        raise _error(path, f"column {names[j]!r} is negative: {v[i, j]:g}", linenos[i])
    with np.errstate(over="ignore"):
        total = v.sum(axis=1)
    huge = ~np.isfinite(total)  # counts like 1e308: dividing by their sum would store all zeros
    keep = (total > 0) & ~huge
    skipped = [
        f"{path}:{linenos[i]}: image {ids[i]}: "
        + ("vote counts too large (their sum overflows)" if huge[i] else "no votes")
        for i in np.flatnonzero(~keep)
    ]
    kept = np.flatnonzero(keep)
    return LabelSet(
        ids=[ids[i] for i in kept],
        files=[files[i] for i in kept],
        distributions=to_ten(v[keep]).reshape(-1, 10),
        source_format=fmt,
        skipped=skipped,
    )


def _check_file(path: Path) -> None:
    if not path.exists():
        raise _error(path, "no such file")
    if not path.is_file():
        raise _error(path, "not a regular file")


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


def csv_error(path: Path, exc: UnicodeDecodeError | csv.Error) -> LabelFormatError:
    """The one-line error for a label CSV that is not UTF-8 or not valid CSV."""
    if isinstance(exc, UnicodeDecodeError):
        return _error(path, f"not UTF-8 text (byte {exc.start})")
    return _error(path, f"CSV syntax error: {exc}")


def check_rows(path: Path, ids: list[str], linenos: list[int]) -> None:
    """A label CSV needs data rows, each image once; raises ``LabelFormatError`` naming the line."""
    if not ids:
        raise _error(path, "no data rows after the header")
    _check_unique_ids(path, ids, linenos)
