"""Preferences as people really have them: typed names (spaces, accents, paths) and stores that are
locked, foreign, corrupt or on a full disk. Every failure is one line naming the file."""

from __future__ import annotations

import errno
import sqlite3
import time
import unicodedata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from piaa.cli.main import app as cli_app
from piaa.errors import PiaaError
from piaa.preferences import (
    PreferenceError,
    PreferenceStore,
    load_pairs,
    load_statements,
    match_names,
    normalize_name,
    read_pairs_csv,
)

CAFE_NFC = unicodedata.normalize("NFC", "café.jpg")
CAFE_NFD = unicodedata.normalize("NFD", "café.jpg")


# -------------------------------------------------------------------------------------------------- names


def test_csv_with_spaces_after_commas(tmp_path: Path) -> None:
    f = tmp_path / "typed.csv"
    f.write_text('preferred, other\n a.jpg, b.jpg\nsub/c.jpg ,  "with space.jpg"\n\t d.jpg,e.jpg  \n')
    assert read_pairs_csv(f) == [("a.jpg", "b.jpg"), ("sub/c.jpg", "with space.jpg"), ("d.jpg", "e.jpg")]
    with pytest.raises(PreferenceError, match=r":2: .*non-empty"):
        f.write_text("preferred,other\na.jpg,   \n")
        read_pairs_csv(f)


def test_decomposed_accents_match_composed_ones(tmp_path: Path) -> None:
    assert CAFE_NFC != CAFE_NFD and normalize_name(CAFE_NFD) == CAFE_NFC
    f = tmp_path / "mac.csv"
    f.write_text(f"preferred,other\n{CAFE_NFD},b.jpg\n", encoding="utf-8")
    assert read_pairs_csv(f) == [(CAFE_NFC, "b.jpg")]
    with PreferenceStore(tmp_path / "s.sqlite") as store:
        store.add(f"  {CAFE_NFD}", "b.jpg ")
        assert store.judgements()[0].pair == (CAFE_NFC, "b.jpg")


def test_normalize_name_strips_and_keeps_paths(tmp_path: Path) -> None:
    album = tmp_path / "album"
    assert normalize_name("  ./x/y.jpg \n") == "x/y.jpg"
    assert normalize_name(f" {album / 'x.jpg'}", album) == "x.jpg"
    assert normalize_name("with space.jpg") == "with space.jpg"  # inner spaces are part of the name
    for blank in ("", "   ", "\t"):
        with pytest.raises(PreferenceError, match="non-empty"):
            normalize_name(blank)


def test_match_names(tmp_path: Path) -> None:
    album = tmp_path / "album"
    album_names = ["a.jpg", "sub/b.jpg", CAFE_NFD]  # as listed from a (macOS) disk
    statements = [
        (" a.jpg", "sub/b.jpg"),
        (CAFE_NFC, str(album / "sub" / "b.jpg")),  # composed accent; absolute path inside the album
        ("a.jpg", "missing.jpg"),
        ("gone.jpg", "missing.jpg"),
        ("sub/b.jpg", "a.jpg"),  # contradiction: kept for resolve
    ]
    matched, unmatched = match_names(statements, album_names, album=album)
    assert matched == [("a.jpg", "sub/b.jpg"), (CAFE_NFD, "sub/b.jpg"), ("sub/b.jpg", "a.jpg")]
    assert unmatched == ["missing.jpg", "gone.jpg"]
    assert match_names([], album_names) == ([], [])
    assert match_names([("./a.jpg", "x.jpg")], ["a.jpg"]) == ([], ["x.jpg"])
    assert match_names([(" ", "a.jpg"), ("a.jpg", "./a.jpg")], ["a.jpg"]) == ([], [" "])  # legacy rows


