"""Capture times: EXIF DateTimeOriginal with and without SubSecTimeOriginal, the file's time when missing."""

from __future__ import annotations

import os
from datetime import datetime

import numpy as np
from PIL import Image

from conftest import synthetic_photo
from piaa.cull.times import capture_time, parse_exif_time


def save(path, when: str | None = None, subsec: str | None = None, *, ifd0: str | None = None) -> None:
    exif = Image.Exif()
    if ifd0:
        exif[0x0132] = ifd0
    if when is not None:
        exif.get_ifd(0x8769)[0x9003] = when
    if subsec is not None:
        exif.get_ifd(0x8769)[0x9291] = subsec
    synthetic_photo(np.random.default_rng(0)).save(path, exif=exif)


def test_exif_time_with_subseconds(tmp_path):
    save(tmp_path / "a.jpg", "2024:05:01 10:11:12", "25")
    assert capture_time(tmp_path / "a.jpg") == (datetime(2024, 5, 1, 10, 11, 12, 250000), "exif")
    save(tmp_path / "b.jpg", "2024:05:01 10:11:12", "007")
    assert capture_time(tmp_path / "b.jpg")[0] == datetime(2024, 5, 1, 10, 11, 12, 7000)


def test_exif_time_without_subseconds(tmp_path):
    save(tmp_path / "a.jpg", "2024:05:01 10:11:12")
    assert capture_time(tmp_path / "a.jpg") == (datetime(2024, 5, 1, 10, 11, 12), "exif")


def test_ifd0_datetime_is_the_last_resort_inside_exif(tmp_path):
    save(tmp_path / "a.jpg", ifd0="2023:01:02 03:04:05")
    assert capture_time(tmp_path / "a.jpg") == (datetime(2023, 1, 2, 3, 4, 5), "exif")


def test_missing_or_blank_exif_falls_back_to_the_file_time(tmp_path):
    stamp = datetime(2022, 7, 8, 9, 10, 11, 500000).timestamp()
    for name, when in (("none.jpg", None), ("zeros.jpg", "0000:00:00 00:00:00"), ("blank.jpg", "    ")):
        save(tmp_path / name, when)
        os.utime(tmp_path / name, (stamp, stamp))
        assert capture_time(tmp_path / name) == (datetime.fromtimestamp(stamp), "file"), name
    png = tmp_path / "c.png"
    synthetic_photo(np.random.default_rng(1)).save(png)
    os.utime(png, (stamp, stamp))
    assert capture_time(png) == (datetime.fromtimestamp(stamp), "file")
    garbage = tmp_path / "not-an-image.jpg"
    garbage.write_bytes(b"garbage")
    assert capture_time(garbage)[1] == "file"


def test_parse_exif_time():
    assert parse_exif_time(b"2024:05:01 10:11:12\x00", b"5\x00") == datetime(2024, 5, 1, 10, 11, 12, 500000)
    assert parse_exif_time("2024:13:01 10:11:12") is None
    assert parse_exif_time(None) is None
    assert parse_exif_time("2024:05:01 10:11:12", "abc") == datetime(2024, 5, 1, 10, 11, 12)
