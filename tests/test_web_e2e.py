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
    app = create_app(CollectConfig(album=album, store=store, target=10, min_train=10, auto_train=False))
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
    assert page.text_content("#counter") == "10 / 10 judgements"
    assert page.is_visible("#train-button")  # min_train reached: training is offered
    page.click("#help-link")  # the help says which pair choice runs and how to get the paper's
    assert page.is_visible("#help") and not page.is_visible("#pair")
    help_text = page.text_content("#help")
    assert "--strategy active" in help_text and "--strategy random" in help_text and "paper" in help_text
    page.keyboard.press("ArrowLeft")  # judges nothing while the help is open
    page.keyboard.press("Escape")
    page.wait_for_selector("#pair:not([hidden])")
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
        min_train=10,
        auto_train=False,
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


@pytest.mark.slow
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


def _accent_pixels(png: bytes) -> int:
    """Pixels of the page's accent colour (#f0b429: your model's curve, scores) in a screenshot."""
    import io

    from PIL import Image

    px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int((np.abs(px - np.array([0xF0, 0xB4, 0x29])).sum(axis=-1) < 60).sum())


def _visible_box(page, selector: str) -> dict:
    box = page.locator(selector).bounding_box()
    assert page.is_visible(selector) and box and box["width"] > 10 and box["height"] > 10, selector
    return box


@pytest.mark.slow
def test_a_fresh_install_goes_from_clicks_to_a_ranked_retouched_album_and_an_honest_figure(browser, tmp_path):
    """No reference anywhere: 20 clicks train the personal model from nima-ava in the background while
    the person keeps clicking; the album is ranked on 1-10; a photo is shown before/after; the
    held-out agreement and its learning curve are on the page. $PIAA_SCREENSHOTS keeps the shots."""
    from PIL import ImageEnhance

    rng = np.random.default_rng(0)
    album = tmp_path / "album"
    album.mkdir()
    bright = {}
    for i in range(12):
        b = 0.5 + rng.random()
        ImageEnhance.Brightness(synthetic_photo(rng, 320, 240)).enhance(b).save(album / f"photo {i:02d}.jpg")
        bright[f"photo {i:02d}.jpg"] = b
    store = tmp_path / "me.sqlite"
    cfg = CollectConfig(
        album=album, store=store, target=30, strategy="random", train_overrides={"rank_epochs": 2},
        prepare_retoucher=False,
    )  # fmt: skip
    shots = Path(os.environ.get("PIAA_SCREENSHOTS", tmp_path / "shots"))
    shots.mkdir(parents=True, exist_ok=True)
    for url in _serve(create_app(cfg)):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        ready = "document.body.dataset.busy === '0' && document.body.dataset.count === '{}'"
        page.wait_for_function(ready.format(0))
        assert not page.is_visible("#train")  # nothing to train before 20 judgements
        for k in range(22):  # the brighter photo each time; training starts by itself at 20
            page.wait_for_function("document.querySelector('#left img').complete")
            left = page.get_attribute("#left", "data-name")
            right = page.get_attribute("#right", "data-name")
            page.click("#left" if bright[left] > bright[right] else "#right")
            page.wait_for_function(ready.format(k + 1))
            if k == 19:  # training started by itself: running while we go on, or (a fast machine) done
                page.wait_for_selector("#train-progress:not([hidden]), #ranking-button:not([hidden])")
        page.wait_for_selector("#ranking-button:not([hidden])", timeout=180_000)
        page.click("#ranking-button")
        page.wait_for_selector("#ranking:not([hidden])")
        assert page.text_content("#question") != "Which photo do you prefer?"
        scores = page.eval_on_selector_all("#grid li .score", "ss => ss.map(s => s.textContent)")
        assert len(scores) == 12 and all(1 <= float(s) <= 10 for s in scores)
        assert [float(s) for s in scores] == sorted((float(s) for s in scores), reverse=True)
        assert page.text_content("#profile-path") == str(tmp_path / "me-profile")
        commands = page.text_content("#next-commands")
        assert all(f"piaa {c} PHOTOS --profile" in commands for c in ("score", "cull", "retouch"))
        page.wait_for_function("document.body.dataset.agreement === 'ready'", timeout=180_000)
        text = page.text_content("#agreement-text")
        model = page.evaluate("fetch('/api/train').then(r => r.json()).then(j => j.model)")
        a = model["agreement"]
        assert f"On {a['pairs']} pairs it did not train on, your model agrees with you" in text
        pct = lambda x: f"{int(x * 100 + 0.5)}%"  # noqa: E731 - as the page's Math.round
        assert f"you {pct(a['personal'])} of the time" in text
        assert f"the generic model {pct(a['generic'])}" in text
        _visible_box(page, "#curve")
        points = len(a["curve"])
        assert page.locator("#curve circle").count() == 2 * points >= 2
        chart = page.locator("#agreement").screenshot(path=str(shots / "agreement.png"))
        assert _accent_pixels(chart) > 30  # your model's curve is drawn, in its colour
        page.screenshot(path=str(shots / "collect-ranking.png"), full_page=False)
        first = page.get_attribute("#grid li.retouchable", "data-name")
        page.click("#grid li.retouchable")
        page.wait_for_function(f"document.body.dataset.retouched === {first!r}", timeout=180_000)
        kinds = page.eval_on_selector_all("#retouch-images figure", "fs => fs.map(f => f.dataset.kind)")
        assert kinds == ["original", "generic", "personal"]
        for kind in kinds:
            fig = f"#retouch-images figure[data-kind={kind}]"
            assert page.eval_on_selector(f"{fig} img", "i => i.complete && i.naturalWidth > 0")
            _visible_box(page, f"{fig} img")
            values = page.eval_on_selector_all(f"{fig} .scores b", "bs => bs.map(b => b.textContent)")
            assert len(values) == 2 and all(1 <= float(v) <= 10 for v in values)
        page.screenshot(path=str(shots / "collect-retouch.png"), full_page=False)
    with PreferenceStore(store) as s:
        assert len(s.judgements()) == 22
