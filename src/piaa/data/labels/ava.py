"""The ``AVA.txt`` reader (see :mod:`piaa.data.labels`), vectorised with numpy for AVA's 255k rows."""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path

import numpy as np

from piaa.data.labels.base import LabelSet, _check_file, _check_unique_ids, _error

_AVA_COLUMNS = 15
_AVA_COUNTS = slice(2, 12)
_INT_RE = re.compile(r"[+-]?[0-9]+")
_MAX_COUNT = 2**53  # beyond this, counts are not exact as floats and the file is surely corrupt


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
