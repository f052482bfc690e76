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
  (:data:`piaa.data.images.IMAGE_EXTENSIONS`) is the file name and the id is the value without
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

PARA (:mod:`piaa.data.labels.para`) -- a CSV whose header is PARA's official GIAA layout
(``imageName, sessionId, aestheticScore_1.0 .. aestheticScore_5.0``: nine vote counts per half-point
score, source format ``para-giaa``) or a per-image mean file (``image, aesthetic_mean`` on 1-5,
``para-mean``) is read as PARA: a score ``v`` on 1-5 sits at ``1 + (v - 1) * 9 / 4`` on 1-10, the same
linear map as above, each half-point bin split between the two nearest 1-10 bins (:data:`NINE_TO_TEN`)
and a mean spread over the two bins nearest its mapped value; both keep the mapped mean exact.

:func:`read_labels` picks the reader: ``.csv`` files, or files whose first line contains a comma,
are CSV (PARA's layouts recognised by their header); everything else is AVA.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from piaa.data.labels.ava import read_ava
from piaa.data.labels.base import (
    FIVE_TO_TEN,
    SCORES,
    LabelFormatError,
    LabelSet,
    _check_file,
    five_bin_to_ten,
    mean_score,
    mean_to_distribution,
)
from piaa.data.labels.para import NINE_TO_TEN, nine_bin_to_ten, para_mean_to_ten, read_para_labels
from piaa.data.labels.table import read_csv_labels
from piaa.errors import UsageError

__all__ = [
    "FIVE_TO_TEN",
    "SCORES",
    "LabelFormatError",
    "LabelSet",
    "NINE_TO_TEN",
    "five_bin_to_ten",
    "mean_score",
    "mean_to_distribution",
    "nine_bin_to_ten",
    "para_mean_to_ten",
    "read_ava",
    "read_csv_labels",
    "read_labels",
    "read_para_labels",
]


def read_labels(path: str | PathLike[str], fmt: str = "auto") -> LabelSet:
    """Read a label file as ``fmt`` ("ava", "csv", "para"), or guess: ``.csv`` or a comma on line 1 means
    CSV, and a CSV with PARA's header is PARA."""
    if fmt not in ("auto", "ava", "csv", "para"):
        raise UsageError(f"unknown label format {fmt!r}: expected 'auto', 'ava', 'csv' or 'para'")
    p = Path(path)
    _check_file(p)
    if fmt == "auto":
        with p.open("rb") as f:
            first = f.readline()
        fmt = "csv" if p.suffix.lower() == ".csv" or b"," in first else "ava"
    if fmt == "para":
        return read_para_labels(p)
    return read_csv_labels(p) if fmt == "csv" else read_ava(p)
