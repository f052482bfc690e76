"""The same photo gives the same pixels however it arrives: a path, a PIL image, a numpy array, with or
without its colour profile, through :func:`as_rgb_image` and ``Preprocess.from_pil``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from piaa.backbones.base import Preprocess
from piaa.data.images import ImageError, as_rgb_image, from_array, load_image


def photo() -> Image.Image:
    """A smooth 60 x 40 scene with a marked corner."""
    yy, xx = np.mgrid[0:40, 0:60]
    arr = np.stack([xx * 4, yy * 6, 255 - xx * 4], axis=-1).clip(0, 255).astype(np.uint8)
    arr[:6, :6] = (0, 255, 0)
    return Image.fromarray(arr, "RGB")


def swapped_profile() -> bytes:
    """lcms's sRGB profile with the red and blue primaries exchanged (tag table entries swapped)."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    count = int.from_bytes(data[128:132], "big")
    entries = {bytes(data[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    r, b = entries[b"rXYZ"], entries[b"bXYZ"]
    data[r + 4 : r + 12], data[b + 4 : b + 12] = data[b + 4 : b + 12], data[r + 4 : r + 12]
    data[84:100] = bytes(16)  # the profile ID no longer matches: leave it unset
    return bytes(data)


@pytest.fixture
def sideways_jpeg(tmp_path: Path) -> Path:
    """A JPEG stored sideways (EXIF orientation 6) with a drastic colour profile: both must be applied."""
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    photo().save(path, quality=95, exif=exif.tobytes(), icc_profile=swapped_profile())
    return path


def test_path_and_str_routes(sideways_jpeg: Path) -> None:
    want = np.asarray(load_image(sideways_jpeg))
    assert want.shape == (60, 40, 3)  # upright
    assert want[2, 37, 1] > 200  # the green corner, stored top-left, now top-right
    assert (
        want[0, 20, 0] > want[0, 20, 2] + 100
    )  # stored left edge: blue data, red in this profile, now on top
    np.testing.assert_array_equal(np.asarray(as_rgb_image(sideways_jpeg)), want)
    np.testing.assert_array_equal(np.asarray(as_rgb_image(str(sideways_jpeg))), want)


def test_pil_route_applies_orientation_and_profile(sideways_jpeg: Path) -> None:
    want = np.asarray(load_image(sideways_jpeg))
    opened = Image.open(sideways_jpeg)
    np.testing.assert_array_equal(np.asarray(as_rgb_image(opened)), want)
    assert opened.size == (60, 40) and "icc_profile" in opened.info  # the caller's image is untouched
    loaded_elsewhere = Image.open(sideways_jpeg)
    loaded_elsewhere.load()
    np.testing.assert_array_equal(np.asarray(as_rgb_image(loaded_elsewhere)), want)


def test_loaded_image_passes_through_unchanged(sideways_jpeg: Path) -> None:
    img = load_image(sideways_jpeg)
    assert as_rgb_image(img) is img  # already upright sRGB RGB: not turned or converted again


@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64", "uint16"])
def test_numpy_route(tmp_path: Path, dtype: str) -> None:
    path = tmp_path / "plain.png"
    photo().save(path)
    want = np.asarray(load_image(path))
    if dtype == "uint8":
        array = want.copy()
    elif dtype == "uint16":
        array = want.astype(np.uint16) * 257
    else:
        array = want.astype(dtype) / 255
    np.testing.assert_array_equal(np.asarray(as_rgb_image(array)), want)


def test_numpy_grey_and_rgba(tmp_path: Path) -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    path = tmp_path / "grey.png"
    Image.fromarray(grey, "L").save(path)
    np.testing.assert_array_equal(np.asarray(as_rgb_image(grey)), np.asarray(load_image(path)))
    np.testing.assert_array_equal(np.asarray(as_rgb_image(grey[..., None])), np.asarray(load_image(path)))
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)
    out = np.asarray(as_rgb_image(rgba))
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[1, 1]) == (255, 255, 255)  # transparent: white


@pytest.mark.parametrize(
    ("array", "says"),
    [
        (np.zeros((4, 4, 2), np.uint8), "shape (4, 4, 2), dtype uint8"),
        (np.zeros((3, 4, 4, 3), np.uint8), "shape (3, 4, 4, 3)"),
        (np.zeros((0, 4, 3), np.uint8), "shape (0, 4, 3)"),
        (np.zeros((4, 4, 3), np.int64), "dtype int64"),
        (np.full((4, 4, 3), 2.0), "outside [0, 1]"),
        (np.full((4, 4, 3), np.nan, np.float32), "not finite"),
    ],
)
def test_bad_arrays_are_one_line_value_errors(array: np.ndarray, says: str) -> None:
    with pytest.raises(ValueError) as info:
        from_array(array)
    assert says in str(info.value) and "\n" not in str(info.value)


def test_other_objects_are_type_errors() -> None:
    with pytest.raises(TypeError, match="got list"):
        as_rgb_image([[0, 0, 0]])  # type: ignore[arg-type]


def test_truncated_lazy_pil_image_is_image_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageError) as info:
        as_rgb_image(Image.open(path))
    assert str(info.value).startswith(f"{path}: truncated or corrupt")


def test_file_with_and_without_its_srgb_profile(tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo().save(tmp_path / "tagged.jpg", quality=95, icc_profile=srgb)
    photo().save(tmp_path / "plain.jpg", quality=95)
    np.testing.assert_array_equal(
        np.asarray(load_image(tmp_path / "tagged.jpg")), np.asarray(load_image(tmp_path / "plain.jpg"))
    )


def test_preprocess_routes_agree(sideways_jpeg: Path) -> None:
    pre = Preprocess(size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    from_file = pre.load(sideways_jpeg)  # 60 x 40: too small for JPEG draft scaling to change anything
    np.testing.assert_array_equal(pre.from_pil(Image.open(sideways_jpeg)), from_file)
    np.testing.assert_array_equal(pre.from_pil(np.asarray(load_image(sideways_jpeg))), from_file)
    np.testing.assert_array_equal(pre.from_pil(np.asarray(load_image(sideways_jpeg)) / 255.0), from_file)
    assert from_file.shape == (32, 32, 3) and from_file.dtype == np.uint8