def test_load_statements_normalises_store_names_too(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    with PreferenceStore(db) as store:
        store.add("a.jpg", "b.jpg")
    with sqlite3.connect(db) as conn:  # a store written before names were normalised
        conn.execute(
            "INSERT INTO judgements (preferred, other, created) VALUES (?, ?, 0)", (CAFE_NFD, " b.jpg")
        )
    assert load_statements(db) == [("a.jpg", "b.jpg"), (CAFE_NFC, "b.jpg")]


# ------------------------------------------------------------------------------------------ unusable stores


def _store_with(path: Path, n: int = 3) -> Path:
    with PreferenceStore(path) as store:
        for i in range(n):
            store.add(f"a{i}.jpg", f"b{i}.jpg")
    return path


def _one_line_naming(exc: BaseException, path: Path) -> str:
    text = str(exc)
    assert "\n" not in text and text.startswith(f"{path}: "), text
    return text


def test_preference_error_is_a_piaa_error() -> None:
    assert issubclass(PreferenceError, PiaaError) and issubclass(PreferenceError, ValueError)


def test_locked_store_reads_at_once_and_writes_fail_in_one_line(tmp_path: Path) -> None:
    db = _store_with(tmp_path / "busy.sqlite")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    holder.execute("INSERT INTO judgements (preferred, other, created) VALUES ('x', 'y', 0)")
    try:
        t0 = time.monotonic()
        assert len(load_statements(db)) == 3  # what is committed; the open write is invisible
        with PreferenceStore(db, timeout=0.3) as store:
            assert len(store) == 3 and len(store.pairs()) == 3
            assert time.monotonic() - t0 < 1.5  # no waiting for the lock at all
            res = CliRunner().invoke(cli_app, ["prefs", "show", str(db)])
            assert res.exit_code == 0 and "3 judgements" in res.output, res.output
            t0 = time.monotonic()
            with pytest.raises(PreferenceError) as info:
                store.add("c.jpg", "d.jpg")
            assert time.monotonic() - t0 < 3
            assert "locked by another process" in _one_line_naming(info.value, db)
            with pytest.raises(PreferenceError, match="locked"):
                store.undo()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with PreferenceStore(db) as store:  # nothing was lost or half-written
        assert store.add("c.jpg", "d.jpg") and len(store) == 4


def test_exclusively_locked_store_is_one_line_after_a_short_wait(tmp_path: Path) -> None:
    db = _store_with(tmp_path / "exclusive.sqlite")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")  # what a stuck or foreign tool can do
    holder.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.monotonic()
        with pytest.raises(PreferenceError) as info:
            load_statements(db)
        assert time.monotonic() - t0 < 5  # READ_TIMEOUT_S (2 s), not the writers' 30 s
        assert "locked" in _one_line_naming(info.value, db)
        res = CliRunner().invoke(cli_app, ["prefs", "show", str(db)])
        assert res.exit_code == 2 and str(db) in res.output and "Traceback" not in res.output
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_foreign_and_corrupt_files_name_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)  # looks like SQLite, is not
    for opener in (lambda: PreferenceStore(junk), lambda: load_statements(junk)):
        with pytest.raises(PreferenceError) as info:
            opener()
        _one_line_naming(info.value, junk)

    db = _store_with(tmp_path / "corrupt.sqlite", n=200)
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 3 * page
    data[page : 3 * page] = b"\x13" * (2 * page)  # scribble over the table's pages
    db.write_bytes(bytes(data))
    with pytest.raises(PreferenceError) as info:
        load_pairs(db)
    assert "corrupt" in _one_line_naming(info.value, db)

    with pytest.raises(PreferenceError, match="no such preference store"):
        PreferenceStore(tmp_path / "missing.sqlite", readonly=True)
    assert not (tmp_path / "missing.sqlite").exists()


def test_readonly_store_refuses_writes(tmp_path: Path) -> None:
    db = _store_with(tmp_path / "ro.sqlite")
    with PreferenceStore(db, readonly=True) as store:
        assert len(store.judgements()) == 3
        with pytest.raises(PreferenceError, match="read-only"):
            store.add("x", "y")


def test_full_disk_is_one_line_and_leaves_the_store_usable(tmp_path: Path, monkeypatch) -> None:
    db = _store_with(tmp_path / "full.sqlite")
    with PreferenceStore(db) as store:
        size = store._write_connection().execute("PRAGMA page_count").fetchone()[0]
        store._write_connection().execute(f"PRAGMA max_page_count={size}")  # as good as a full disk
        with pytest.raises(PreferenceError) as info:
            store._write([("INSERT INTO judgements (preferred, other, created) VALUES (?, ?, 0)",
                           ("x" * 100_000, "y"))])  # fmt: skip
        assert "disk is full" in _one_line_naming(info.value, db)
        assert len(store) == 3  # rolled back, nothing half-written
        store._write_connection().execute("PRAGMA max_page_count=1000000")
        store.add("c.jpg", "d.jpg")
        assert len(store) == 4

        def no_space(*args: object, **kwargs: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr("piaa.preferences.store.write_pairs_csv", no_space)
        out = tmp_path / "out.csv"
        with pytest.raises(PreferenceError) as info:
            store.export_csv(out)
        assert "disk is full" in _one_line_naming(info.value, out)
