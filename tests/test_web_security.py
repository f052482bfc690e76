"""Issue 24's security items: a photo outside the album is never served (not even by racing a symlink
flip), other sites cannot embed the album's images, the Origin check compares scheme, host and port,
and undo in one tab never removes another tab's judgement."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from piaa.preferences import PreferenceStore
from piaa.web import CollectConfig, create_app
from piaa.web.album import AlbumImageNotFound, ServedAlbum
from test_web_hardening import _client, _photos

RACE_SECONDS = 1.5  # each race is bounded in time and in requests
RACE_REQUESTS = 400


def _solid(path: Path, rgb: tuple[int, int, int]) -> None:
    Image.new("RGB", (64, 48), rgb).save(path, quality=95)


def _mean_red(data: bytes) -> float:
    return float(np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), float)[..., 0].mean())


class Flipper:
    """An album whose ``link.jpg`` leads to a green photo outside it; once started, a thread keeps
    flipping the link to a red "secret" photo (also outside, also a valid image) and back."""

    def __init__(self, tmp_path: Path) -> None:
        self.album, outside = tmp_path / "album", tmp_path / "outside"
        _photos(self.album, 2)
        outside.mkdir()
        self.ok, self.secret = outside / "ok.jpg", outside / "secret.jpg"
        _solid(self.ok, (0, 200, 0))
        _solid(self.secret, (230, 0, 0))
        (self.album / "link.jpg").symlink_to(self.ok)
        self.flips = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._flip, daemon=True)

    def _flip(self) -> None:
        link, tmp = self.album / "link.jpg", self.album / ".flip"
        while not self._stop.is_set():
            for target in (self.secret, self.ok):
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(target)
                os.replace(tmp, link)  # atomic: the link always exists, leading to one or the other
            self.flips += 1

    def __enter__(self) -> Flipper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def race(self, get) -> dict[str, int]:
        """Call ``get()`` (bytes, or None when refused) until both sides had their share of turns,
        at most RACE_SECONDS; assert the secret is never what came back."""
        seen = {"ok": 0, "refused": 0}
        deadline = time.monotonic() + RACE_SECONDS
        while time.monotonic() < deadline and (sum(seen.values()) < RACE_REQUESTS or self.flips < 50):
            data = get()
            if data is None:
                seen["refused"] += 1
            else:
                assert _mean_red(data) < 60, f"the secret photo outside the album was served ({seen})"
                seen["ok"] += 1
            time.sleep(0)  # let the flipper run between requests too
        return seen


def test_a_symlink_flipped_during_requests_never_serves_the_outside_file(tmp_path):
    flipper = Flipper(tmp_path)
    served = ServedAlbum(flipper.album)  # listed before the flipping starts: link.jpg is ok.jpg

    def get() -> bytes | None:
        served._cache.clear()  # decode every time: the race is in reading, not in the cache
        try:
            return served.jpeg("link.jpg", 64)
        except AlbumImageNotFound:
            return None

    with flipper:
        seen = flipper.race(get)
    assert flipper.flips >= 10 and seen["refused"] > 0  # the race did happen
    assert seen["ok"] > 0  # and the photo the album listed is still served between flips


def test_the_race_through_http(tmp_path):
    flipper = Flipper(tmp_path)
    cfg = CollectConfig(album=flipper.album, store=tmp_path / "p.sqlite", strategy="random", auto_train=False)
    with TestClient(create_app(cfg), base_url="http://127.0.0.1") as c, flipper:
        album = c.app.state.collector.album

        def get() -> bytes | None:
            album._cache.clear()
            r = c.get("/img/link.jpg?size=thumb")
            assert r.status_code in (200, 404)
            return r.content if r.status_code == 200 else None

        seen = flipper.race(get)
        r = c.post("/api/retouch", json={"name": "link.jpg"})  # no model yet: refused, nothing read
        assert r.status_code in (404, 409)
    assert flipper.flips >= 10 and seen["ok"] > 0


def test_a_photo_replaced_after_startup_is_not_served(tmp_path):
    album = _photos(tmp_path / "album", 3)[0].parent
    served = ServedAlbum(album)
    assert served.jpeg("p0.jpg")
    replacement = tmp_path / "new.jpg"
    _solid(replacement, (230, 0, 0))
    os.replace(replacement, album / "p0.jpg")  # another file under the same name
    with pytest.raises(AlbumImageNotFound):
        served.jpeg("p0.jpg", 200)
    with pytest.raises(AlbumImageNotFound):
        served.path("p0.jpg")


def test_cross_site_image_loads_and_api_calls_are_refused(tmp_path):
    with _client(_photos(tmp_path / "album", 3)[0].parent, tmp_path) as c:
        for site in ("cross-site", "same-site"):  # same-site: another port of this host
            assert c.get("/img/p0.jpg", headers={"sec-fetch-site": site}).status_code == 403
            assert c.get("/api/state", headers={"sec-fetch-site": site}).status_code == 403
            r = c.post("/api/pair", json={}, headers={"sec-fetch-site": site})
            assert r.status_code == 403
        assert c.get("/", headers={"sec-fetch-site": "cross-site"}).status_code == 200  # a link still works
        for site in ("same-origin", "none", None):
            headers = {"sec-fetch-site": site} if site else {}
            r = c.get("/img/p0.jpg", headers=headers)
            assert r.status_code == 200 and r.headers["cross-origin-resource-policy"] == "same-origin"
        assert c.get("/api/state").json()["remaining"] == 3  # nothing was drawn by the refused POSTs


def test_the_origin_check_compares_scheme_host_and_port(tmp_path):
    with _client(_photos(tmp_path / "album", 4)[0].parent, tmp_path) as c:
        for origin in (
            "https://127.0.0.1",  # another scheme
            "http://127.0.0.1:8080",  # another port
            "http://127.0.0.2",  # another host
            "http://127.0.0.1.evil.example",
            "127.0.0.1",  # no scheme
            "http://127.0.0.1:notaport",
        ):
            assert c.post("/api/pair", json={}, headers={"origin": origin}).status_code == 403, origin
        for origin in ("http://127.0.0.1", "http://127.0.0.1:80", "HTTP://127.0.0.1"):
            assert c.post("/api/pair", json={}, headers={"origin": origin}).status_code == 200, origin
    cfg = CollectConfig(album=tmp_path / "album", store=tmp_path / "q.sqlite", strategy="random")
    with TestClient(create_app(cfg), base_url="http://localhost:8765") as c:
        assert c.post("/api/pair", json={}, headers={"origin": "http://localhost:8765"}).status_code == 200
        assert c.post("/api/pair", json={}, headers={"origin": "http://localhost:8766"}).status_code == 403


def test_undo_removes_only_what_this_tab_stated(tmp_path):
    with _client(_photos(tmp_path / "album", 5)[0].parent, tmp_path) as c:
        def choose(a: str, b: str, tab: str) -> None:
            assert c.post("/api/choose", json={"preferred": a, "other": b, "tab": tab}).status_code == 200

        choose("p0.jpg", "p1.jpg", "tab-a")
        choose("p2.jpg", "p3.jpg", "tab-b")
        choose("p1.jpg", "p4.jpg", "tab-a")
        choose("p3.jpg", "p4.jpg", "tab-b")  # the latest of all, but tab-b's
        undone = c.post("/api/undo", json={"tab": "tab-a"}).json()["undone"]
        assert (undone["preferred"], undone["other"]) == ("p1.jpg", "p4.jpg")
        undone = c.post("/api/undo", json={"tab": "tab-a"}).json()["undone"]
        assert (undone["preferred"], undone["other"]) == ("p0.jpg", "p1.jpg")
        assert c.post("/api/undo", json={"tab": "tab-a"}).json()["undone"] is None  # nothing of tab-a left
        assert c.post("/api/undo", json={"tab": "nobody"}).json()["undone"] is None
        r = c.post("/api/undo", json={"tab": "a b;drop"})
        assert r.status_code == 422  # a tab id is letters, digits, - and _
        assert c.get("/api/state").json()["count"] == 2
    with PreferenceStore(tmp_path / "prefs.sqlite") as s:
        assert [(j.pair, j.source) for j in s.judgements()] == [
            (("p2.jpg", "p3.jpg"), "collect:tab-b"),
            (("p3.jpg", "p4.jpg"), "collect:tab-b"),
        ]
