"""The real page in a real browser: uvicorn on a free local port, headless Chromium driven by Playwright.

Skips only where Playwright or Chromium is missing or cannot start (CI installs Chromium when it can;
$PIAA_CHROMIUM names another Chromium binary).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest
import uvicorn

from conftest import synthetic_photo
from piaa.preferences import PreferenceStore
from piaa.web import CollectConfig, create_app

CHROMIUM = os.environ.get("PIAA_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _skip(reason: str) -> NoReturn:
    print(f"skipping browser test: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _skip(f"playwright cannot be imported ({exc})")
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        except Exception as exc:  # noqa: BLE001 - no browser here: say so and skip
            _skip(f"Chromium cannot be launched from {CHROMIUM} ({str(exc).splitlines()[0]})")
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The app served by uvicorn in a thread, as ``piaa collect`` serves it."""
    rng = np.random.default_rng(0)
    album = tmp_path / "album"
    album.mkdir()
    for i in range(8):
        synthetic_photo(rng, 320, 240).save(album / f"photo {i}.jpg")
    store = tmp_path / "prefs.sqlite"
    app = create_app(CollectConfig(album=album, store=store, target=10))
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/", store
    finally:
        srv.should_exit = True
        thread.join(10)


def test_ten_choices_by_click_and_keyboard_land_in_the_store(browser, server):
    url, store = server
    page = browser.new_page(viewport={"width": 1200, "height": 700})
    page.goto(url)
    ready = "document.body.dataset.busy === '0' && document.body.dataset.count === '{}'"
    page.wait_for_function(ready.format(0))
    expected = []
    for k in range(10):
        if k == 5:  # a skip records nothing
            page.keyboard.press("s")
            skipped = "document.getElementById('status').textContent.includes('1 skipped')"
            page.wait_for_function(f"document.body.dataset.busy === '0' && {skipped}")
        page.wait_for_function("document.querySelector('#left img').complete")
        left = page.get_attribute("#left", "data-name")
        right = page.get_attribute("#right", "data-name")
        assert left and right and left != right
        how = ["click-left", "ArrowRight", "click-right", "ArrowLeft"][k % 4]
        if how == "click-left":
            page.click("#left")
        elif how == "click-right":
            page.click("#right")
        else:
            page.keyboard.press(how)
        expected.append((left, right) if how in ("click-left", "ArrowLeft") else (right, left))
        page.wait_for_function(ready.format(k + 1))
    last = expected[-1]
    page.keyboard.press("u")  # undo the last choice: the same pair comes back, choose it again
    page.wait_for_function(ready.format(9))
    assert {page.get_attribute("#left", "data-name"), page.get_attribute("#right", "data-name")} == set(last)
    page.click("#left" if page.get_attribute("#left", "data-name") == last[0] else "#right")
    page.wait_for_function(ready.format(10))
    assert page.text_content("#counter") == "10 / 10 pairs"
    assert page.is_visible("#train-button")  # target reached: training is offered
    with PreferenceStore(store) as s:
        assert [j.pair for j in s.judgements()] == expected


@pytest.fixture
def trained_server(tmp_path: Path, demo_world: dict) -> Iterator[str]:
    """The demo's album with 10 judgements already stored and a reference: the page can train."""
    ex = demo_world["example"]
    store = tmp_path / "me.sqlite"
    names = sorted(f.name for f in ex.album_files)
    with PreferenceStore(store) as s:
        for k in range(10):
            s.add(names[2 * k], names[2 * k + 1], source="test")
    cfg = CollectConfig(
        album=ex.album,
        store=store,
        target=10,
        reference=demo_world["reference"],
        train_overrides={"generic_epochs": 1, "rank_epochs": 1, "k": 5},
        prepare_retoucher=False,
    )
    yield from _serve(create_app(cfg))


def _serve(app: object) -> Iterator[str]:
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        srv.should_exit = True
        thread.join(10)


def test_after_training_a_ranked_photo_is_shown_retouched_by_both_models(browser, trained_server):
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.goto(trained_server)
    page.wait_for_function("document.body.dataset.busy === '0' && document.body.dataset.count === '10'")
    page.click("#train-button")
    page.wait_for_selector("#grid li.retouchable", timeout=120_000)
    first = page.get_attribute("#grid li.retouchable", "data-name")
    page.click("#grid li.retouchable")
    page.wait_for_function(f"document.body.dataset.retouched === {first!r}", timeout=120_000)
    assert page.is_visible("#retouch") and not page.is_visible("#ranking")
    kinds = page.eval_on_selector_all("#retouch-images figure", "fs => fs.map(f => f.dataset.kind)")
    assert kinds == ["original", "generic", "personal"]
    for kind in kinds:  # every image shown, with both models' scores
        fig = f"#retouch-images figure[data-kind={kind}]"
        assert page.eval_on_selector(f"{fig} img", "i => i.complete && i.naturalWidth > 0")
        scores = page.eval_on_selector_all(f"{fig} .scores", "ss => ss.map(s => s.dataset.model)")
        assert scores == ["personal", "generic"]
        assert all(
            1 <= float(t) <= 10
            for t in page.eval_on_selector_all(f"{fig} .scores b", "bs => bs.map(b => b.textContent)")
        )
    page.keyboard.press("Escape")  # back to the ranking; the arrow keys judge nothing meanwhile
    page.wait_for_function("!document.getElementById('ranking').hidden")


def test_retouch_report_opens_in_a_browser(browser, tmp_path):
    """``piaa retouch``'s report.html is one self-contained page: every thumbnail renders from file://."""
    from PIL import ImageEnhance

    from piaa.retouch.batch import FileResult, write_report
    from piaa.retouch.core import RetouchResult

    rng = np.random.default_rng(3)
    original = synthetic_photo(rng, 320, 240)
    personal = ImageEnhance.Brightness(original).enhance(1.3)
    generic = ImageEnhance.Color(original).enhance(1.5)
    params = {"exposure": {"ev": 0.4, "curve": 0.1}}
    run = RetouchResult(personal, params, np.zeros(2), 5.0, 5.6, "learned", 1.0)
    result = FileResult(
        tmp_path / "a.jpg",
        tmp_path / "out" / "a.jpg",
        run,
        generic_output=tmp_path / "out" / "generic" / "a.jpg",
        generic=run,
        scores={
            "personal": {"original": 5.0, "generic": 5.2, "personal": 5.6},
            "generic": {"original": 4.9, "generic": 5.4, "personal": 5.1},
        },
        thumbs={"original": original, "generic": generic, "personal": personal},
    )
    page_path = write_report(tmp_path / "report.html", [result], "me", "generic (nima-ava)")
    page = browser.new_page()
    page.goto(page_path.as_uri())
    page.wait_for_load_state("load")
    loaded = page.eval_on_selector_all(
        "figure img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"
    )
    assert loaded == [True, True, True]
    captions = page.eval_on_selector_all("figcaption", "cs => cs.map(c => c.textContent)")
    assert [c.split("personal:")[0].strip() for c in captions] == ["original", "generic", "personal"]
    assert "personal: 5.60" in captions[2] and "generic: 5.40" in captions[1]
