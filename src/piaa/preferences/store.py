"""A person's pairwise preferences: storage, CSV exchange, contradiction rules, transitivity, sampling.

Rules (section 3.1 of the paper, plus what a long-lived store needs):

* A *pair* is ``(preferred, other)``: two strings naming images. Names are paths relative to the album
  folder with POSIX separators (``"2023/beach.jpg"``); images outside the album are named by their
  absolute path. A pair never names the same image twice.
* A *judgement* is one statement of a pair, with its time and source. Judgements are only ever
  appended (or the latest one removed by ``undo``), so their ids give their order.
* Contradictions: when the same two images were judged both ways, the **latest** statement wins (the
  person changed their mind) and the earlier opposite statements are ignored; exact repeats collapse
  into one pair. The effective pairs keep the order in which each pair of images was *first* judged, so
  appending statements never reorders earlier pairs. ``resolve`` also reports every contradiction.
* Transitivity is the paper's one step, exactly: from stated ``a>b`` and stated ``b>c`` infer ``a>c``.
  Inferred pairs are never used to infer more (``a>b, b>c, c>d`` gives ``a>c`` and ``b>d`` but not
  ``a>d``). A pair is not inferred if it, or its reverse, is stated, or if it names one image twice.
  When the stated pairs contain a cycle long enough to infer both ``a>c`` and ``c>a``, the evidence is
  ambiguous and both are dropped.
* The store is a per-user SQLite file in WAL mode with ``synchronous=FULL``: every ``add`` is its own
  transaction, and once it returns the judgement survives the process being killed and, with FULL, also
  an OS crash or power loss (judgements are minutes of a person's attention and come in at click speed,
  so one fsync per judgement is cheap insurance; NORMAL would only protect against process crashes).
* CSV files have the header ``preferred,other`` and one pair per row, in the order stated.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from piaa.io import atomic_write_text

__all__ = [
    "CSV_HEADER",
    "SCHEMA_VERSION",
    "Contradiction",
    "Judgement",
    "Pair",
    "PairSampler",
    "PreferenceError",
    "PreferenceStore",
    "enrich_transitive",
    "enrich_transitive_with_sources",
    "infer_transitive",
    "is_sqlite_file",
    "load_pairs",
    "load_statements",
    "normalize_name",
    "read_pairs_csv",
    "resolve",
    "write_pairs_csv",
]

Pair = tuple[str, str]

CSV_HEADER = ("preferred", "other")
SCHEMA_VERSION = 1
APPLICATION_ID = 0x50494141  # "PIAA": tells our stores apart from other SQLite files
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 30.0


class PreferenceError(ValueError):
    """A preference file or store that cannot be used as it is."""


@dataclass(frozen=True)
class Judgement:
    """One stated preference as stored; ``id`` increases with time and is never reused."""

    id: int
    preferred: str
    other: str
    created: float
    source: str

    @property
    def pair(self) -> Pair:
        return (self.preferred, self.other)


@dataclass(frozen=True)
class Contradiction:
    """Two images judged both ways; ``winner`` is the latest statement, the effective pair.

    ``winner_ref`` and ``overruled`` are judgement ids, or 0-based positions in the input when
    ``resolve`` was given plain pairs.
    """

    winner: Pair
    winner_ref: int
    overruled: tuple[int, ...]

    @property
    def loser(self) -> Pair:
        return (self.winner[1], self.winner[0])


# ------------------------------------------------------------------------------------------- names


def normalize_name(name: str, album: str | os.PathLike[str] | None = None) -> str:
    """Canonical image name, so the same file is one name whether given absolute or relative.

    Without an album, names are only cleaned (POSIX separators, no ``.`` parts). With one, relative
    names are taken relative to the album, and anything inside the album becomes album-relative while
    anything outside becomes absolute. Symlinks are not resolved, so names survive moving the album.
    """
    if not isinstance(name, str) or not name:
        raise PreferenceError(f"image name must be a non-empty string, got {name!r}")
    path = Path(name)
    if album is None:
        return path.as_posix()
    root = Path(os.path.abspath(album))
    full = Path(os.path.normpath(root / path))  # root / absolute == absolute
    try:
        return full.relative_to(root).as_posix()
    except ValueError:
        return full.as_posix()


# ---------------------------------------------------------------------------------- contradictions


def _check_pair(preferred: object, other: object) -> Pair:
    if not isinstance(preferred, str) or not isinstance(other, str) or not preferred or not other:
        raise ValueError(f"a pair needs two non-empty strings, got ({preferred!r}, {other!r})")
    if preferred == other:
        raise ValueError(f"an image cannot be preferred over itself: {preferred!r}")
    return (preferred, other)


def resolve(judgements: Iterable[Judgement | Pair]) -> tuple[list[Pair], list[Contradiction]]:
    """Apply the latest-statement-wins rule; returns effective pairs and the contradictions found.

    Judgements are taken in the order given (for a store: id order). Self-pairs raise ``ValueError``.
    """
    first_seen: dict[frozenset[str], int] = {}  # unordered pair -> rank of its first mention
    latest: dict[frozenset[str], tuple[Pair, int]] = {}  # unordered pair -> (pair, ref) latest
    history: dict[frozenset[str], list[tuple[Pair, int]]] = {}
    for position, item in enumerate(judgements):
        if isinstance(item, Judgement):
            pair, ref = _check_pair(item.preferred, item.other), item.id
        else:
            pair, ref = _check_pair(*item), position
        key = frozenset(pair)
        first_seen.setdefault(key, len(first_seen))
        latest[key] = (pair, ref)
        history.setdefault(key, []).append((pair, ref))
    pairs: list[Pair] = []
    contradictions: list[Contradiction] = []
    for key in first_seen:  # dicts keep insertion order == order of first mention
        winner, winner_ref = latest[key]
        pairs.append(winner)
        overruled = tuple(ref for pair, ref in history[key] if pair != winner)
        if overruled:
            contradictions.append(Contradiction(winner, winner_ref, overruled))
    return pairs, contradictions


# ------------------------------------------------------------------------------------ transitivity


def infer_transitive(pairs: Iterable[Pair]) -> dict[Pair, tuple[str, ...]]:
    """Pairs implied by two stated pairs, each mapped to the images ``b`` that support it (sorted).

    Inference never uses inferred pairs, so every inferred ``a>c`` rests on stated ``a>b`` and ``b>c``
    for each listed ``b`` and on nothing else.
    """
    stated: dict[Pair, None] = {}
    for p in pairs:
        stated.setdefault(_check_pair(*p))
    successors: dict[str, list[str]] = {}
    for a, b in stated:
        successors.setdefault(a, []).append(b)
    support: dict[Pair, set[str]] = {}
    for a, b in stated:
        for c in successors.get(b, ()):
            if a == c or (a, c) in stated or (c, a) in stated:
                continue
            support.setdefault((a, c), set()).add(b)
    ambiguous = {p for p in support if (p[1], p[0]) in support}
    return {p: tuple(sorted(bs)) for p, bs in sorted(support.items()) if p not in ambiguous}


def enrich_transitive(pairs: Iterable[Pair]) -> list[Pair]:
    """Stated pairs (deduplicated, in order) followed by the one-step transitive pairs, sorted."""
    return [pair for pair, _ in enrich_transitive_with_sources(pairs)]


def enrich_transitive_with_sources(pairs: Iterable[Pair]) -> list[tuple[Pair, tuple[Pair, ...]]]:
    """Like ``enrich_transitive``, with the stated pairs behind each pair, so training can weigh them.

    A stated pair has no sources (``()``); an inferred ``a>c`` lists ``(a, b), (b, c)`` for each
    supporting ``b``.
    """
    stated = list(dict.fromkeys(_check_pair(*p) for p in pairs))
    out: list[tuple[Pair, tuple[Pair, ...]]] = [(p, ()) for p in stated]
    for (a, c), middles in infer_transitive(stated).items():
        out.append(((a, c), tuple(itertools.chain.from_iterable(((a, b), (b, c)) for b in middles))))
    return out


# ---------------------------------------------------------------------------------------------- CSV


def read_pairs_csv(path: str | os.PathLike[str], album: str | os.PathLike[str] | None = None) -> list[Pair]:
    """All rows of a preference CSV in file order (repeats and contradictions kept; see ``resolve``).

    Fails on the first bad line with ``PreferenceError("{path}:{line}: ...")`` so the file can be fixed.
    A UTF-8 byte order mark (as spreadsheets write) and blank lines are accepted.
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PreferenceError(f"{path}:{line}: not valid UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[Pair] = []
    try:
        header = next(reader, None)
        if header is None:
            raise PreferenceError(f"{path}:1: empty file, expected header 'preferred,other'")
        if tuple(h.strip() for h in header) != CSV_HEADER:
            got = ",".join(header)
            raise PreferenceError(f"{path}:{reader.line_num}: expected header 'preferred,other', got {got!r}")
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != 2:
                raise PreferenceError(f"{path}:{line}: expected 2 fields (preferred,other), got {len(row)}")
            try:
                rows.append(_check_pair(normalize_name(row[0], album), normalize_name(row[1], album)))
            except ValueError as exc:
                raise PreferenceError(f"{path}:{line}: {exc}") from None
    except csv.Error as exc:
        raise PreferenceError(f"{path}:{reader.line_num}: malformed CSV: {exc}") from None
    return rows


def _export_name(name: str, album: str | os.PathLike[str] | None) -> str:
    return name if album is None else normalize_name(name, album)


def write_pairs_csv(
    path: str | os.PathLike[str], pairs: Iterable[Pair], album: str | os.PathLike[str] | None = None
) -> None:
    """Write pairs atomically: readers see the old file or the complete new one, never a torn one."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for preferred, other in pairs:
        writer.writerow((_export_name(preferred, album), _export_name(other, album)))
    atomic_write_text(path, buf.getvalue())


def is_sqlite_file(path: str | os.PathLike[str]) -> bool:
    """Detect by content, not by suffix, because stores get renamed and copied around."""
    with open(path, "rb") as fh:
        return fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def load_statements(path: str | os.PathLike[str], album: str | os.PathLike[str] | None = None) -> list[Pair]:
    """Every stated pair, in order, unresolved, from a preference CSV or a ``PreferenceStore`` file."""
    if not os.path.isfile(path):
        raise PreferenceError(f"{path}: no such preferences file")
    if is_sqlite_file(path):
        with PreferenceStore(path) as store:
            pairs = [j.pair for j in store.judgements()]
        return (
            pairs
            if album is None
            else [(normalize_name(a, album), normalize_name(b, album)) for a, b in pairs]
        )
    return read_pairs_csv(path, album)


def load_pairs(path: str | os.PathLike[str], album: str | os.PathLike[str] | None = None) -> list[Pair]:
    """Effective pairs (contradictions resolved) from a preference CSV or a ``PreferenceStore`` file."""
    return resolve(load_statements(path, album))[0]


# -------------------------------------------------------------------------------------------- store


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Take the write lock at BEGIN: a deferred transaction that later writes can fail with "database is
    locked" without waiting, because SQLite cannot let it wait without risking deadlock."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


_SCHEMA = """
CREATE TABLE judgements (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    preferred TEXT NOT NULL,
    other     TEXT NOT NULL,
    created   REAL NOT NULL,
    source    TEXT NOT NULL DEFAULT 'user',
    CHECK (preferred <> other)
)
"""


class PreferenceStore:
    """One user's judgements in a SQLite file, safe to share between threads and processes.

    One connection guarded by a lock serves all threads of a process (a FastAPI app's request
    threads), since SQLite serialises writers anyway. Between processes, writes take the database
    write lock up front (``BEGIN IMMEDIATE``) and wait up to ``timeout`` seconds for it rather than
    failing. ``AUTOINCREMENT`` keeps ids from being reused after ``undo``, so id order is time order.
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        try:
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn

    @staticmethod
    def _setup(conn: sqlite3.Connection) -> None:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise PreferenceError(f"not a usable SQLite file: {exc}") from None
        if str(mode).lower() != "wal":
            raise PreferenceError(f"could not switch to WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous=FULL")
        with _transaction(conn):  # also serialises two processes creating the schema at once
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            if version == 0:
                if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise PreferenceError("SQLite file has tables but is not a piaa preference store")
                conn.execute(_SCHEMA)
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif app_id != APPLICATION_ID:
                raise PreferenceError("SQLite file is not a piaa preference store")
            elif version > SCHEMA_VERSION:
                raise PreferenceError(
                    f"preference store has schema version {version}; this piaa reads up to {SCHEMA_VERSION}"
                )
            # (future schema migrations from older versions go here, inside this transaction)

    # -- plumbing ---------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError(f"preference store {self.path} is closed")
        return self._conn

    def _write(self, statements: Iterable[tuple[str, tuple[object, ...]]]) -> list[sqlite3.Cursor]:
        """Run statements as one transaction so a batch is either fully there or not at all."""
        with self._lock:
            conn = self._connection()
            with _transaction(conn):
                return [conn.execute(sql, params) for sql, params in statements]

    # -- API ----------------------------------------------------------------------------------------

    def add(self, preferred: str, other: str, source: str = "user") -> int:
        """Record one judgement durably (committed before returning); returns its id.

        Names are cleaned with ``normalize_name`` so CSV round trips give back the same names.
        """
        preferred, other = _check_pair(normalize_name(preferred), normalize_name(other))
        (cur,) = self._write(
            [
                (
                    "INSERT INTO judgements (preferred, other, created, source) VALUES (?, ?, ?, ?)",
                    (preferred, other, time.time(), source),
                )
            ]
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def undo(self) -> Judgement | None:
        """Remove and return the most recent judgement (``None`` if there is none)."""
        with self._lock:
            conn = self._connection()
            with _transaction(conn):  # read and delete under one write lock: no writer in between
                row = conn.execute(
                    "SELECT id, preferred, other, created, source FROM judgements ORDER BY id DESC LIMIT 1"
                ).fetchone()
                if row is not None:
                    conn.execute("DELETE FROM judgements WHERE id = ?", (row[0],))
        return None if row is None else Judgement(*row)

    def judgements(self) -> list[Judgement]:
        """Every stored judgement, oldest first."""
        with self._lock:
            rows = (
                self._connection()
                .execute("SELECT id, preferred, other, created, source FROM judgements ORDER BY id")
                .fetchall()
            )
        return [Judgement(*row) for row in rows]

    def pairs(self) -> list[Pair]:
        """Effective pairs: latest statement wins, repeats collapsed (module docstring)."""
        return resolve(self.judgements())[0]

    def contradictions(self) -> list[Contradiction]:
        """Pairs the person judged both ways, for showing them what was overridden."""
        return resolve(self.judgements())[1]

    def __len__(self) -> int:
        """Number of stored judgements (statements, not effective pairs)."""
        with self._lock:
            return int(self._connection().execute("SELECT count(*) FROM judgements").fetchone()[0])

    def import_csv(self, path: str | os.PathLike[str], album: str | os.PathLike[str] | None = None) -> int:
        """Append a CSV's rows as new judgements, all or nothing; returns how many.

        Imported rows count as the newest statements, so they win contradictions with what is already
        stored. Importing the same file twice adds rows but leaves ``pairs()`` unchanged.
        """
        rows = read_pairs_csv(path, album)  # validate everything before writing anything
        now = time.time()
        source = f"csv:{Path(path).name}"
        sql = "INSERT INTO judgements (preferred, other, created, source) VALUES (?, ?, ?, ?)"
        self._write((sql, (a, b, now, source)) for a, b in rows)
        return len(rows)

    def export_csv(
        self,
        path: str | os.PathLike[str],
        album: str | os.PathLike[str] | None = None,
        resolved: bool = False,
    ) -> None:
        """Write all judgements in order (or only the effective pairs if ``resolved``), atomically.

        Exporting every statement keeps the history, so importing the file elsewhere yields the same
        ``pairs()``. With an album, names inside it are written relative to it, others absolute.
        """
        pairs = self.pairs() if resolved else [j.pair for j in self.judgements()]
        write_pairs_csv(path, pairs, album)

    def close(self) -> None:
        """Close the connection; further use raises ``ValueError``. Closing twice is fine."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> PreferenceStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"PreferenceStore({str(self.path)!r}, {state})"


# ------------------------------------------------------------------------------------------ sampler


class PairSampler:
    """Random unordered pairs of album images for the person to judge, never the same pair twice.

    Pairs are drawn by rejection sampling while less than half of all ``n*(n-1)/2`` pairs are used
    (at most two tries per draw on average, no memory beyond the used set), and from a shuffled list
    of the remaining pairs once it gets denser, so even exhausting a small album is fast. Which image
    comes first is random, so a UI showing them left/right is not biased. Same seed, same draws.
    """

    def __init__(self, items: Sequence[str], seed: int | None = None, seen: Iterable[Pair] = ()) -> None:
        self._items = list(items)
        self._index = {name: i for i, name in enumerate(self._items)}
        if len(self._index) != len(self._items):
            dupes = sorted({x for x in self._items if self._items.count(x) > 1})[:5]
            raise ValueError(f"items contain duplicates, e.g. {dupes}")
        n = len(self._items)
        self._total = n * (n - 1) // 2
        self._used: set[int] = set()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._pool: list[int] | None = None  # remaining keys in dense mode, popped from the end
        for a, b in seen:
            self.mark_seen(a, b)

    def _key(self, i: int, j: int) -> int:
        return min(i, j) * len(self._items) + max(i, j)

    @property
    def total(self) -> int:
        return self._total

    @property
    def remaining(self) -> int:
        """Pairs not yet drawn or seen."""
        return self._total - len(self._used)

    def mark_seen(self, a: str, b: str) -> bool:
        """Exclude a pair judged elsewhere; names not in the album are ignored. True if newly excluded."""
        i, j = self._index.get(a), self._index.get(b)
        if i is None or j is None or i == j:
            return False
        key = self._key(i, j)
        with self._lock:
            if key in self._used:
                return False
            self._used.add(key)
            return True

    def next(self) -> Pair | None:
        """A fresh pair, or ``None`` once every pair has been used."""
        n = len(self._items)
        with self._lock:
            if len(self._used) >= self._total:
                return None
            if self._pool is None and 2 * len(self._used) < self._total:
                while True:
                    i = self._rng.randrange(n)
                    j = self._rng.randrange(n - 1)
                    j += j >= i
                    key = self._key(i, j)
                    if key not in self._used:
                        break
            else:
                if self._pool is None:
                    self._pool = [
                        k
                        for k in (self._key(i, j) for i in range(n) for j in range(i + 1, n))
                        if k not in self._used
                    ]
                    self._rng.shuffle(self._pool)
                while True:  # pairs marked seen after the pool was built are skipped lazily
                    key = self._pool.pop()
                    if key not in self._used:
                        break
                i, j = divmod(key, n)
                if self._rng.random() < 0.5:
                    i, j = j, i
            self._used.add(key)
        return (self._items[i], self._items[j])

    def __iter__(self) -> Iterator[Pair]:
        while (pair := self.next()) is not None:
            yield pair
