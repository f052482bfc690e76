"""The per-user preference store: judgements in a SQLite file, durable from the moment ``add`` returns.

The store is a SQLite file in WAL mode with ``synchronous=FULL``: every ``add`` is its own transaction,
and once it returns the judgement survives the process being killed and, with FULL, also an OS crash or
power loss (judgements are minutes of a person's attention and come in at click speed, so one fsync per
judgement is cheap insurance; NORMAL would only protect against process crashes). The rules the stored
judgements follow (contradictions, transitivity) are in :mod:`piaa.preferences.rules`.

Reading never takes a lock a writer could be holding: reads go through a read-only connection
(``mode=ro``), which in WAL mode neither waits for writers nor needs a checkpoint, and the read-write
connection is only opened by the first write. So ``piaa prefs show`` works while ``piaa collect`` is
writing, and a store that is really stuck (another process holding it exclusively) is a one-line
``PreferenceError`` naming the file after ``READ_TIMEOUT_S``, not a 30-second wait and a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from piaa.errors import file_error
from piaa.preferences.exchange import read_judgements_csv, write_pairs_csv
from piaa.preferences.rules import (
    Contradiction,
    Judgement,
    Pair,
    PreferenceError,
    check_pair,
    normalize_name,
    resolve,
)

__all__ = ["BUSY_TIMEOUT_S", "READ_TIMEOUT_S", "SCHEMA_VERSION", "PreferenceStore"]

SCHEMA_VERSION = 1
APPLICATION_ID = 0x50494141  # "PIAA": tells our stores apart from other SQLite files
BUSY_TIMEOUT_S = 30.0  # writers wait this long for the write lock (others hold it for milliseconds)
READ_TIMEOUT_S = 2.0  # readers are only ever blocked by an exclusive lock: do not wait long for it
_FULL_BELOW = 256 * 1024  # free bytes under which an I/O error while writing is taken for a full disk

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

# SQLite primary result codes -> what the person is told (the file name goes in front).
_PROBLEMS = {
    "SQLITE_BUSY": "the preference store is locked by another process; try again when it is done",
    "SQLITE_LOCKED": "the preference store is locked by another process; try again when it is done",
    "SQLITE_NOTADB": "not a piaa preference store (not an SQLite database)",
    "SQLITE_CORRUPT": "the preference store is corrupt",
    "SQLITE_FULL": "cannot write the preference store: the disk is full",
    "SQLITE_READONLY": "cannot write the preference store: it or its folder is read-only",
    "SQLITE_CANTOPEN": "cannot open the preference store",
    "SQLITE_PERM": "cannot open the preference store: permission denied",
    "SQLITE_AUTH": "cannot open the preference store: permission denied",
}


def _primary(name: str | None) -> str:
    """``SQLITE_BUSY_SNAPSHOT`` -> ``SQLITE_BUSY``: extended codes share their primary's meaning."""
    if not name:
        return ""
    parts = name.split("_")
    return "_".join(parts[:2])


def disk_full(path: str | os.PathLike[str]) -> bool:
    """Whether the file system holding ``path`` (or its folder) has (almost) no room left: SQLite
    reports a full disk met while growing its WAL or shared memory as a plain I/O error."""
    folder = Path(path).parent if not Path(path).is_dir() else Path(path)
    try:
        return shutil.disk_usage(folder).free < _FULL_BELOW
    except OSError:
        return False


def folder_writable(path: str | os.PathLike[str]) -> bool:
    """Whether files can be made beside ``path`` (a read-only folder or mount: no; SQLite then cannot
    make the ``-shm`` file that even a WAL reader needs)."""
    return os.access(Path(os.path.abspath(path)).parent, os.W_OK)


