"""The collect app against real albums and hostile pages: unreadable and symlinked photos, cross-site
requests, huge bodies, a busy store."""

from __future__ import annotations

import sqlite3
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from conftest import synthetic_photo
from piaa.web import CollectConfig, create_app
from piaa.web.album import ServedAlbum
from piaa.web.security import MAX_BODY_BYTES


def fake_features(paths: list[Path], progress) -> np.ndarray:
    progress(len(paths), len(paths))
    return np.random.default_rng(len(paths)).normal(size=(len(paths), 4))


def _client(album: Path, tmp_path: Path, **kw) -> TestClient:
    kw = {"auto_train": False, "train_overrides": {"rank_epochs": 2}, "prepare_retoucher": False} | kw
    cfg = CollectConfig(album=album, store=tmp_path / "prefs.sqlite", features=fake_features, **kw)
    return TestClient(create_app(cfg), base_url="http://127.0.0.1")


def _photos(folder: Path, n: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"p{i}.jpg" for i in range(n)]
    for p in paths:
        synthetic_photo(rng).save(p)
    return paths


def _drain(c: TestClient) -> set[str]:
    offered: set[str] = set()
    while (p := c.post("/api/pair", json={}).json()["pair"]) is not None:
        offered |= {p["left"]["name"], p["right"]["name"]}
    return offered


# ------------------------------------------------------------------------------------------ the album


def test_unreadable_photos_are_listed_and_never_offered_or_ranked(tmp_path: Path) -> None:
    album = tmp_path / "album"
    good = _photos(album, 4)
    data = good[0].read_bytes()
    (album / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (album / "empty.png").write_bytes(b"")
    (album / "text.jpg").write_text("not an image")
    (album / "notes.txt").write_text("not a photo")
    (album / "clip.MOV").write_bytes(b"\x00\x00\x00\x18ftypqt  ")
    with _client(album, tmp_path, target=1, min_train=1) as c:
        state = c.get("/api/state").json()
        assert state["album"] == 4 and state["album_skipped"] == 3
        skipped = {s["name"]: s["reason"] for s in c.get("/api/album").json()["skipped_photos"]}
        assert set(skipped) == {"truncated.jpg", "empty.png", "text.jpg"}
        assert "truncated" in skipped["truncated.jpg"] and "empty" in skipped["empty.png"]
        not_photos = {s["name"] for s in c.get("/api/album").json()["not_photos"]}
        assert not_photos == {"notes.txt", "clip.MOV"}  # listed as score and personalize list them
        assert c.get("/img/truncated.jpg").status_code == 404
        assert (
            c.post("/api/choose", json={"preferred": "truncated.jpg", "other": "p0.jpg"}).status_code == 404
        )
        offered = _drain(c)
        assert offered == {"p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg"}
        c.post("/api/choose", json={"preferred": "p0.jpg", "other": "p1.jpg"})
        assert c.post("/api/train", json={}).status_code == 202
        c.app.state.collector.trainer.join(120)
        job = c.get("/api/train").json()
        assert job["state"] == "done", job
        assert {r["name"] for r in job["model"]["ranking"]} == offered
        assert all(1 <= r["score"] <= 10 for r in job["model"]["ranking"])


def test_too_few_readable_photos_is_one_line(tmp_path: Path) -> None:
    album = tmp_path / "album"
    _photos(album, 1)
    (album / "bad.jpg").write_bytes(b"\xff\xd8 not really")
    with pytest.raises(
        ValueError, match=r"needs at least two images, found 1 \(1 could not be read: .*bad\.jpg"
    ):
        ServedAlbum(album)


def test_symlinked_photos_are_album_photos(tmp_path: Path) -> None:
    """The issue's album: six symlinks to photos kept elsewhere (score and personalize accept it)."""
    originals = _photos(tmp_path / "library", 6)
    album = tmp_path / "album"
    album.mkdir()
    for p in originals:
        (album / p.name).symlink_to(p)
    (album / "zz-more").symlink_to(tmp_path / "library", target_is_directory=True)  # same files, walked after
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"top secret")
    with _client(album, tmp_path) as c:
        assert c.get("/api/state").json()["album"] == 6  # each file once, however often it is linked
        assert _drain(c) == {p.name for p in originals}
        assert c.get("/img/p0.jpg").headers["content-type"] == "image/jpeg"
        (album / "p1.jpg").unlink()
        (album / "p1.jpg").symlink_to(secret)  # re-pointed after startup
        r = c.get("/img/p1.jpg")
        assert r.status_code == 404 and b"top secret" not in r.content
        assert c.get("/img/zz-more/p0.jpg").status_code == 404  # only names listed at startup


