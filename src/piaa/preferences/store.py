"""The per-user preference store: judgements in a SQLite file, durable from the moment ``add`` returns.

The store is a SQLite file in WAL mode with ``synchronous=FULL``: every ``add`` is its own transaction,
and once it returns the judgement survives the process being killed and, with FULL, also an OS crash or
power loss (judgements are minutes of a person's attention and come in at click speed, so one fsync per
judgement is cheap insurance; NORMAL would only protect against process crashes). The rules the stored
judgements follow (contradictions, transitivity) are in :mod:`piaa.preferences.rules`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from piaa.preferences.exchange import read_pairs_csv, write_pairs_csv
from piaa.preferences.rules import (
    Contradiction,
    Judgement,
    Pair,
    PreferenceError,
    check_pair,
    normalize_name,
    resolve,
)

__all__ = ["SCHEMA_VERSION", "PreferenceStore"]

SCHEMA_VERSION = 1
APPLICATION_ID = 0x50494141  # "PIAA": tells our stores apart from other SQLite files
BUSY_TIMEOUT_S = 30.0


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