def _problem(exc: BaseException, path: str | os.PathLike[str] | None = None) -> str:
    if isinstance(exc, sqlite3.Error):
        name = _primary(getattr(exc, "sqlite_errorname", None))
        if name in ("SQLITE_IOERR", "SQLITE_FULL") and path is not None and disk_full(path):
            return "cannot write the preference store: the disk is full"
        known = _PROBLEMS.get(name)
        return f"{known} ({exc})" if known else f"SQLite error: {exc}"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "cannot write: the disk is full"
    if isinstance(exc, OSError):
        return f"cannot access the file ({exc.strerror or exc})"
    return str(exc)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Take the write lock at BEGIN: a deferred transaction that later writes can fail with "database is
    locked" without waiting, because SQLite cannot let it wait without risking deadlock."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")  # a full disk fails here: roll back below, keep the connection usable
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class PreferenceStore:
    """One user's judgements in a SQLite file, safe to share between threads and processes.

    A missing file is created (unless ``readonly``); an existing one is only checked, read-only, until
    the first write. One read-only and (once written to) one read-write connection, guarded by a lock,
    serve all threads of a process (a FastAPI app's request threads), since SQLite serialises writers
    anyway. Between processes, writes take the database write lock up front (``BEGIN IMMEDIATE``) and
    wait up to ``timeout`` seconds for it; reads wait at most ``READ_TIMEOUT_S``. ``AUTOINCREMENT``
    keeps ids from being reused after ``undo``, so id order is time order.

    Every failure of the file (locked, not a store, corrupt, disk full, read-only, missing with
    ``readonly``) raises ``PreferenceError("<path>: <problem>")``; a closed store raises ``ValueError``.
    """

    def __init__(
        self, path: str | os.PathLike[str], timeout: float = BUSY_TIMEOUT_S, *, readonly: bool = False
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._timeout = timeout
        self._lock = threading.RLock()
        self._closed = False
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._snapshot: str | None = None  # a temporary copy read instead of a store in a read-only folder
        try:
            if self.path.is_dir():
                raise file_error(PreferenceError, self.path, "is a folder, not a preference store")
            if self._is_new() and readonly:
                raise file_error(PreferenceError, self.path, "no such preference store")
            if self._is_new() and not self.path.parent.is_dir():
                raise file_error(
                    PreferenceError, self.path, "cannot create the store: its folder does not exist"
                )
            if self._is_new() or self._check(self._read_connection()):
                self._write_connection()  # creates the file or its schema
        except BaseException:
            self.close()
            raise

    # -- plumbing ---------------------------------------------------------------------------------

    def _error(self, exc: BaseException) -> PreferenceError:
        return file_error(PreferenceError, self.path, _problem(exc, self.path))

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """SQLite and OS errors become one line naming the file (the lock is held by the caller)."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise self._error(exc) from exc

    def _is_new(self) -> bool:
        try:
            return self.path.stat().st_size == 0
        except FileNotFoundError:
            return True
        except OSError as exc:
            raise self._error(exc) from exc

    def _read_connection(self) -> sqlite3.Connection:
        if self._closed:
            raise ValueError(f"preference store {self.path} is closed")
        if self._reader is None:
            with self._errors():
                uri = self._read_uri()
                self._reader = sqlite3.connect(
                    uri, uri=True, timeout=min(self._timeout, READ_TIMEOUT_S), isolation_level=None,
                    check_same_thread=False,
                )  # fmt: skip
        return self._reader

    def _read_uri(self) -> str:
        """``mode=ro``, which in WAL mode still makes the ``-shm`` file beside the store. Where nothing
        can be made there (a read-only folder or mount) and the store was opened ``readonly``: the file
        itself as ``immutable`` when its WAL is empty (everything is in the file), else a copy of the
        file and its WAL in a temporary folder (``immutable`` would ignore the WAL's judgements)."""
        path = os.path.abspath(self.path)
        if not self.readonly or folder_writable(path):
            return "file:" + quote(path) + "?mode=ro"
        wal = path + "-wal"
        if not os.path.exists(wal) or os.path.getsize(wal) == 0:
            return "file:" + quote(path) + "?mode=ro&immutable=1"
        self._snapshot = tempfile.mkdtemp(prefix="piaa-store-")
        copy = os.path.join(self._snapshot, "store.sqlite")
        shutil.copyfile(path, copy)
        shutil.copyfile(wal, copy + "-wal")
        return "file:" + quote(copy)

    def _write_connection(self) -> sqlite3.Connection:
        if self._closed:
            raise ValueError(f"preference store {self.path} is closed")
        if self.readonly:
            raise file_error(PreferenceError, self.path, "the preference store was opened read-only")
        if self._writer is None:
            with self._errors():
                conn = sqlite3.connect(
                    self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
                )
                try:
                    self._setup(conn)
                except BaseException:
                    conn.close()
                    raise
            self._writer = conn
        return self._writer

    def _check(self, conn: sqlite3.Connection) -> bool:
        """Refuse files that are not a piaa store, without writing; True if the schema is still to be made."""
        with self._errors():
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        return self._check_header(version, app_id, tables, creating=not self.readonly)

    def _check_header(self, version: int, app_id: int, tables: int, *, creating: bool) -> bool:
        """True if the schema has to be created (an empty SQLite file and ``creating``)."""
        if version == 0 and tables == 0 and creating:
            return True
        if version == 0 and tables:
            raise file_error(
                PreferenceError, self.path, "SQLite file has tables but is not a piaa preference store"
            )
        if app_id != APPLICATION_ID:
            raise file_error(PreferenceError, self.path, "SQLite file is not a piaa preference store")
        if version > SCHEMA_VERSION:
            problem = f"preference store has schema version {version}; this piaa reads up to {SCHEMA_VERSION}"
            raise file_error(PreferenceError, self.path, problem)
        return False

    def _setup(self, conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise file_error(PreferenceError, self.path, f"could not switch to WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous=FULL")
        with _transaction(conn):  # also serialises two processes creating the schema at once
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if self._check_header(version, app_id, tables, creating=True):
                conn.execute(_SCHEMA)
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            # (future schema migrations from older versions go here, inside this transaction)

    def _write(self, statements: Iterable[tuple[str, tuple[object, ...]]]) -> list[sqlite3.Cursor]:
        """Run statements as one transaction so a batch is either fully there or not at all."""
        with self._lock:
            conn = self._write_connection()
            with self._errors(), _transaction(conn):
                return [conn.execute(sql, params) for sql, params in statements]

    def _read(self, sql: str) -> list[tuple]:
        with self._lock:
            conn = self._read_connection()
            with self._errors():
                return conn.execute(sql).fetchall()

    # -- API ----------------------------------------------------------------------------------------

    def add(self, preferred: str, other: str, source: str = "user") -> int:
        """Record one judgement durably (committed before returning); returns its id.

        Names are cleaned with ``normalize_name`` so CSV round trips give back the same names.
        """
        preferred, other = check_pair(normalize_name(preferred), normalize_name(other))
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

    def add_many(self, pairs: Iterable[Pair], source: str = "user") -> list[int]:
        """Record several judgements as one transaction (one click of the review page stating a pick
        over three frames): all of them are durable when this returns, or none is. Returns their ids."""
        checked = [check_pair(normalize_name(a), normalize_name(b)) for a, b in pairs]
        now = time.time()
        sql = "INSERT INTO judgements (preferred, other, created, source) VALUES (?, ?, ?, ?)"
        cursors = self._write((sql, (a, b, now, source)) for a, b in checked)
        return [int(c.lastrowid) for c in cursors if c.lastrowid is not None]

    def sources(self) -> dict[str, int]:
        """How many judgements came from each source (``collect``, ``cull``, ``csv:<file>``, ``user``),
        most first."""
        rows = self._read("SELECT source, count(*) FROM judgements GROUP BY source ORDER BY 2 DESC, 1")
        return {str(source): int(n) for source, n in rows}

    def undo(self, source: str | None = None) -> Judgement | None:
        """Remove and return the most recent judgement (``None`` if there is none); with ``source``,
        the most recent one stated from there (a web page's tab: never another tab's)."""
        where, params = ("WHERE source = ?", (source,)) if source is not None else ("", ())
        with self._lock:
            conn = self._write_connection()
            with self._errors(), _transaction(conn):  # read and delete under one write lock
                row = conn.execute(
                    f"SELECT id, preferred, other, created, source FROM judgements {where} "
                    "ORDER BY id DESC LIMIT 1",
                    params,
                ).fetchone()
                if row is not None:
                    conn.execute("DELETE FROM judgements WHERE id = ?", (row[0],))
        return None if row is None else Judgement(*row)

    def judgements(self) -> list[Judgement]:
        """Every stored judgement, oldest first (read-only: never waits for a writer)."""
        rows = self._read("SELECT id, preferred, other, created, source FROM judgements ORDER BY id")
        return [Judgement(*row) for row in rows]

    def pairs(self) -> list[Pair]:
        """Effective pairs: latest statement wins, repeats collapsed (:mod:`piaa.preferences.rules`)."""
        return resolve(self.judgements())[0]

    def contradictions(self) -> list[Contradiction]:
        """Pairs the person judged both ways, for showing them what was overridden."""
        return resolve(self.judgements())[1]

    def __len__(self) -> int:
        """Number of stored judgements (statements, not effective pairs)."""
        return int(self._read("SELECT count(*) FROM judgements")[0][0])

    def import_csv(self, path: str | os.PathLike[str], album: str | os.PathLike[str] | None = None) -> int:
        """Append a CSV's rows as new judgements, all or nothing; returns how many.

        Imported rows count as the newest statements, so they win contradictions with what is already
        stored. Importing the same file twice adds rows but leaves ``pairs()`` unchanged. A row's
        ``source`` column is kept (an export's ``collect``/``cull``); without one the source is
        ``csv:<file name>``.
        """
        rows = read_judgements_csv(path, album)  # validate everything before writing anything
        now = time.time()
        default = f"csv:{Path(path).name}"
        sql = "INSERT INTO judgements (preferred, other, created, source) VALUES (?, ?, ?, ?)"
        self._write((sql, (a, b, now, source or default)) for a, b, source in rows)
        return len(rows)

    def export_csv(
        self,
        path: str | os.PathLike[str],
        album: str | os.PathLike[str] | None = None,
        resolved: bool = False,
    ) -> None:
        """Write all judgements in order (or only the effective pairs if ``resolved``), atomically, with
        each one's ``source`` (for a resolved pair: the source of the statement that won).

        Exporting every statement keeps the history, so importing the file elsewhere yields the same
        ``pairs()``. With an album, names inside it are written relative to it, others absolute. A CSV
        that cannot be written (disk full, say) is ``PreferenceError`` naming the CSV.
        """
        judgements = self.judgements()
        if resolved:
            latest = {j.pair: j.source for j in judgements}  # the winner is the latest statement
            pairs = resolve(judgements)[0]
            sources = [latest[p] for p in pairs]
        else:
            pairs, sources = [j.pair for j in judgements], [j.source for j in judgements]
        try:
            write_pairs_csv(path, pairs, album, sources)
        except OSError as exc:
            raise file_error(PreferenceError, path, _problem(exc, path)) from exc

    def close(self) -> None:
        """Close the connections; further use raises ``ValueError``. Closing twice is fine."""
        with self._lock:
            self._closed = True
            for conn in (self._reader, self._writer):
                if conn is not None:
                    conn.close()
            self._reader = self._writer = None
            if self._snapshot is not None:
                shutil.rmtree(self._snapshot, ignore_errors=True)
                self._snapshot = None

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
        state = "closed" if self._closed else "open"
        return f"PreferenceStore({str(self.path)!r}, {state})"
