"""Where judgements came from (collect, cull, a CSV): kept by the store, counted, exported and imported."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from piaa.cli.main import app
from piaa.preferences import PreferenceError, PreferenceStore, load_sources, read_judgements_csv

runner = CliRunner()


def test_add_many_is_one_transaction_with_one_source(tmp_path: Path) -> None:
    with PreferenceStore(tmp_path / "s.sqlite") as store:
        store.add("a.jpg", "b.jpg", source="collect")
        ids = store.add_many([("c.jpg", "a.jpg"), ("c.jpg", "b.jpg")], source="cull")
        assert len(ids) == 2 and ids[0] < ids[1]
        assert store.sources() == {"cull": 2, "collect": 1}
        with pytest.raises(ValueError):  # a bad pair anywhere: nothing of the click is stored
            store.add_many([("d.jpg", "a.jpg"), ("d.jpg", "d.jpg")], source="cull")
        assert len(store) == 3
        created = {j.created for j in store.judgements() if j.source == "cull"}
        assert len(created) == 1  # one click, one time


def test_export_keeps_sources_and_import_restores_them(tmp_path: Path) -> None:
    with PreferenceStore(tmp_path / "a.sqlite") as store:
        store.add("a.jpg", "b.jpg", source="collect")
        store.add_many([("c.jpg", "a.jpg")], source="cull")
        store.add("b.jpg", "a.jpg", source="collect")  # overrides the first
        store.export_csv(tmp_path / "all.csv")
        store.export_csv(tmp_path / "resolved.csv", resolved=True)
    assert read_judgements_csv(tmp_path / "all.csv") == [
        ("a.jpg", "b.jpg", "collect"),
        ("c.jpg", "a.jpg", "cull"),
        ("b.jpg", "a.jpg", "collect"),
    ]
    assert read_judgements_csv(tmp_path / "resolved.csv") == [
        ("b.jpg", "a.jpg", "collect"),
        ("c.jpg", "a.jpg", "cull"),
    ]
    with PreferenceStore(tmp_path / "b.sqlite") as other:
        assert other.import_csv(tmp_path / "all.csv") == 3
        assert other.sources() == {"collect": 2, "cull": 1}
        assert other.pairs() == [("b.jpg", "a.jpg"), ("c.jpg", "a.jpg")]


def test_old_two_column_csvs_still_import(tmp_path: Path) -> None:
    old = tmp_path / "old.csv"
    old.write_text("preferred,other\na.jpg,b.jpg\n")
    assert read_judgements_csv(old) == [("a.jpg", "b.jpg", None)]
    assert load_sources(old) == {"csv": 1}
    with PreferenceStore(tmp_path / "s.sqlite") as store:
        store.import_csv(old)
        assert store.sources() == {"csv:old.csv": 1}
    bad = tmp_path / "bad.csv"
    bad.write_text("preferred,other,source\na.jpg,b.jpg\n")
    with pytest.raises(PreferenceError, match=r"bad\.csv:2: expected 3 fields"):
        read_judgements_csv(bad)


def test_a_store_written_before_sources_were_counted_opens_unchanged(tmp_path: Path) -> None:
    """Schema 1 has always had the source column (default 'user'): a store made by an earlier piaa, as
    its SQL made it, opens read-only without being written, and counts its judgements."""
    path = tmp_path / "old.sqlite"
    with PreferenceStore(path) as store:
        store.add("a.jpg", "b.jpg")  # the default source of the earliest stores
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.read_bytes()
    assert load_sources(path) == {"user": 1}
    assert path.read_bytes() == before


def test_prefs_show_counts_by_source_and_escapes_names(tmp_path: Path) -> None:
    store = tmp_path / "p [bold].sqlite"
    with PreferenceStore(store) as s:
        s.add("a.jpg", "b.jpg", source="collect")
        s.add_many([("c.jpg", "a.jpg"), ("c.jpg", "b.jpg")], source="cull")
    res = runner.invoke(app, ["prefs", "show", str(store)])
    assert res.exit_code == 0, res.output
    assert "p [bold].sqlite: 3 judgements" in res.output
    assert "by source: cull 2, collect 1" in res.output