def test_decomposed_file_names_are_served_by_their_composed_name(tmp_path: Path) -> None:
    album = tmp_path / "album"
    _photos(album, 2)
    nfd = unicodedata.normalize("NFD", "café.jpg")
    synthetic_photo(np.random.default_rng(9)).save(album / nfd)
    with _client(album, tmp_path) as c:
        nfc = unicodedata.normalize("NFC", "café.jpg")
        assert nfc in c.app.state.collector.album.names
        assert c.get(c.app.state.collector.album.url(nfc)).status_code == 200
        assert c.post("/api/choose", json={"preferred": nfc, "other": "p0.jpg"}).status_code == 200


# --------------------------------------------------------------------------------------------- requests


def test_drawing_a_pair_needs_a_same_origin_json_post(tmp_path: Path) -> None:
    with _client(_photos(tmp_path / "album", 3)[0].parent, tmp_path) as c:
        assert c.get("/api/pair").status_code == 405  # a cross-site <img src> or link cannot draw pairs
        r = c.post("/api/pair", content="{}", headers={"content-type": "text/plain"})
        assert r.status_code == 415  # a cross-site form can send text/plain without a preflight
        r = c.post("/api/pair", json={}, headers={"origin": "http://evil.example"})
        assert r.status_code == 403
        r = c.post("/api/choose", json={"preferred": "p0.jpg", "other": "p1.jpg"}, headers={"origin": "null"})
        assert r.status_code == 403
        assert c.get("/api/state").json()["remaining"] == 3  # nothing was used up
        r = c.post("/api/pair", json={}, headers={"origin": "http://127.0.0.1"})
        assert r.status_code == 200 and r.json()["pair"] is not None


def test_big_bodies_are_refused_and_names_are_not_echoed_whole(tmp_path: Path) -> None:
    with _client(_photos(tmp_path / "album", 3)[0].parent, tmp_path) as c:
        big = {"preferred": "x" * (MAX_BODY_BYTES + 10), "other": "p0.jpg"}
        r = c.post("/api/choose", json=big)
        assert r.status_code == 413 and len(r.content) < 200

        def chunks():  # no Content-Length: the size is only known while streaming
            yield b'{"preferred": "'
            for _ in range(100):
                yield b"y" * 1024
            yield b'", "other": "p0.jpg"}'

        r = c.post("/api/choose", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and len(r.content) < 200

        r = c.post("/api/choose", json={"preferred": "z" * 4000, "other": "p0.jpg"})
        assert r.status_code == 404 and len(r.content) < 400 and "4000 characters" in r.json()["detail"]
        r = c.post("/api/choose", json={"preferred": "z" * 50_000, "other": "p0.jpg"})
        assert r.status_code == 422 and len(r.content) < 400 and "preferred" in r.json()["detail"]
        assert c.get("/api/state").json()["count"] == 0


def test_a_busy_store_is_a_one_line_error_for_the_page(tmp_path: Path) -> None:
    album = _photos(tmp_path / "album", 3)[0].parent
    with _client(album, tmp_path) as c:
        store = c.app.state.collector.store
        store._timeout = 0.2  # the default waits 30 s for the lock
        holder = sqlite3.connect(tmp_path / "prefs.sqlite", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            assert c.get("/api/state").status_code == 200  # reading never waits for a writer
            r = c.post("/api/choose", json={"preferred": "p0.jpg", "other": "p1.jpg"})
            assert r.status_code == 503
            detail = r.json()["detail"]
            assert "prefs.sqlite" in detail and "locked" in detail and "\n" not in detail
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert c.post("/api/choose", json={"preferred": "p0.jpg", "other": "p1.jpg"}).status_code == 200


def test_judgements_stored_with_old_spellings_count_as_judged(tmp_path: Path) -> None:
    album = _photos(tmp_path / "album", 3)[0].parent
    db = tmp_path / "prefs.sqlite"
    with _client(album, tmp_path):
        pass  # creates the store
    with sqlite3.connect(db) as conn:  # written before names were normalised
        conn.execute("INSERT INTO judgements (preferred, other, created) VALUES (' p0.jpg', 'p1.jpg ', 0)")
    with _client(album, tmp_path) as c:
        offered = []
        while (p := c.post("/api/pair", json={}).json()["pair"]) is not None:
            offered.append(frozenset((p["left"]["name"], p["right"]["name"])))
        assert len(offered) == 2 and frozenset(("p0.jpg", "p1.jpg")) not in offered
