"""The collect page's "What it learnt" panel in a real browser (headless Chromium, as
tests/test_web_e2e.py: skips where Playwright or Chromium is missing)."""

from __future__ import annotations

import time

import httpx
import pytest

from piaa.preferences import PreferenceStore
from piaa.web import CollectConfig, create_app
from test_explain import _album
from test_web_e2e import _serve, browser  # noqa: F401  (the fixture)


@pytest.mark.slow
def test_the_ranking_explains_the_taste_with_photos_at_both_ends(browser, tmp_path):  # noqa: F811
    from piaa.models.personalize import personalize

    bright = _album(tmp_path / "album", 12, seed=2)
    store = tmp_path / "me.sqlite"
    names = sorted(bright)
    with PreferenceStore(store) as s:
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                s.add(*((a, b) if bright[a] > bright[b] else (b, a)), source="test")
    personalize(None, tmp_path / "album", store, tmp_path / "me-profile", generic="nima-ava",
                progress=False, agreement=False, rank_epochs=2)  # fmt: skip
    cfg = CollectConfig(album=tmp_path / "album", store=store, strategy="random", auto_train=False,
                        prepare_retoucher=False)  # fmt: skip
    for url in _serve(create_app(cfg)):
        deadline = time.monotonic() + 60  # the page shows the saved profile once the server has loaded it
        while httpx.get(f"{url}api/train").json()["model"] is None:
            assert time.monotonic() < deadline, "the saved profile was not loaded"
            time.sleep(0.1)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(url)
        page.wait_for_selector("#ranking-button:not([hidden])", timeout=60_000)
        page.click("#ranking-button")
        page.click("#explain-button")
        page.wait_for_function("document.body.dataset.explained !== undefined", timeout=60_000)
        assert int(page.evaluate("document.body.dataset.explained")) >= 1
        row = ".explain-axis[data-axis=brightness]"
        assert "more than the crowd" in page.text_content(row)
        shown = page.eval_on_selector_all(f"{row} img", "is => is.map(i => i.complete && i.naturalWidth > 0)")
        assert len(shown) == 6 and all(shown)
        assert "Not shown:" in page.text_content("#explain-axes")  # what the fit does not support, and why
