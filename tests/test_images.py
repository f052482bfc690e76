"""Tests for piaa.data.images: every image is generated here, so the suite needs no data and no network."""

from __future__ import annotations

import os
import pickle
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from piaa.data.images import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    FailureLog,
    ImageError,
    iter_image_files,
    load_image,
    to_rgb,
)

# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------


def gradient(width: int = 37, height: int = 23) -> Image.Image:
    """An RGB image whose pixels all differ, so that a flip or a channel swap shows."""
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=-1), "RGB")


def noise_jpeg(path: Path, size: tuple[int, int] = (200, 160), **save_kwargs: object) -> Path:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr, "RGB").save(path, "JPEG", quality=90, **save_kwargs)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims ``width`` x ``height``: a decompression bomb costs nothing to make."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )
    return path


def pixel(img: Image.Image, xy: tuple[int, int] = (0, 0)) -> tuple[int, int, int]:
    value = img.getpixel(xy)
    assert isinstance(value, tuple)
    return value  # type: ignore[return-value]


def assert_close(actual: tuple[int, ...], expected: tuple[int, ...], tol: int = 1) -> None:
    assert len(actual) == len(expected)
    assert all(abs(a - e) <= tol for a, e in zip(actual, expected, strict=True)), (actual, expected)


# ---------------------------------------------------------------------------------------------------------
# formats
# ---------------------------------------------------------------------------------------------------------

LOSSLESS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}


CLASSIC = [".bmp", ".jfif", ".jpe", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"]


def test_extensions_constant() -> None:
    # Everything Pillow reads (with pillow-heif) plus camera RAW; video and data stubs are not photos.
    new = {".gif", ".heic", ".heif", ".avif", ".dng", ".cr3", ".nef", ".arw"}
    assert set(CLASSIC) | new <= IMAGE_EXTENSIONS
    assert not {".mpg", ".pdf", ".h5", ".txt", ".mov"} & IMAGE_EXTENSIONS
    assert all(ext == ext.lower() and ext.startswith(".") for ext in IMAGE_EXTENSIONS)
    assert MAX_PIXELS == 100_000_000


@pytest.mark.parametrize("suffix", CLASSIC)
def test_each_format_round_trips_to_rgb(tmp_path: Path, suffix: str) -> None:
    src = gradient()
    path = tmp_path / f"img{suffix}"
    kwargs = {"lossless": True} if suffix == ".webp" else {}
    src.save(path, **kwargs)
    img = load_image(path)
    assert img.mode == "RGB"
    assert img.size == (37, 23)
    got = np.asarray(img).astype(int)
    want = np.asarray(src).astype(int)
    if suffix in LOSSLESS or suffix == ".webp":
        np.testing.assert_array_equal(got, want)
    else:  # JPEG: colours close on average
        assert np.abs(got - want).mean() < 8


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_tiff_in_other_modes_loads(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "img.tif"
    Image.new(mode, (8, 6)).save(path)
    img = load_image(path)
    assert (img.mode, img.size) == ("RGB", (8, 6))


def test_sixteen_bit_png_from_disk_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16)).save(path)
    img = load_image(path)
    assert [pixel(img, (x, 0)) for x in range(3)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]


def test_loaded_image_outlives_the_file(tmp_path: Path) -> None:
    path = tmp_path / "img.png"
    gradient().save(path)
    img = load_image(path)
    path.unlink()
    assert pixel(img, (36, 22)) == pixel(gradient(), (36, 22))


def test_multi_frame_file_gives_first_frame_and_closes_file(tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    first, second = Image.new("RGB", (10, 10), (255, 0, 0)), Image.new("RGB", (10, 10), (0, 0, 255))
    first.save(path, save_all=True, append_images=[second])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        img = load_image(path)
    assert pixel(img) == (255, 0, 0)


# ---------------------------------------------------------------------------------------------------------
# modes
# ---------------------------------------------------------------------------------------------------------


def palette_image(transparent: bool) -> Image.Image:
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 - 2) * 3)
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    if transparent:
        img.info["transparency"] = 1
    return img


def grid(mode: str, values: list[object]) -> Image.Image:
    img = Image.new(mode, (len(values), 1))
    for x, value in enumerate(values):
        img.putpixel((x, 0), value)  # type: ignore[arg-type]
    return img


