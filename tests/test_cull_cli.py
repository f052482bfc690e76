"""``piaa cull`` end to end on small generated photos: groups, picks, flags, rows, sidecars read back by
exiftool, originals untouched, bad files listed (exit 2), the report rendered in Chromium."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from conftest import synthetic_photo
from piaa.cli.main import app

runner = CliRunner()
T0 = datetime(2024, 5, 1, 10, 0, 0)
COLUMNS = ["path", "group", "rank", "status", "score", "flags", "capture_time", "time_source", "rating"]


def save(img: Image.Image, path: Path, t: datetime) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = t.strftime("%Y:%m:%d %H:%M:%S")
    exif.get_ifd(0x8769)[0x9291] = f"{t.microsecond // 10000:02d}"
    img.save(path, quality=92, exif=exif)


@pytest.fixture(scope="module")
def shoot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A burst of four frames (the third blurred, one named like rich markup), a PNG export of the first
    frame (no EXIF, a file time a day later), two unrelated photos minutes apart, and a broken file
    (also named like rich markup)."""
    d = tmp_path_factory.mktemp("shoot")
    rng = np.random.default_rng(5)
    base = synthetic_photo(rng, 480, 360)
    names = ["IMG_0001.JPG", "IMG_0002.JPG", "IMG_0003.JPG", "holiday [red] 4.JPG"]
    for k, name in enumerate(names):
        frame = base.crop((k * 3, k * 2, 480 - 12 + k * 3, 360 - 8 + k * 2)).resize((480, 360))
        if k == 2:
            frame = frame.filter(ImageFilter.GaussianBlur(4))
        save(frame, d / name, T0 + timedelta(seconds=0.3 * k))
    Image.open(d / "IMG_0001.JPG").save(d / "export.png")
    later = (T0 + timedelta(days=1)).timestamp()
    os.utime(d / "export.png", (later, later))
    save(synthetic_photo(rng, 480, 360), d / "IMG_0100.JPG", T0 + timedelta(minutes=5))
    save(synthetic_photo(rng, 480, 360), d / "IMG_0200.JPG", T0 + timedelta(minutes=9))
    (d / "broken [red].jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    return d


@pytest.fixture(scope="module")
def culled(shoot: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in shoot.iterdir()}
    out = tmp_path_factory.mktemp("out")
    res = runner.invoke(
        app,
        ["cull", str(shoot), "--profile", "nima-ava", "--out", str(out / "o"), "--xmp",
         "--output", str(out / "rows.csv")],
    )  # fmt: skip
    return {"res": res, "out": out, "before": before}


def test_exit_2_after_everything_with_the_bad_file_listed(culled):
    res = culled["res"]
    assert res.exit_code == 2, res.output
    assert "broken [red].jpg: truncated or corrupt" in res.output  # as text, not taken for rich markup
    assert "1 image skipped" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_rows_group_pick_and_flag(culled, shoot):
    with open(culled["out"] / "rows.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == COLUMNS
    by = {Path(r["path"]).name: r for r in rows}
    assert set(by) == {"IMG_0001.JPG", "IMG_0002.JPG", "IMG_0003.JPG", "holiday [red] 4.JPG", "export.png",
                       "IMG_0100.JPG", "IMG_0200.JPG"}  # fmt: skip
    burst = {by[n]["group"] for n in ("IMG_0001.JPG", "IMG_0002.JPG", "IMG_0003.JPG", "holiday [red] 4.JPG")}
    assert len(burst) == 1, "the burst is one group"
    assert by["export.png"]["group"] in burst, "an exact duplicate lands with its original"
    assert by["export.png"]["time_source"] == "file" and by["IMG_0001.JPG"]["time_source"] == "exif"
    assert by["IMG_0002.JPG"]["capture_time"] == "2024-05-01T10:00:00.300000"
    assert len({by["IMG_0100.JPG"]["group"], by["IMG_0200.JPG"]["group"]} | burst) == 3
    assert by["IMG_0003.JPG"]["flags"] == "blurred" and by["IMG_0003.JPG"]["status"] == "reject"
    assert by["IMG_0003.JPG"]["rating"] == "-1"
    group = [r for r in rows if r["group"] in burst]
    assert sorted(int(r["rank"]) for r in group) == [1, 2, 3, 4, 5]
    assert [r["status"] for r in group].count("pick") == 1
    pick = next(r for r in group if r["status"] == "pick")
    assert not pick["flags"] and 1 <= int(pick["rating"]) <= 5
    unflagged = [float(r["score"]) for r in group if not r["flags"]]
    assert float(pick["score"]) == max(unflagged)
    assert [int(r["group"]) for r in rows] == sorted(int(r["group"]) for r in rows)
    assert (
        int(by["IMG_0001.JPG"]["group"]) < int(by["IMG_0100.JPG"]["group"]) < int(by["IMG_0200.JPG"]["group"])
    )
    js = json.loads((culled["out"] / "o" / "cull.json").read_text())
    assert list(js[0]) == COLUMNS and isinstance(js[0]["flags"], list)
    assert {Path(r["path"]).name: r["status"] for r in js} == {n: r["status"] for n, r in by.items()}


def test_originals_never_written(culled, shoot):
    for p in shoot.iterdir():
        if p.suffix != ".xmp":
            assert (p.read_bytes(), p.stat().st_mtime_ns) == culled["before"][p.name], p.name


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed")
def test_sidecars_read_back_by_exiftool(culled, shoot):
    with open(culled["out"] / "rows.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    sidecars = [Path(r["path"] + ".xmp") for r in rows]
    out = subprocess.run(
        ["exiftool", "-j", "-XMP:all", *map(str, sidecars)], capture_output=True, text=True, check=True
    )
    tags = {Path(t["SourceFile"]).name: t for t in json.loads(out.stdout)}
    for r in rows:
        t = tags[Path(r["path"]).name + ".xmp"]
        assert t["Rating"] == int(r["rating"])
        assert t["PickLabel"] == {"pick": 3, "alternate": 2, "reject": 1}[r["status"]]
        assert t.get("Label") == {"pick": "Green", "alternate": None, "reject": "Red"}[r["status"]]
    assert not (shoot / "broken [red].jpg.xmp").exists()


def test_report_renders_in_chromium(culled):
    from test_web_e2e import ARGS, CHROMIUM, _skip

    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _skip(f"playwright cannot be imported ({exc})")
    page_path = culled["out"] / "o" / "report.html"
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        except Exception as exc:  # noqa: BLE001
            _skip(f"Chromium cannot be launched from {CHROMIUM} ({str(exc).splitlines()[0]})")
        try:
            page = b.new_page()
            page.goto(page_path.as_uri())
            ok = page.eval_on_selector_all(
                "figure img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"
            )
            assert len(ok) == 7 and all(ok)
            assert page.locator("section.group").count() == 3
            assert page.locator("figure.pick").count() == 3
            assert page.locator("figure.reject .flag").first.inner_text() == "blurred"
            assert "holiday [red] 4.JPG" in page.content()
            left_out = page.locator("section.left-out")  # the unreadable file is named, not silently absent
            assert "1 file not culled" in left_out.inner_text()
            assert "broken [red].jpg: truncated or corrupt" in left_out.inner_text()
        finally:
            b.close()


def test_score_xmp_writes_ratings(tmp_path):
    rng = np.random.default_rng(9)
    for i in range(5):
        synthetic_photo(rng, 160, 120).save(tmp_path / f"p{i}.jpg")
    res = runner.invoke(app, ["score", str(tmp_path), "--profile", "nima-ava", "--xmp", "--sidecar", "adobe"])
    assert res.exit_code == 0, res.output
    from piaa.cull.xmp import read_sidecar

    stars = sorted(int(read_sidecar(tmp_path / f"p{i}.xmp")["Rating"]) for i in range(5))
    assert stars == [1, 2, 3, 4, 5]


def test_bad_options_are_one_line_errors(tmp_path, shoot):
    res = runner.invoke(app, ["cull", str(shoot), "--profile", "nima-ava", "--sidecar", "lightroom"])
    assert res.exit_code == 2 and "--sidecar lightroom" in res.output
    res = runner.invoke(
        app, ["cull", str(shoot), "--profile", "nima-ava", "--output", str(tmp_path / "x.txt")]
    )
    assert res.exit_code == 2 and "must end in .csv or .json" in res.output
    res = runner.invoke(app, ["cull", str(tmp_path / "nothing"), "--profile", "nima-ava"])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_a_sidecar_that_cannot_be_merged_is_reported_as_such_and_the_photo_still_culled(tmp_path):
    rng = np.random.default_rng(9)
    for k in range(2):
        save(synthetic_photo(rng, 320, 240), tmp_path / f"IMG_{k}.JPG", T0 + timedelta(minutes=5 * k))
    bad = tmp_path / "IMG_0.JPG.xmp"
    bad.write_text("<x:xmpmeta not closed")
    res = runner.invoke(
        app,
        ["cull", str(tmp_path), "--profile", "nima-ava", "--no-eyes", "--xmp",
         "--output", str(tmp_path / "rows.json")],
    )  # fmt: skip
    assert res.exit_code == 2, res.output
    assert "1 sidecar not written (the photos' results are kept)" in res.output, res.output
    assert "IMG_0.JPG.xmp" in res.output and "skipped" not in res.output
    assert bad.read_text() == "<x:xmpmeta not closed"  # never clobbered
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert sorted(Path(r["path"]).name for r in rows) == ["IMG_0.JPG", "IMG_1.JPG"]


def test_nothing_readable_prints_no_empty_table(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    res = runner.invoke(app, ["cull", str(tmp_path), "--profile", "nima-ava", "--no-eyes"])
    assert res.exit_code == 2 and "a.jpg" in res.output, res.output
    assert "0 picks of 0 photos" not in res.output
