"""PARA's crowd labels (Yang et al., CVPR 2022) as a reference corpus: 1-5 scores onto 1-10 bins.

Two layouts are read, both recognised by their header (names matched case-insensitively):

``para-giaa`` -- PARA's official GIAA files (``PARA-GiaaTrain.csv``, ``PARA-GiaaTest.csv``)::

    imageName,sessionId,semantic,aestheticScore_1.0,aestheticScore_1.5,...,aestheticScore_5.0,
    aestheticScore_mean,...

The nine ``aestheticScore_<v>`` columns (v = 1.0, 1.5, ..., 5.0) are vote counts per half-point
score; the image is ``<sessionId>/<imageName>`` under the images folder. Other columns (the attribute
means, ``semantic``, ...) are not interpreted.

``para-mean`` -- per-image crowd means on 1-5: an ``image`` column (``session143/iaa_pub10001_.jpg``,
relative to the images folder) and an ``aesthetic_mean`` column (the layout of the shared PARA sample's
``labels.csv``; ``quality_mean`` and the emotion counts are not interpreted).

Both give the image id ``<session>/<name without extension>``, so the two layouts of the same image
agree.

The 1-5 -> 1-10 mapping
-----------------------

A PARA score ``v`` sits at ``s(v) = 1 + (v - 1) * 9 / 4`` on the 1-10 scale (1 -> 1, 3 -> 5.5, 5 -> 10),
the same linear map as KonIQ's 5-point ratings (:data:`~piaa.data.labels.base.FIVE_TO_TEN`) and as
:func:`piaa.data.datasets.load_para` applies to individual ratings. Each half-point bin's votes are
split between the two nearest 1-10 bins ``floor(s)`` and ``ceil(s)`` in proportion to the distance
(:data:`NINE_TO_TEN`: 1.5 -> 2.125 gives bin 2: 0.875, bin 3: 0.125), so each bin keeps its mean at
``s(v)`` and, ``s`` being linear, the mapped distribution's mean is exactly ``s(mean)`` of the 1-5
histogram's mean. A mean-only row ``m`` becomes ``s(m)`` spread over the two nearest bins
(:func:`~piaa.data.labels.base.mean_to_distribution`), also mean-preserving. Rankings by mean are
unchanged; the shapes are not real 10-point histograms (EMD values are not comparable with AVA's).

Malformed input is a :class:`~piaa.data.labels.base.LabelFormatError` naming the line (a mean outside
[1, 5], a negative or non-numeric count, a short row, a repeated image); rows with zero votes go to
``LabelSet.skipped``.
"""

from __future__ import annotations

import csv
from os import PathLike
from pathlib import Path

import numpy as np

from piaa.data.labels.base import (
    LabelSet,
    _check_file,
    _error,
    check_rows,
    csv_error,
    histogram_labelset,
    histogram_to_ten,
    mean_to_distribution,
)
from piaa.errors import UsageError

__all__ = [
    "GIAA_BINS",
    "NINE_TO_TEN",
    "nine_bin_to_ten",
    "para_layout",
    "para_mean_to_ten",
    "read_para_labels",
    "to_ten",
]

GIAA_BINS: tuple[float, ...] = tuple(1.0 + 0.5 * i for i in range(9))
"""PARA's nine score bins, 1.0 to 5.0 by 0.5."""

GIAA_COLUMNS: tuple[str, ...] = tuple(f"aestheticscore_{v:.1f}" for v in GIAA_BINS)
MEAN_LAYOUT = ("image", "aesthetic_mean")
GIAA_LAYOUT = ("imagename", "sessionid", *GIAA_COLUMNS)


def to_ten(v: np.ndarray | float) -> np.ndarray | float:
    """A PARA score (1-5) on the 1-10 scale: ``1 + (v - 1) * 9 / 4``."""
    return 1.0 + (np.asarray(v, dtype=np.float64) - 1.0) * 9.0 / 4.0


def _nine_to_ten_matrix() -> np.ndarray:
    m = np.zeros((9, 10), dtype=np.float64)
    for i, v in enumerate(GIAA_BINS):
        m[i] = mean_to_distribution(float(to_ten(v)))
    m.setflags(write=False)
    return m


NINE_TO_TEN: np.ndarray = _nine_to_ten_matrix()
"""Row ``i`` is where PARA's score ``1 + 0.5 i`` lands on the 10 bins (see the module docstring)."""


def nine_bin_to_ten(p9: np.ndarray) -> np.ndarray:
    """PARA's 9-bin histograms (counts or probabilities, ``(..., 9)``) as normalised 1-10 distributions
    whose mean is exactly ``1 + (mean9 - 1) * 9 / 4``. Rows must be non-negative with a positive sum."""
    return histogram_to_ten(p9, NINE_TO_TEN)


def para_mean_to_ten(means: np.ndarray | float) -> np.ndarray:
    """1-5 crowd means as 1-10 distributions on the two nearest bins, mean ``1 + (m - 1) * 9 / 4``.
    Raises ``ValueError`` outside [1, 5]."""
    m = np.asarray(means, dtype=np.float64)
    if not np.all(np.isfinite(m)) or np.any((m < 1.0) | (m > 5.0)):
        raise UsageError("PARA means must lie in [1, 5]")
    return mean_to_distribution(np.clip(to_ten(m), 1.0, 10.0))


def para_layout(header: list[str]) -> str | None:
    """``"para-giaa"``, ``"para-mean"`` or None for a CSV header (names compared case-insensitively)."""
    names = {h.strip().lower() for h in header}
    if names.issuperset(GIAA_LAYOUT):
        return "para-giaa"
    if names.issuperset(MEAN_LAYOUT):
        return "para-mean"
    return None


def read_para_labels(path: str | PathLike[str]) -> LabelSet:
    """Read a PARA GIAA file or a per-image mean file (see the module docstring) as 1-10 distributions."""
    path = Path(path)
    _check_file(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise _error(path, "empty file: a header row is required", 1)
            names = [h.strip().lower() for h in header]
            fmt = para_layout(names)
            if fmt is None:
                raise _error(
                    path,
                    "not a PARA label file: expected columns imageName, sessionId, aestheticScore_1.0 .. "
                    "aestheticScore_5.0 (GIAA) or image, aesthetic_mean",
                    1,
                )
            if fmt == "para-giaa":
                img_col, sess_col = names.index("imagename"), names.index("sessionid")
                score_cols = [names.index(c) for c in GIAA_COLUMNS]
            else:
                img_col, sess_col = names.index("image"), -1
                score_cols = [names.index("aesthetic_mean")]
            from piaa.data.labels.table import _csv_rows  # table reads PARA's layouts through this module

            names = tuple(header[c].strip() for c in score_cols)
            linenos, ids, files, values = _csv_rows(
                path, reader, len(header), img_col, score_cols, names, folder_col=sess_col
            )
    except (UnicodeDecodeError, csv.Error) as exc:
        raise csv_error(path, exc) from None
    check_rows(path, ids, linenos)
    v = np.asarray(values, dtype=np.float64).reshape(len(ids), len(score_cols))
    if fmt == "para-mean":
        bad = np.flatnonzero((v[:, 0] < 1.0) | (v[:, 0] > 5.0))
        if bad.size:
            i = int(bad[0])
            raise _error(path, f"aesthetic_mean {v[i, 0]:g} is outside PARA's [1, 5]", linenos[i])
        return LabelSet(ids=ids, files=files, distributions=para_mean_to_ten(v[:, 0]), source_format=fmt)
    names = [header[c].strip() for c in score_cols]
    return histogram_labelset(path, fmt, v, names, linenos, ids, files, nine_bin_to_ten)