def uint16_image(mode: str, values: list[int]) -> Image.Image:
    dtype = ">u2" if mode == "I;16B" else "<u2"
    return Image.frombytes(mode, (len(values), 1), np.array(values, dtype=dtype).tobytes())


CASES: list[tuple[str, Image.Image, list[tuple[int, int, int]], int]] = [
    ("RGB", grid("RGB", [(1, 2, 3)]), [(1, 2, 3)], 0),
    ("L", grid("L", [0, 100, 255]), [(0, 0, 0), (100, 100, 100), (255, 255, 255)], 0),
    ("1", grid("1", [0, 1]), [(0, 0, 0), (255, 255, 255)], 0),
    ("LA", grid("LA", [(0, 255), (0, 0), (0, 128)]), [(0, 0, 0), (255, 255, 255), (127, 127, 127)], 1),
    ("RGBA", grid("RGBA", [(255, 0, 0, 128)]), [(255, 128, 128)], 1),
    ("RGBA opaque+clear", grid("RGBA", [(0, 0, 255, 255), (0, 0, 0, 0)]), [(0, 0, 255), (255, 255, 255)], 0),
    ("P", palette_image(transparent=False), [(255, 0, 0), (0, 0, 255)], 0),
    ("P transparency", palette_image(transparent=True), [(255, 0, 0), (255, 255, 255)], 0),
    ("CMYK", grid("CMYK", [(255, 0, 0, 0), (0, 0, 0, 0)]), [(0, 255, 255), (255, 255, 255)], 0),
    ("YCbCr", Image.new("RGB", (1, 1), (255, 0, 0)).convert("YCbCr"), [(255, 0, 0)], 3),
    ("I;16", uint16_image("I;16", [0, 32768, 65535]), [(0, 0, 0), (128, 128, 128), (255, 255, 255)], 0),
    ("I;16L", uint16_image("I;16L", [0, 32768, 65535]), [(0, 0, 0), (128, 128, 128), (255, 255, 255)], 0),
    ("I;16B", uint16_image("I;16B", [0, 32768, 65535]), [(0, 0, 0), (128, 128, 128), (255, 255, 255)], 0),
    ("I as 16-bit", grid("I", [0, 32768, 65535]), [(0, 0, 0), (128, 128, 128), (255, 255, 255)], 0),
    ("I over 16-bit", grid("I", [-5, 100_000, 200_000]), [(0, 0, 0), (128, 128, 128), (255, 255, 255)], 0),
    ("F unit range", grid("F", [0.0, 0.5, 1.0]), [(0, 0, 0), (128, 128, 128), (255, 255, 255)], 0),
    ("F byte range", grid("F", [-3.0, 100.0, 300.0]), [(0, 0, 0), (100, 100, 100), (255, 255, 255)], 0),
    ("F nan", grid("F", [float("nan"), 1.0]), [(0, 0, 0), (255, 255, 255)], 0),
]


@pytest.mark.parametrize(("label", "img", "expected", "tol"), CASES, ids=[c[0] for c in CASES])
def test_to_rgb_colours(label: str, img: Image.Image, expected: list[tuple[int, int, int]], tol: int) -> None:
    out = to_rgb(img)
    assert out.mode == "RGB"
    assert out.size == img.size
    for x, want in enumerate(expected):
        assert_close(pixel(out, (x, 0)), want, tol)


def test_to_rgb_does_not_modify_input() -> None:
    img = grid("RGBA", [(255, 0, 0, 128)])
    to_rgb(img)
    assert img.mode == "RGBA"
    assert img.getpixel((0, 0)) == (255, 0, 0, 128)


@pytest.mark.parametrize("mode", ["PA", "RGBa", "La", "RGBX", "LAB", "HSV"])
def test_to_rgb_rare_modes(mode: str) -> None:
    out = to_rgb(Image.new(mode, (3, 2)))
    assert (out.mode, out.size) == ("RGB", (3, 2))


def test_premultiplied_grey_alpha_over_white() -> None:
    # La stores premultiplied grey: (50, 128) is grey 100 at half opacity, seen over white as ~178.
    img = Image.frombytes("La", (1, 1), bytes([50, 128]))
    assert_close(pixel(to_rgb(img)), (178, 178, 178), 2)


def test_png_with_transparency_key_composited_over_white(tmp_path: Path) -> None:
    path = tmp_path / "key.png"
    grid("L", [10, 200]).save(path, transparency=10)
    img = load_image(path)
    assert [pixel(img, (x, 0)) for x in range(2)] == [(255, 255, 255), (200, 200, 200)]


