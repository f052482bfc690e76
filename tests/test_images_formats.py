"""Phone and camera formats load, files are judged by content, and a folder walk drops nothing silently."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from piaa.data import files as files_module
from piaa.data import images as images_module
from piaa.data.images import (
    IMAGE_EXTENSIONS,
    FailureLog,
    ImageError,
    iter_image_files,
    load_image,
)
from piaa.errors import PiaaError


def marked(width: int = 40, height: int = 20) -> Image.Image:
    """Grey with a green block in the stored top-left corner: shows orientation and colour."""
    img = Image.new("RGB", (width, height), (128, 128, 128))
    img.paste((0, 255, 0), (0, 0, 8, 8))
    return img


def close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def orientation_exif(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


# ---------------------------------------------------------------------------------------------------------
# formats
# ---------------------------------------------------------------------------------------------------------


needs_heif = pytest.mark.skipif(not files_module.HEIF_AVAILABLE, reason="pillow-heif not installed")
needs_avif = pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF support")


@needs_heif
@pytest.mark.parametrize("suffix", [".HEIC", ".heif", ".hif"])
def test_heic_loads(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"IMG_0001{suffix}"
    marked().save(path, "HEIF", quality=-1)  # -1: lossless
    img = load_image(path)
    assert (img.mode, img.size) == ("RGB", (40, 20))
    assert close(img.getpixel((3, 3)), (0, 255, 0)) and close(img.getpixel((30, 10)), (128, 128, 128))
    assert list(iter_image_files([tmp_path])) == [path]


@needs_heif
def test_heic_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "sideways.heic"
    marked().save(path, "HEIF", quality=-1, exif=orientation_exif(6))
    img = load_image(path)
    assert img.size == (20, 40)
    assert close(img.getpixel((16, 3)), (0, 255, 0))  # stored top-left shown top-right


@needs_avif
@pytest.mark.parametrize("orientation", [1, 6])
def test_avif_loads_upright(tmp_path: Path, orientation: int) -> None:
    path = tmp_path / "photo.avif"
    marked().save(path, "AVIF", quality=100, exif=orientation_exif(orientation))
    img = load_image(path)
    assert img.mode == "RGB"
    if orientation == 1:
        assert img.size == (40, 20) and close(img.getpixel((3, 3)), (0, 255, 0))
    else:
        assert img.size == (20, 40) and close(img.getpixel((16, 3)), (0, 255, 0))
    assert list(iter_image_files([tmp_path])) == [path]


def test_missing_heif_support_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "IMG_0001.HEIC"
    # ftyp box with the heic brand: what an iPhone file starts with.
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    monkeypatch.setattr(images_module, "HEIF_AVAILABLE", False)
    with pytest.raises(ImageError, match="need the pillow-heif package"):
        load_image(path)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("photo.jfif", "JPEG"), ("photo.jpe", "JPEG"), ("jpeg-named.png", "JPEG"), ("png-named.jpg", "PNG"),
     ("no-suffix", "JPEG"), ("webp-named.gif", "WEBP"), ("Photo.JPG_large", "JPEG"), ("anim.gif", "GIF")],
)  # fmt: skip
def test_content_decides_not_the_name(tmp_path: Path, name: str, fmt: str) -> None:
    path = tmp_path / name
    marked().save(path, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    img = load_image(path)
    assert (img.mode, img.size) == ("RGB", (40, 20))
    assert close(img.getpixel((3, 3)), (0, 255, 0))
    assert list(iter_image_files([tmp_path])) == [path]  # the walk takes it too


def test_sniff_format() -> None:
    sniff = files_module.sniff_format
    assert sniff(b"\xff\xd8\xff\xe0" + b"\0" * 12) == "JPEG"
    assert sniff(b"\x89PNG\r\n\x1a\n" + b"\0" * 8) == "PNG"
    assert sniff(b"RIFF\0\0\0\0WEBPVP8 ") == "WEBP"
    assert sniff(b"\0\0\0\x1cftypheic\0\0\0\0") == "HEIF"
    assert sniff(b"\0\0\0\x1cftypavif\0\0\0\0") == "AVIF"
    assert sniff(b"\0\0\0\x18ftypcrx \0\0\0\0") == "RAW"  # Canon CR3
    assert sniff(b"FUJIFILMCCD-RAW 0201") == "RAW"
    assert sniff(b"II*\0\x08\0\0\0" + b"\0" * 8) == "TIFF"  # also DNG, NEF, CR2, ARW
    assert sniff(b"\0\0\0\x18ftypqt  \0\0\0\0") is None  # a QuickTime movie
    assert sniff(b"just some text, no image") is None
    assert sniff(b"") is None


def test_jpeg_xl_is_named_not_called_unrecognised(tmp_path: Path) -> None:
    path = tmp_path / "photo.jxl"
    path.write_bytes(b"\xff\x0a" + b"\0" * 64)
    if ".jxl" in IMAGE_EXTENSIONS:
        pytest.skip("this Pillow reads JPEG XL")
    with pytest.raises(ImageError, match="JPEG XL images are not supported"):
        load_image(path)
    assert list(iter_image_files([tmp_path])) == [path]  # an image by content: taken, then reported


def test_image_error_is_a_piaa_error(tmp_path: Path) -> None:
    with pytest.raises(PiaaError) as info:
        load_image(tmp_path / "gone.jpg")
    assert isinstance(info.value, ImageError)
    assert str(info.value) == f"{tmp_path / 'gone.jpg'}: no such file"


# ---------------------------------------------------------------------------------------------------------
# corrupt EXIF: a one-line note naming the file, never a raw warning
# ---------------------------------------------------------------------------------------------------------


def test_corrupt_exif_becomes_a_note_naming_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "badexif.jpg"
    marked().save(path, quality=95, exif=b"Exif\x00\x00MM\x00*garbage")
    with caplog.at_level(logging.WARNING, logger="piaa.data.images"), warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning escaping load_image fails the test
        img = load_image(path)
    assert img.size == (40, 20)
    notes = img.info["piaa_notes"]
    assert len(notes) == 1
    assert notes[0].startswith(f"{path}: ") and "EXIF" in notes[0] and "\n" not in notes[0]
    assert [r.getMessage() for r in caplog.records] == notes


def test_corrupt_exif_on_an_in_memory_image_raises_no_warning(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    path = tmp_path / "badexif.jpg"
    marked().save(path, quality=95, exif=b"Exif\x00\x00MM\x00*garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow itself warns when the caller opens it: not ours to catch
        opened = Image.open(path)
    with caplog.at_level(logging.WARNING, logger="piaa.data.images"), warnings.catch_warnings():
        warnings.simplefilter("error")
        img = images_module.as_rgb_image(opened)
    assert img.size == (40, 20)
    assert all(r.getMessage().startswith(f"{path}: ") for r in caplog.records)  # notes, if any, name it


def test_clean_file_has_no_notes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "fine.jpg"
    marked().save(path, quality=95)
    with caplog.at_level(logging.WARNING, logger="piaa.data.images"):
        img = load_image(path)
    assert "piaa_notes" not in img.info and not caplog.records


# ---------------------------------------------------------------------------------------------------------
# the walk: every file yielded or reported
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def phone_dump(tmp_path: Path) -> Path:
    """What a phone or camera card copy looks like."""
    root = tmp_path / "dump"
    (root / "DCIM").mkdir(parents=True)
    (root / ".thumbnails").mkdir()
    marked().save(root / "DCIM" / "IMG_0001.jfif", "JPEG")
    marked().save(root / "DCIM" / "IMG_0002", "PNG")  # no suffix: taken by content
    (root / "DCIM" / "IMG_0003.AAE").write_text("<plist>edits</plist>")
    (root / "DCIM" / "IMG_0004.MOV").write_bytes(b"\0\0\0\x14ftypqt  \0\0\0\0qt  ")
    (root / "DCIM" / "broken.jpg").write_bytes(b"not a jpeg")  # taken by name, fails on load
    (root / "notes.txt").write_text("holiday")
    (root / ".DS_Store").write_bytes(b"\0")
    marked().save(root / ".thumbnails" / "t.jpg")
    if files_module.HEIF_AVAILABLE:
        marked().save(root / "DCIM" / "IMG_0000.HEIC", "HEIF")
    if features.check("avif"):
        marked().save(root / "DCIM" / "IMG_0005.avif", "AVIF")
    return root


def test_walk_reports_every_file_it_does_not_yield(phone_dump: Path) -> None:
    skipped = FailureLog()
    found = [p.relative_to(phone_dump).as_posix() for p in iter_image_files([phone_dump], skipped=skipped)]
    expected = ["DCIM/IMG_0001.jfif", "DCIM/IMG_0002", "DCIM/broken.jpg"]
    if files_module.HEIF_AVAILABLE:
        expected.insert(0, "DCIM/IMG_0000.HEIC")
    if features.check("avif"):
        expected.append("DCIM/IMG_0005.avif")
    assert found == sorted(expected)
    assert skipped.lines() == [
        f"{phone_dump / 'DCIM' / 'IMG_0003.AAE'}: not an image (unrecognised format)",
        f"{phone_dump / 'DCIM' / 'IMG_0004.MOV'}: not an image (unrecognised format)",
        f"{phone_dump / 'notes.txt'}: not an image (unrecognised format)",
    ]
    for path in found:  # and each yielded file either loads or is one clear error
        try:
            load_image(phone_dump / path)
        except ImageError as err:
            assert path == "DCIM/broken.jpg" and "not an image file" in err.reason


def test_walk_skipped_accepts_a_callback(phone_dump: Path) -> None:
    seen: list[tuple[str, str]] = []
    list(iter_image_files(phone_dump, skipped=lambda path, reason: seen.append((path.name, reason))))
    assert ("notes.txt", "not an image (unrecognised format)") in seen


def test_walk_without_sink_logs_skipped_files_at_debug(
    phone_dump: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="piaa.data.images"):
        list(iter_image_files([phone_dump]))
    assert any("notes.txt: skipped: not an image" in r.getMessage() for r in caplog.records)


def test_unreadable_subfolder_is_reported_and_the_walk_goes_on(
    phone_dump: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = phone_dump / "DCIM"
    real_listdir = os.listdir

    def listdir(path: str | os.PathLike[str]) -> list[str]:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_listdir(path)

    monkeypatch.setattr(files_module.os, "listdir", listdir)
    skipped = FailureLog()
    found = list(iter_image_files([phone_dump], skipped=skipped))
    assert found == []
    assert skipped.lines() == [
        f"{locked}: cannot list folder (permission denied)",
        f"{phone_dump / 'notes.txt'}: not an image (unrecognised format)",
    ]


@pytest.mark.skipif(
    not hasattr(os, "symlink") or not hasattr(os, "mkfifo"), reason="needs symlinks and fifos"
)
def test_broken_link_and_special_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    os.mkfifo(tmp_path / "pipe.jpg")
    marked().save(tmp_path / "ok.png")
    skipped = FailureLog()
    assert list(iter_image_files([tmp_path], skipped=skipped)) == [tmp_path / "ok.png"]
    assert [(p.name, reason) for p, reason in skipped] == [
        ("gone.jpg", "broken symbolic link"),
        ("pipe.jpg", "not a regular file"),
    ]


def test_not_recursive_reports_the_folders_it_leaves(phone_dump: Path) -> None:
    skipped = FailureLog()
    assert list(iter_image_files([phone_dump], recursive=False, skipped=skipped)) == []
    assert (phone_dump / "DCIM", "folder (not walked: not recursive)") in list(skipped)


def test_walk_takes_a_renamed_photo_and_reports_text_named_like_an_image(tmp_path: Path) -> None:
    marked().save(tmp_path / "scan.dat", "PNG")  # odd suffix, image content
    (tmp_path / "readme.md").write_text("# hi")
    skipped = FailureLog()
    assert list(iter_image_files([tmp_path], skipped=skipped)) == [tmp_path / "scan.dat"]
    assert [p.name for p, _ in skipped] == ["readme.md"]
    np.testing.assert_array_equal(np.asarray(load_image(tmp_path / "scan.dat")), np.asarray(marked()))


def test_unreadable_named_folder_raises_at_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_listdir = os.listdir

    def listdir(path: str | os.PathLike[str]) -> list[str]:
        if Path(path) == tmp_path:
            raise PermissionError(13, "Permission denied", str(path))
        return real_listdir(path)

    monkeypatch.setattr(files_module.os, "listdir", listdir)
    with pytest.raises(ImageError) as info:
        iter_image_files([tmp_path])
    assert str(info.value) == f"{tmp_path}: cannot list folder (permission denied)"


def test_notes_stay_with_their_photo_when_threads_decode_in_parallel(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    bad, good = tmp_path / "badexif.jpg", tmp_path / "good.jpg"
    marked().save(bad, quality=95, exif=b"Exif\x00\x00MM\x00*garbage")
    marked().save(good, quality=95)
    paths = [bad, good] * 40
    with ThreadPoolExecutor(4) as pool:
        imgs = list(pool.map(load_image, paths))
    for path, img in zip(paths, imgs, strict=True):
        notes = img.info.get("piaa_notes", [])
        if path == bad:
            assert len(notes) == 1 and notes[0].startswith(f"{bad}: "), notes
        else:
            assert notes == []
