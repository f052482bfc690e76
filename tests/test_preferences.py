"""Preference rules (contradictions, transitivity), the SQLite store's durability, and CSV."""

from __future__ import annotations

import itertools
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import piaa.preferences as prefs_module
from piaa.preferences import (
    Contradiction,
    Judgement,
    PreferenceError,
    PreferenceStore,
    enrich_transitive,
    enrich_transitive_with_sources,
    infer_transitive,
    load_pairs,
    normalize_name,
    read_pairs_csv,
    resolve,
)

# Child processes load preferences.py straight from its file, so they neither depend on how the
# package is installed nor pay for importing the rest of piaa (torch).
CHILD_PRELUDE = textwrap.dedent(
    f"""
    import importlib.util, os, signal, sys, time
    spec = importlib.util.spec_from_file_location("piaa_preferences", {prefs_module.__file__!r})
    mod = importlib.util.module_from_spec(spec)
    sys.modules["piaa_preferences"] = mod
    spec.loader.exec_module(mod)
    """
)


def run_child(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# ------------------------------------------------------------------------------------------ transitivity


def inferred_of(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = enrich_transitive(pairs)
    assert out[: len(set(pairs))] == list(dict.fromkeys(pairs)), "stated pairs come first, in order"
    return out[len(set(pairs)) :]


def test_transitive_one_step() -> None:
    assert inferred_of([("a", "b"), ("b", "c")]) == [("a", "c")]


def test_transitive_never_chains_three() -> None:
    got = inferred_of([("a", "b"), ("b", "c"), ("c", "d")])
    assert got == [("a", "c"), ("b", "d")]  # sorted; no ("a", "d")


def test_transitive_never_infers_against_a_stated_pair() -> None:
    # a>b, b>c would give a>c, but c>a is stated; likewise b>a and c>b are blocked by stated pairs.
    assert inferred_of([("a", "b"), ("b", "c"), ("c", "a")]) == []


def test_transitive_skips_already_stated_and_duplicates() -> None:
    stated = [("a", "b"), ("b", "c"), ("a", "c"), ("a", "b")]
    assert enrich_transitive(stated) == [("a", "b"), ("b", "c"), ("a", "c")]


def test_transitive_drops_ambiguous_inferences_from_a_four_cycle() -> None:
    # a>b>c>d>a: a>c (via b) and c>a (via d) would contradict each other; so would b>d and d>b.
    assert inferred_of([("a", "b"), ("b", "c"), ("c", "d"), ("d", "a")]) == []


def test_transitive_never_emits_self_pairs_and_rejects_them_as_input() -> None:
    with pytest.raises(ValueError, match="itself"):
        enrich_transitive([("a", "a")])
    # contradictory (unresolved) input would compose to a>a and b>b: never emitted
    assert inferred_of([("a", "b"), ("b", "a")]) == []


def test_transitive_sources() -> None:
    got = enrich_transitive_with_sources([("a", "b"), ("b", "d"), ("a", "c"), ("c", "d")])
    assert got == [
        (("a", "b"), ()),
        (("b", "d"), ()),
        (("a", "c"), ()),
        (("c", "d"), ()),
        (("a", "d"), (("a", "b"), ("b", "d"), ("a", "c"), ("c", "d"))),
    ]
    assert infer_transitive([("a", "b"), ("b", "d"), ("a", "c"), ("c", "d")]) == {("a", "d"): ("b", "c")}


ITEMS = "abcdef"
statements = st.lists(
    st.tuples(st.sampled_from(ITEMS), st.sampled_from(ITEMS)).filter(lambda p: p[0] != p[1]), max_size=25
)


@settings(max_examples=300, deadline=None)
@given(statements)
def test_transitive_properties(raw: list[tuple[str, str]]) -> None:
    stated, _ = resolve(raw)
    stated_set = set(stated)
    out = enrich_transitive(stated)
    assert out[: len(stated)] == stated
    inferred = out[len(stated) :]
    assert inferred == sorted(inferred) and len(set(inferred)) == len(inferred)
    for a, c in inferred:
        assert a != c
        assert any((a, b) in stated_set and (b, c) in stated_set for b in ITEMS)
        assert (a, c) not in stated_set and (c, a) not in stated_set
        assert (c, a) not in inferred
    # and nothing allowed is missing: brute force over all compositions of two stated pairs
    candidates = {
        (a, c)
        for (a, b1), (b2, c) in itertools.product(stated, stated)
        if b1 == b2 and a != c and (a, c) not in stated_set and (c, a) not in stated_set
    }
    expected = {p for p in candidates if (p[1], p[0]) not in candidates}
    assert set(inferred) == expected


# ---------------------------------------------------------------------------------------- contradictions


def test_resolve_latest_wins_and_is_reported() -> None:
    pairs, contradictions = resolve([("a", "b"), ("x", "y"), ("b", "a")])
    assert pairs == [("b", "a"), ("x", "y")]  # order of first mention, orientation of latest
    assert contradictions == [Contradiction(winner=("b", "a"), winner_ref=2, overruled=(0,))]
    assert contradictions[0].loser == ("a", "b")


def test_resolve_repeats_and_flip_back() -> None:
    assert resolve([("a", "b"), ("a", "b"), ("a", "b")]) == ([("a", "b")], [])
    pairs, contradictions = resolve([("a", "b"), ("b", "a"), ("a", "b")])
    assert pairs == [("a", "b")]
    assert contradictions == [Contradiction(("a", "b"), 2, (1,))]


def test_resolve_judgements_use_ids_and_rejects_self_pairs() -> None:
    js = [Judgement(7, "a", "b", 0.0, "user"), Judgement(9, "b", "a", 1.0, "user")]
    assert resolve(js) == ([("b", "a")], [Contradiction(("b", "a"), 9, (7,))])
    with pytest.raises(ValueError):
        resolve([("a", "a")])


@settings(max_examples=200, deadline=None)
@given(statements)
def test_resolve_matches_brute_force(raw: list[tuple[str, str]]) -> None:
    pairs, contradictions = resolve(raw)
    expected = {}
    for a, b in raw:
        expected[frozenset((a, b))] = (a, b)  # later statements overwrite earlier ones
    assert set(pairs) == set(expected.values()) and len(pairs) == len(expected)
    flipped = {k for k in expected if {(a, b) for a, b in raw if {a, b} == k} != {expected[k]}}
    assert {frozenset(c.winner) for c in contradictions} == flipped


# -------------------------------------------------------------------------------------------------- store


def test_store_add_undo_len_and_reopen(tmp_path: Path) -> None:
    db = tmp_path / "user.sqlite"
    with PreferenceStore(db) as store:
        assert len(store) == 0 and store.undo() is None
        i1 = store.add("a.jpg", "b.jpg")
        i2 = store.add("b.jpg", "c.jpg", source="test")
        i3 = store.add("c.jpg", "d.jpg")
        assert i1 < i2 < i3 and len(store) == 3
        undone = store.undo()
        assert isinstance(undone, Judgement)
        assert (undone.id, undone.pair, undone.source) == (i3, ("c.jpg", "d.jpg"), "user")
        assert len(store) == 2
        with pytest.raises(ValueError, match="itself"):
            store.add("a.jpg", "a.jpg")
        with pytest.raises(ValueError, match="itself"):
            store.add("a.jpg", "./a.jpg")  # same image once names are cleaned
    with pytest.raises(ValueError, match="closed"):
        len(store)
    with PreferenceStore(db) as store:
        js = store.judgements()
        assert [(j.id, j.preferred, j.other, j.source) for j in js] == [
            (i1, "a.jpg", "b.jpg", "user"),
            (i2, "b.jpg", "c.jpg", "test"),
        ]
        assert all(abs(j.created - time.time()) < 60 for j in js)
        assert store.add("x.jpg", "y.jpg") > i3  # ids are never reused after undo
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == prefs_module.SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()


def test_store_pairs_resolve_contradictions(tmp_path: Path) -> None:
    with PreferenceStore(tmp_path / "s.db") as store:
        store.add("a", "b")
        store.add("c", "d")
        later = store.add("b", "a")
        store.add("c", "d")
        assert store.pairs() == [("b", "a"), ("c", "d")]
        (c,) = store.contradictions()
        assert c.winner == ("b", "a") and c.winner_ref == later


def test_store_refuses_foreign_files(tmp_path: Path) -> None:
    other_db = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other_db)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(PreferenceError, match="not a piaa"):
        PreferenceStore(other_db)
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a database at all" * 20)
    with pytest.raises(PreferenceError):
        PreferenceStore(text)


KILL_CHILD = """
    store = mod.PreferenceStore(sys.argv[1])
    for i in range(int(sys.argv[2])):
        jid = store.add(f"img{i:04d}.jpg", f"other{i:04d}.jpg")
        print(jid, i, flush=True)  # reported only after add() returned, i.e. committed
        if sys.argv[3] == "self" and i == 24:
            if hasattr(signal, "SIGKILL"):
                os.kill(os.getpid(), signal.SIGKILL)
            os._exit(1)
"""


@pytest.mark.parametrize("how", ["self", "parent"])
def test_killed_writer_loses_nothing_committed(tmp_path: Path, how: str) -> None:
    db = tmp_path / "user.sqlite"
    n = 50 if how == "self" else 100_000
    proc = run_child(KILL_CHILD, str(db), str(n), how)
    assert proc.stdout is not None
    reported: list[tuple[int, int]] = []
    if how == "parent":
        for line in proc.stdout:  # kill it while it is busy writing
            reported.append(tuple(map(int, line.split())))  # type: ignore[arg-type]
            if len(reported) == 30:
                proc.kill()
                break
    out, err = proc.communicate(timeout=30)
    reported += [tuple(map(int, line.split())) for line in out.splitlines()]  # type: ignore[misc]
    assert proc.returncode != 0, err
    assert len(reported) >= (25 if how == "self" else 30), err

    with PreferenceStore(db) as store:
        stored = {j.id: j for j in store.judgements()}
    for jid, i in reported:
        assert stored[jid].pair == (f"img{i:04d}.jpg", f"other{i:04d}.jpg")
    if how == "self":
        assert len(stored) == 25
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


WRITER_CHILD = """
    go = sys.argv[2]
    while not os.path.exists(go):
        time.sleep(0.002)
    with mod.PreferenceStore(sys.argv[1]) as store:
        for i in range(100):
            store.add(f"{sys.argv[3]}-{i}", "x")
"""


def test_concurrent_threads_and_processes(tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite"
    go = tmp_path / "go"
    procs = [run_child(WRITER_CHILD, str(db), str(go), f"proc{k}") for k in range(2)]
    store = PreferenceStore(db)  # one store shared by threads, as in a web app
    start = threading.Event()
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        start.wait()
        try:
            for i in range(100):
                store.add(f"{name}-{i}", "x")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"thread{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    go.touch()
    start.set()
    for t in threads:
        t.join(timeout=60)
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    assert not errors
    names = {j.preferred for j in store.judgements()}
    expected = {f"{w}-{i}" for w in [f"thread{k}" for k in range(4)] + ["proc0", "proc1"] for i in range(100)}
    assert names == expected and len(store) == 600
    store.close()


# ---------------------------------------------------------------------------------------------------- CSV


def test_normalize_name(tmp_path: Path) -> None:
    album = tmp_path / "album"
    assert normalize_name("./x/y.jpg") == "x/y.jpg"
    assert normalize_name("x/y.jpg", album) == "x/y.jpg"
    assert normalize_name(str(album / "x" / "y.jpg"), album) == "x/y.jpg"
    assert normalize_name(str(tmp_path / "z.jpg"), album) == (tmp_path / "z.jpg").as_posix()
    assert normalize_name("../z.jpg", album) == (tmp_path / "z.jpg").as_posix()


def test_csv_round_trip_relative_and_absolute(tmp_path: Path) -> None:
    album = tmp_path / "album"
    album.mkdir()
    outside = (tmp_path / "elsewhere" / "c.jpg").as_posix()
    with PreferenceStore(tmp_path / "a.sqlite") as store:
        store.add("a.jpg", "sub/b.jpg")
        store.add(str(album / "sub" / "d.jpg"), outside)  # absolute inside the album
        store.add("sub/b.jpg", "a.jpg")  # contradiction: kept in the full export
        csv_path = tmp_path / "out.csv"
        store.export_csv(csv_path, album=album)
        lines = csv_path.read_text(encoding="utf-8").splitlines()
        assert lines == [
            "preferred,other,source",
            "a.jpg,sub/b.jpg,user",
            f"sub/d.jpg,{outside},user",
            "sub/b.jpg,a.jpg,user",
        ]
        store.export_csv(tmp_path / "resolved.csv", album=album, resolved=True)
        expected_pairs = [("sub/b.jpg", "a.jpg"), ("sub/d.jpg", outside)]
        assert read_pairs_csv(tmp_path / "resolved.csv") == expected_pairs
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    with PreferenceStore(tmp_path / "b.sqlite") as other:
        assert other.import_csv(csv_path, album=album) == 3
        assert other.pairs() == expected_pairs
        assert {j.source for j in other.judgements()} == {"user"}  # the exported source is kept
        other.import_csv(csv_path, album=album)  # a second import adds rows, not preferences
        assert len(other) == 6 and other.pairs() == expected_pairs
    assert load_pairs(csv_path, album=album) == expected_pairs


def test_export_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "prefs.csv"
    prefs_module.write_pairs_csv(target, [("a", "b")])
    before = target.read_text()

    def broken():
        yield ("c", "d")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        prefs_module.write_pairs_csv(target, broken())
    assert target.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prefs.csv"]


def test_csv_absolute_paths_inside_album_become_relative(tmp_path: Path) -> None:
    album = tmp_path / "album"
    f = tmp_path / "in.csv"
    f.write_text(f"preferred,other\n{album / 'x.jpg'},y.jpg\n/abs/z.jpg,y.jpg\n", encoding="utf-8")
    assert read_pairs_csv(f, album=album) == [("x.jpg", "y.jpg"), ("/abs/z.jpg", "y.jpg")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", r":1: empty file"),
        ("better,worse\na,b\n", r":1: expected header 'preferred,other', got 'better,worse'"),
        ("preferred\na\n", r":1: expected header"),
        ("preferred,other\na,b\nc,d,e\n", r":3: expected 2 fields"),
        ("preferred,other\na,b\n\nc\n", r":4: expected 2 fields"),
        ("preferred,other\na,b\nc,c\n", r":3: .*itself"),
        ("preferred,other\na,\n", r":2: .*non-empty"),
        ('preferred,other\na,b\n"c,d\n', r":3: malformed CSV"),  # where the open quote starts
    ],
)
def test_bad_csv_names_the_line(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(PreferenceError, match="^" + re.escape(str(f)) + message):
        read_pairs_csv(f)
    with PreferenceStore(tmp_path / "s.db") as store, pytest.raises(PreferenceError):
        store.import_csv(f)  # all or nothing
    with PreferenceStore(tmp_path / "s.db") as store:
        assert len(store) == 0


def test_csv_bom_and_bad_encoding(tmp_path: Path) -> None:
    f = tmp_path / "excel.csv"
    f.write_bytes(b"\xef\xbb\xbfpreferred,other\r\na,b\r\n")
    assert read_pairs_csv(f) == [("a", "b")]
    f.write_bytes(b"preferred,other\na,b\n\xff\xfe,c\n")
    with pytest.raises(PreferenceError, match=r":3: not valid UTF-8"):
        read_pairs_csv(f)


def test_load_pairs_detects_sqlite_by_content(tmp_path: Path) -> None:
    db = tmp_path / "prefs.csv"  # misleading suffix on purpose
    with PreferenceStore(db) as store:
        store.add("a", "b")
        store.add("b", "a")
        store.add("/photos/c.jpg", "a")
    assert load_pairs(db) == [("b", "a"), ("/photos/c.jpg", "a")]
    assert load_pairs(db, album="/photos") == [("b", "a"), ("c.jpg", "a")]