def test_transparent_webp_loads_over_white(tmp_path: Path) -> None:
    path = tmp_path / "alpha.webp"
    grid("RGBA", [(0, 0, 0, 0), (0, 0, 255, 255)]).save(path, lossless=True)
    img = load_image(path)
    assert [pixel(img, (x, 0)) for x in range(2)] == [(255, 255, 255), (0, 0, 255)]


# ---------------------------------------------------------------------------------------------------------
# EXIF orientation
# ---------------------------------------------------------------------------------------------------------


def marked_image() -> Image.Image:
    """40x20 grey with a green block in the stored top-left corner."""
    img = Image.new("RGB", (40, 20), (128, 128, 128))
    img.paste((0, 255, 0), (0, 0, 8, 8))
    return img


def exif_with_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


@pytest.mark.parametrize(("fmt", "suffix"), [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp")])
def test_exif_orientation_6_is_applied(tmp_path: Path, fmt: str, suffix: str) -> None:
    path = tmp_path / f"rotated{suffix}"
    kwargs: dict[str, object] = {"quality": 95} if fmt == "JPEG" else {}
    marked_image().save(path, fmt, exif=exif_with_orientation(6), **kwargs)
    img = load_image(path)
    assert img.size == (20, 40)
    # Orientation 6: rotate 90 degrees clockwise to display, so the stored top-left goes top-right.
    assert_close(pixel(img, (16, 3)), (0, 255, 0), 12)
    assert_close(pixel(img, (3, 3)), (128, 128, 128), 12)
    assert_close(pixel(img, (3, 36)), (128, 128, 128), 12)
    assert img.getexif().get(0x0112, 1) == 1  # nobody downstream may rotate it a second time


def test_no_orientation_leaves_image_as_stored(tmp_path: Path) -> None:
    path = tmp_path / "upright.png"
    marked_image().save(path)
    img = load_image(path)
    assert img.size == (40, 20)
    assert pixel(img, (3, 3)) == (0, 255, 0)


def test_corrupt_exif_does_not_lose_the_image(tmp_path: Path) -> None:
    path = tmp_path / "badexif.jpg"
    marked_image().save(path, quality=95, exif=b"Exif\x00\x00MM\x00*garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = load_image(path)
    assert img.size == (40, 20)


# ---------------------------------------------------------------------------------------------------------
# broken files
# ---------------------------------------------------------------------------------------------------------


def assert_one_line_error(err: ImageError, path: Path, reason_part: str) -> None:
    text = str(err)
    assert "\n" not in text
    assert text.startswith(f"{path}: ")
    assert text == f"{err.path}: {err.reason}"
    assert err.path == path
    assert reason_part in err.reason


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_jpeg(tmp_path: Path, keep: float) -> None:
    path = noise_jpeg(tmp_path / "cut.jpg")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert_one_line_error(info.value, path, "truncated or corrupt")
    assert "cut.jpg" in str(info.value)


def test_truncated_png(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert_one_line_error(info.value, path, "truncated or corrupt")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert_one_line_error(info.value, path, "file is empty")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert_one_line_error(info.value, path, "not an image file")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as info:
        load_image(tmp_path / "nope.jpg")
    assert_one_line_error(info.value, tmp_path / "nope.jpg", "no such file")
    with pytest.raises(ImageError) as info:
        load_image(tmp_path)
    assert_one_line_error(info.value, tmp_path, "directory")


def test_image_error_is_picklable_and_keeps_fields() -> None:
    err = ImageError("a/b.jpg", "file is empty")
    clone = pickle.loads(pickle.dumps(err))
    assert isinstance(clone, ImageError)
    assert (clone.path, clone.reason, str(clone)) == (Path("a/b.jpg"), "file is empty", str(err))


def test_image_error_stays_one_line_with_odd_text() -> None:
    err = ImageError("we\nird.jpg", "two\nlines   here")
    assert "\n" not in str(err)
    assert err.reason == "two lines here"


def test_bad_draft_size_is_a_programming_error(tmp_path: Path) -> None:
    path = noise_jpeg(tmp_path / "a.jpg")
    with pytest.raises(ValueError, match="draft_size"):
        load_image(path, draft_size=(0, 10))


# ---------------------------------------------------------------------------------------------------------
# decompression bombs
# ---------------------------------------------------------------------------------------------------------


def test_max_pixels_small_limit(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    gradient(20, 20).save(path)
    with pytest.raises(ImageError) as info:
        load_image(path, max_pixels=100)
    assert_one_line_error(info.value, path, "image too large (20x20 pixels, limit 100)")
    assert load_image(path, max_pixels=400).size == (20, 20)
    assert load_image(path, max_pixels=None).size == (20, 20)


def test_header_claims_huge_size_rejected_before_decoding(tmp_path: Path) -> None:
    path = png_header_only(tmp_path / "bomb.png", 12000, 12000)
    filters_before = list(warnings.filters)
    limit_before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageError) as info:
            load_image(path)
    assert_one_line_error(info.value, path, "image too large (12000x12000 pixels, limit 100000000)")
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert list(warnings.filters) == filters_before
    assert limit_before == Image.MAX_IMAGE_PIXELS


def test_pillow_hard_limit_becomes_image_error(tmp_path: Path) -> None:
    path = png_header_only(tmp_path / "bigbomb.png", 30000, 30000)
    with pytest.raises(ImageError) as info:
        load_image(path, max_pixels=None)
    assert_one_line_error(info.value, path, "image too large")
    assert "limit" in info.value.reason


def test_between_pillow_warning_and_our_limit_is_allowed(tmp_path: Path) -> None:
    # Pillow warns above Image.MAX_IMAGE_PIXELS; our max_pixels decides, so a header just under it passes
    # the size check (and then fails only because this fake file has no real pixel data).
    path = png_header_only(tmp_path / "big.png", 10000, 9500)
    assert (Image.MAX_IMAGE_PIXELS or 0) < 10000 * 9500
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageError) as info:
            load_image(path)
    assert "too large" not in info.value.reason


# ---------------------------------------------------------------------------------------------------------
# draft decoding
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("draft", "expected"), [((400, 300), (500, 375)), ((800, 700), (1000, 750))])
def test_draft_size_reduces_jpeg(tmp_path: Path, draft: tuple[int, int], expected: tuple[int, int]) -> None:
    path = noise_jpeg(tmp_path / "big.jpg", (2000, 1500))
    img = load_image(path, draft_size=draft)
    assert img.mode == "RGB"
    assert img.size == expected
    assert img.size[0] >= draft[0] and img.size[1] >= draft[1]
    assert load_image(path).size == (2000, 1500)


def test_draft_size_never_below_request(tmp_path: Path) -> None:
    path = noise_jpeg(tmp_path / "big.jpg", (2000, 1500))
    assert load_image(path, draft_size=(1999, 10)).size == (2000, 1500)


def test_draft_size_is_meant_upright(tmp_path: Path) -> None:
    # Stored 2000x1500, displayed 1500x2000. Asking for an upright width of 1000 must not give 750.
    path = noise_jpeg(tmp_path / "sideways.jpg", (2000, 1500), exif=exif_with_orientation(6))
    img = load_image(path, draft_size=(1000, 200))
    assert img.size[0] >= 1000 and img.size[1] >= 200
    assert img.size[1] > img.size[0]


def test_draft_size_ignored_for_png(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    gradient(300, 200).save(path)
    assert load_image(path, draft_size=(50, 50)).size == (300, 200)


# ---------------------------------------------------------------------------------------------------------
# walking folders
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def photo_tree(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    (root / "a" / "deep").mkdir(parents=True)
    (root / ".hidden").mkdir()
    gradient().save(root / "b.jpg")
    gradient().save(root / "a" / "x.png")
    gradient().save(root / "a" / "deep" / "y.JPG")
    gradient().save(root / "a" / "deep" / "z.tiff")
    gradient().save(root / ".hidden" / "secret.png")
    gradient().save(root / ".dotfile.png")
    (root / "notes.txt").write_text("not an image")
    (root / "c.webp").write_text("not really webp")
    (root / "d.png").touch()
    return root


TREE_FILES = ["a/deep/y.JPG", "a/deep/z.tiff", "a/x.png", "b.jpg", "c.webp", "d.png"]


def relative(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def test_walk_is_recursive_sorted_and_skips_hidden(photo_tree: Path) -> None:
    found = list(iter_image_files([photo_tree]))
    assert relative(found, photo_tree) == TREE_FILES
    assert all(isinstance(p, Path) for p in found)


def test_walk_not_recursive(photo_tree: Path) -> None:
    found = list(iter_image_files([str(photo_tree)], recursive=False))
    assert relative(found, photo_tree) == ["b.jpg", "c.webp", "d.png"]


def test_explicit_files_kept_whatever_their_name_and_deduplicated(photo_tree: Path) -> None:
    notes = photo_tree / "notes.txt"
    hidden = photo_tree / ".hidden" / "secret.png"
    found = list(iter_image_files([notes, photo_tree / "b.jpg", photo_tree, hidden, notes, photo_tree / "a"]))
    assert relative(found, photo_tree) == [
        "notes.txt",
        "b.jpg",
        "a/deep/y.JPG",
        "a/deep/z.tiff",
        "a/x.png",
        "c.webp",
        "d.png",
        ".hidden/secret.png",
    ]


def test_single_path_instead_of_list(photo_tree: Path) -> None:
    assert relative(list(iter_image_files(str(photo_tree))), photo_tree) == TREE_FILES  # type: ignore[arg-type]


def test_missing_path_raises_at_call(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as info:
        iter_image_files([tmp_path, tmp_path / "typo"])
    assert_one_line_error(info.value, tmp_path / "typo", "no such file or directory")


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_loop_and_alias_walked_once(photo_tree: Path) -> None:
    try:
        (photo_tree / "a" / "loop").symlink_to(photo_tree, target_is_directory=True)
        (photo_tree / "e.png").symlink_to(photo_tree / "b.jpg")
    except OSError:
        pytest.skip("cannot create symlinks here")
    found = list(iter_image_files([photo_tree]))
    assert relative(found, photo_tree) == TREE_FILES


def test_batch_over_mixed_tree_collects_failures(photo_tree: Path) -> None:
    log = FailureLog()
    loaded = []
    for path in iter_image_files([photo_tree]):
        try:
            loaded.append(load_image(path))
        except ImageError as err:
            log.add(path, err)
    assert len(loaded) == 4
    assert all(img.mode == "RGB" and img.size == (37, 23) for img in loaded)
    assert len(log) == 2
    assert [(p.name, reason) for p, reason in log] == [
        ("c.webp", "not an image file (unrecognised format)"),
        ("d.png", "file is empty"),
    ]


# ---------------------------------------------------------------------------------------------------------
# FailureLog
# ---------------------------------------------------------------------------------------------------------


def test_failure_log_empty() -> None:
    log = FailureLog()
    assert len(log) == 0
    assert not log
    assert list(log) == []
    assert log.lines() == []
    assert log.summary() == ""


def test_failure_log_summary_and_lines() -> None:
    log = FailureLog()
    log.add("a.jpg", ImageError("a.jpg", "file is empty"))
    log.add(Path("b.png"), "truncated or corrupt image data")
    log.add("c.tif", RuntimeError("boom\nsecond line"))
    assert len(log) == 3
    assert list(log)[0] == (Path("a.jpg"), "file is empty")
    assert log.lines() == [
        "a.jpg: file is empty",
        "b.png: truncated or corrupt image data",
        "c.tif: RuntimeError: boom second line",
    ]
    summary = log.summary()
    assert summary.splitlines()[0] == "3 images skipped:"
    assert summary.splitlines()[1:] == ["  " + line for line in log.lines()]
    assert log.summary(noun="file").startswith("3 files skipped:")


def test_failure_log_singular() -> None:
    log = FailureLog()
    log.add("only.jpg", "file is empty")
    assert log.summary() == "1 image skipped:\n  only.jpg: file is empty"


# ---------------------------------------------------------------------------------------------------------
# property test
# ---------------------------------------------------------------------------------------------------------

CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mode=st.sampled_from(sorted(CHANNELS)),
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_png_round_trip(tmp_path: Path, mode: str, height: int, width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (height, width) if mode == "L" else (height, width, CHANNELS[mode])
    arr = rng.integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / f"random_{mode}.png"
    Image.fromarray(arr, mode).save(path)
    out = np.asarray(load_image(path))
    assert out.shape == (height, width, 3)
    assert out.dtype == np.uint8
    if mode == "L":
        np.testing.assert_array_equal(out, np.repeat(arr[:, :, None], 3, axis=2))
    elif mode == "RGB":
        np.testing.assert_array_equal(out, arr)
    else:
        alpha = arr[:, :, 3:].astype(float) / 255
        expected = arr[:, :, :3] * alpha + 255 * (1 - alpha)
        assert np.abs(out - expected).max() <= 1
