"""The review page in headless Chromium: a pick changed with the keyboard, a frame rejected, the profile
updated; the store and the profile on disk change."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from piaa.preferences import PreferenceStore
from piaa.web.review import ReviewConfig, create_review_app
from test_review import write_shoot
from test_web_e2e import _free_port, browser  # noqa: F401  (the fixture)


@pytest.fixture
def review_server(tmp_path: Path) -> Iterator[dict]:
    folder, results = write_shoot(tmp_path)
    store, out = tmp_path / "me.sqlite", tmp_path / "me"
    app = create_review_app(ReviewConfig(results=results, store=store, profile="nima-ava", out=out))
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield {"url": f"http://127.0.0.1:{port}/", "store": store, "out": out, "folder": folder}
    finally:
        srv.should_exit = True
        thread.join(10)


def frames(page, group: int) -> list[str]:
    return page.eval_on_selector_all(f"#group-{group} .frame", "els => els.map(e => e.dataset.name)")


@pytest.mark.slow
def test_keyboard_pick_reject_and_update_my_profile(browser, review_server):  # noqa: F811
    folder = review_server["folder"]
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    page.goto(review_server["url"])
    page.wait_for_function("document.body.dataset.busy === '0'")
    assert frames(page, 0) == ["a1.jpg", "a2.jpg", "a3.jpg"]
    assert page.is_visible("#group-0 .frame.pick .badge")
    assert page.text_content("#group-1 .frame[data-name='b2.jpg'] .flag") == "blurred"
    done = "document.body.dataset.busy === '0' && document.body.dataset.judgements === '{}'"

    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")  # a3 becomes the pick: a3 > a1, a3 > a2
    page.wait_for_function(done.format(2))
    assert frames(page, 0) == ["a3.jpg", "a1.jpg", "a2.jpg"]
    assert page.get_attribute("#group-0 .frame.pick", "data-name") == "a3.jpg"

    page.keyboard.press("ArrowDown")  # group 1, its first frame: reject b1
    page.keyboard.press("x")
    page.wait_for_function(done.format(3))
    assert frames(page, 1) == ["b2.jpg", "b1.jpg"]
    assert page.get_attribute("#group-1 .frame.reject", "data-name") == "b1.jpg"

    with PreferenceStore(review_server["store"], readonly=True) as s:
        assert [j.pair for j in s.judgements()] == [
            (f"{folder}/a3.jpg", f"{folder}/a1.jpg"),
            (f"{folder}/a3.jpg", f"{folder}/a2.jpg"),
            (f"{folder}/b2.jpg", f"{folder}/b1.jpg"),
        ]
        assert s.sources() == {"cull": 3}
    assert not review_server["out"].exists()

    page.click("#update")
    page.wait_for_function("document.body.dataset.update === 'done'", timeout=120_000)
    assert "trained on 3 judgements" in page.text_content("#message")
    assert frames(page, 0)[0] == "a3.jpg" and frames(page, 1) == ["b2.jpg", "b1.jpg"]
    from piaa.models.profile import load_profile

    prof = load_profile(review_server["out"])
    assert ("a3.jpg", "a1.jpg") in prof.pairs and ("b2.jpg", "b1.jpg") in prof.pairs
