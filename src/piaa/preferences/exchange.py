"""Preferences as files: the CSV exchange format, and loading from either a CSV or a store.

CSV files have the header ``preferred,other`` and one pair per row, in the order stated. A third
column ``source`` (``collect``, ``cull``, ...) is optional: ``piaa prefs export`` writes it so that an
import elsewhere keeps where each judgement came from; two-column files read as before.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path

from piaa.errors import file_error
from piaa.io import atomic_write_text
from piaa.preferences.rules import Pair, PreferenceError, check_pair, normalize_name, resolve

__all__ = [
    "CSV_HEADER",
    "CSV_SOURCE",
    "is_sqlite_file",
    "load_pairs",
    "load_sources",
    "load_statements",
    "read_judgements_csv",
    "read_pairs_csv",
    "write_pairs_csv",
]

CSV_HEADER = ("preferred", "other")
CSV_SOURCE = "source"  # the optional third column
SQLITE_MAGIC = b"SQLite format 3\x00"


def read_pairs_csv(path: str | os.PathLike[str], album: str | os.PathLike[str] | None = None) -> list[Pair]:
    """All rows of a preference CSV in file order (repeats and contradictions kept; see ``resolve``).

    Fails on the first bad line with ``PreferenceError("{path}:{line}: ...")`` so the file can be fixed.
    A UTF-8 byte order mark (as spreadsheets write), blank lines and spaces around names
    (``preferred, other``) are accepted; names go through ``normalize_name``. A ``source`` column is
    read and ignored here (:func:`read_judgements_csv` returns it).
    """
    return [(a, b) for a, b, _ in read_judgements_csv(path, album)]


def read_judgements_csv(
    path: str | os.PathLike[str], album: str | os.PathLike[str] | None = None
) -> list[tuple[str, str, str | None]]:
    """Rows ``(preferred, other, source)`` of a preference CSV; ``source`` is None in a two-column file
    (header ``preferred,other``) and for an empty cell of the ``source`` column. Errors as
    :func:`read_pairs_csv`."""
    if os.path.isdir(path):
        raise file_error(PreferenceError, path, "is a folder, not a preferences CSV")
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise file_error(PreferenceError, path, f"cannot read ({exc.strerror or exc})") from exc
    if data.startswith(SQLITE_MAGIC):
        raise file_error(
            PreferenceError, path,
            "is a preference store (SQLite), not a CSV: `piaa prefs export` it to a CSV first, or give it "
            "to --prefs as it is",
        )  # fmt: skip
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PreferenceError(f"{path}:{line}: not valid UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, skipinitialspace=True)
    rows: list[tuple[str, str, str | None]] = []
    try:
        header = next(reader, None)
        if header is None:
            raise PreferenceError(f"{path}:1: empty file, expected header 'preferred,other'")
        names = tuple(h.strip() for h in header)
        if names not in (CSV_HEADER, (*CSV_HEADER, CSV_SOURCE)):
            got = ",".join(header)
            raise PreferenceError(f"{path}:{reader.line_num}: expected header 'preferred,other', got {got!r}")
        width = len(names)
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != width:
                what = "preferred,other" + (",source" if width == 3 else "")
                raise PreferenceError(f"{path}:{line}: expected {width} fields ({what}), got {len(row)}")
            try:
                a, b = check_pair(normalize_name(row[0], album), normalize_name(row[1], album))
            except ValueError as exc:
                raise PreferenceError(f"{path}:{line}: {exc}") from None
            rows.append((a, b, (row[2].strip() or None) if width == 3 else None))
    except csv.Error as exc:
        raise PreferenceError(f"{path}:{reader.line_num}: malformed CSV: {exc}") from None
    return rows


def _export_name(name: str, album: str | os.PathLike[str] | None) -> str:
    return name if album is None else normalize_name(name, album)


def write_pairs_csv(
    path: str | os.PathLike[str],
    pairs: Iterable[Pair],
    album: str | os.PathLike[str] | None = None,
    sources: Iterable[str] | None = None,
) -> None:
    """Write pairs atomically: readers see the old file or the complete new one, never a torn one.
    With ``sources`` (one per pair) the file gets the ``source`` column."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if sources is None:
        writer.writerow(CSV_HEADER)
        for preferred, other in pairs:
            writer.writerow((_export_name(preferred, album), _export_name(other, album)))
    else:
        writer.writerow((*CSV_HEADER, CSV_SOURCE))
        for (preferred, other), source in zip(pairs, sources, strict=True):
            writer.writerow((_export_name(preferred, album), _export_name(other, album), source))
    atomic_write_text(path, buf.getvalue())


def is_sqlite_file(path: str | os.PathLike[str]) -> bool:
    """Detect by content, not by suffix, because stores get renamed and copied around. An unreadable
    file is ``PreferenceError`` naming it."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError as exc:
        raise file_error(PreferenceError, path, f"cannot read ({exc.strerror or exc})") from exc


def load_statements(path: str | os.PathLike[str], album: str | os.PathLike[str] | None = None) -> list[Pair]:
    """Every stated pair, in order, unresolved, from a preference CSV or a ``PreferenceStore`` file.

    A store is opened read-only: this never waits for (or blocks) a process writing to it, and a store
    locked exclusively is a one-line ``PreferenceError`` naming it after a couple of seconds. Names are
    normalised (``normalize_name``, relative to ``album`` when given).
    """
    from piaa.preferences.store import PreferenceStore  # the store imports this module (CSV methods)

    if os.path.isdir(path):
        raise file_error(
            PreferenceError, path, "is a folder, not a preferences file (a CSV or a preference store)"
        )
    if not os.path.isfile(path):
        raise file_error(PreferenceError, path, "no such preferences file")
    if is_sqlite_file(path):
        with PreferenceStore(path, readonly=True) as store:
            pairs = [j.pair for j in store.judgements()]
        return [(normalize_name(a, album), normalize_name(b, album)) for a, b in pairs]
    return read_pairs_csv(path, album)


def load_pairs(path: str | os.PathLike[str], album: str | os.PathLike[str] | None = None) -> list[Pair]:
    """Effective pairs (contradictions resolved) from a preference CSV or a ``PreferenceStore`` file."""
    return resolve(load_statements(path, album))[0]


def load_sources(path: str | os.PathLike[str]) -> dict[str, int]:
    """Judgements per source (``collect``, ``cull``, ...), most first, from a store or a CSV (a CSV
    without a ``source`` column counts as ``csv``). Opens a store read-only, as :func:`load_statements`."""
    from collections import Counter

    from piaa.preferences.store import PreferenceStore

    if not os.path.isfile(path):
        raise PreferenceError(f"{path}: no such preferences file")
    if is_sqlite_file(path):
        with PreferenceStore(path, readonly=True) as store:
            stored = store.sources()
    else:
        stored = Counter(source or "csv" for _, _, source in read_judgements_csv(path))
    counts: Counter[str] = Counter()
    for source, n in stored.items():  # the page's tabs ("collect:<tab id>") count as collect
        counts[source.split(":", 1)[0] if source.startswith("collect:") else source] += n
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
