"""Embedded colour profiles are converted to sRGB on every route (issue: real photos from phones and cameras).

The profiles are built here (a tiny ICC writer), so no test data is needed; one test also checks a real
Adobe RGB photo from the shared folder when it is there.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from piaa.data.images import RENDERING_INTENT, as_rgb_image, load_image, to_srgb

SHARED_PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "photos"

# ---------------------------------------------------------------------------------------------------------
# a minimal ICC v2 writer
# ---------------------------------------------------------------------------------------------------------

D50 = (0.9642, 1.0, 0.8249)
# sRGB's primaries adapted to D50, as in every sRGB profile.
SRGB_R, SRGB_G, SRGB_B = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)


def s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def xyz_tag(xyz: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(s15(v) for v in xyz)


def curve_tag(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def desc_tag(text: str) -> bytes:
    ascii_ = text.encode() + b"\0"
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_ + b"\0" * 8 + b"\0\0\0" + b"\0" * 67


def icc(space: bytes, tags: dict[bytes, bytes], *, pcs: bytes = b"XYZ ", cls: bytes = b"mntr") -> bytes:
    """An ICC v2.1 profile: header, tag table, tags (each 4-byte aligned)."""
    tags = {b"desc": desc_tag("piaa test profile"), b"wtpt": xyz_tag(D50), **tags}
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags.items():
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    size = offset + len(data)
    header = (
        struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000) + cls + space + pcs
        + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0) + b"".join(s15(v) for v in D50)
        + b"\0" * 48
    )  # fmt: skip
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def rgb_profile(r=SRGB_R, g=SRGB_G, b=SRGB_B, gamma: float = 2.2) -> bytes:
    trc = curve_tag(gamma)
    return icc(
        b"RGB ",
        {
            b"rXYZ": xyz_tag(r),
            b"gXYZ": xyz_tag(g),
            b"bXYZ": xyz_tag(b),
            b"rTRC": trc,
            b"gTRC": trc,
            b"bTRC": trc,
        },
    )


def grey_profile(gamma: float) -> bytes:
    return icc(b"GRAY", {b"kTRC": curve_tag(gamma)})


def cmyk_lab(c: float, m: float, y: float, k: float) -> tuple[float, float, float]:
    """A made-up but plausible press: inks darken and tint, black darkens everything."""
    light = 100 * (1 - k) * (1 - 0.3 * (c + m + y))
    return light, (1 - k) * 60 * (m - 0.6 * c), (1 - k) * 60 * (y - 0.5 * (c + m))


def cmyk_profile() -> bytes:
    """CMYK -> Lab through a 2-point lut16 (``mft2``) A2B0 table: enough for lcms to build a transform."""
    clut = b""
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    light, a, b = cmyk_lab(c, m, y, k)
                    clut += struct.pack(
                        ">HHH", round(light / 100 * 0xFF00), round((a + 128) * 256), round((b + 128) * 256)
                    )
    identity = b"".join(s15(1.0 if i == j else 0.0) for i in range(3) for j in range(3))
    ramp = struct.pack(">HH", 0, 0xFFFF)
    lut = (
        b"mft2\0\0\0\0"
        + bytes([4, 3, 2, 0])
        + identity
        + struct.pack(">HH", 2, 2)
        + ramp * 4
        + clut
        + ramp * 3
    )
    return icc(b"CMYK", {b"A2B0": lut}, pcs=b"Lab ", cls=b"scnr")


SWAPPED = rgb_profile(r=SRGB_B, b=SRGB_R)  # red and blue primaries exchanged: a drastic profile
SRGB_BYTES = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def reference(img: Image.Image, profile: bytes) -> np.ndarray:
    """The independent conversion: Pillow's ImageCms as documented, same intent."""
    out = ImageCms.profileToProfile(
        img,
        ImageCms.ImageCmsProfile(io.BytesIO(profile)),
        ImageCms.createProfile("sRGB"),
        renderingIntent=RENDERING_INTENT,
        outputMode="RGB",
    )
    assert out is not None
    return np.asarray(out)


def colours() -> Image.Image:
    """Primaries, greys and a gradient: 32 x 8."""
    arr = np.zeros((8, 32, 3), np.uint8)
    arr[:, :4] = (255, 0, 0)
    arr[:, 4:8] = (0, 255, 0)
    arr[:, 8:12] = (0, 0, 255)
    arr[:, 12:16] = (128, 128, 128)
    arr[:, 16:] = np.linspace(0, 255, 16, dtype=np.uint8)[None, :, None]
    return Image.fromarray(arr, "RGB")


# ---------------------------------------------------------------------------------------------------------
# RGB profiles
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".webp"])
def test_drastic_rgb_profile_is_converted_on_load(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"swapped{suffix}"
    extra = {"lossless": True} if suffix == ".webp" else {"quality": 100} if suffix == ".jpg" else {}
    colours().save(path, icc_profile=SWAPPED, **extra)
    got = np.asarray(load_image(path))
    stored = Image.open(path)
    np.testing.assert_array_equal(got, reference(stored, SWAPPED))
    red, blue = got[4, 1].astype(int), got[4, 9].astype(int)
    assert red[2] > 200 and red[0] < 60, red  # stored "red" is this profile's blue primary
    assert blue[0] > 200 and blue[2] < 60, blue
    assert "icc_profile" not in load_image(path).info  # nobody downstream converts it a second time


def test_in_memory_image_with_profile_is_converted_and_not_modified() -> None:
    img = colours()
    img.info["icc_profile"] = SWAPPED
    before = np.asarray(img).copy()
    out = to_srgb(img)
    np.testing.assert_array_equal(np.asarray(out), reference(img, SWAPPED))
    np.testing.assert_array_equal(np.asarray(img), before)
    assert img.info["icc_profile"] == SWAPPED
    np.testing.assert_array_equal(np.asarray(to_srgb(out)), np.asarray(out))  # converting twice is harmless
    np.testing.assert_array_equal(np.asarray(as_rgb_image(img)), np.asarray(out))


def test_srgb_tagged_and_untagged_files_give_identical_pixels(tmp_path: Path) -> None:
    colours().save(tmp_path / "plain.png")
    colours().save(tmp_path / "tagged.png", icc_profile=SRGB_BYTES)
    np.testing.assert_array_equal(
        np.asarray(load_image(tmp_path / "plain.png")), np.asarray(load_image(tmp_path / "tagged.png"))
    )


def test_transparent_pixels_with_profile_end_white_and_alpha_kept(tmp_path: Path) -> None:
    arr = np.zeros((4, 8, 4), np.uint8)
    arr[..., 0], arr[..., 3] = 255, 255  # opaque "red"
    arr[:, 4:, 3] = 0  # right half fully transparent
    path = tmp_path / "alpha.png"
    Image.fromarray(arr, "RGBA").save(path, icc_profile=SWAPPED)
    got = np.asarray(load_image(path))
    assert tuple(got[0, 6]) == (255, 255, 255)
    assert got[0, 1, 2] > 200 and got[0, 1, 0] < 60  # converted like the opaque file


def test_palette_image_with_profile_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    colours().convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(path, icc_profile=SWAPPED)
    got = np.asarray(load_image(path))
    assert got[4, 1, 2] > 200 and got[4, 1, 0] < 60


@pytest.mark.skipif(not SHARED_PHOTOS.is_dir(), reason="shared photos (../shared/data/photos) not present")
def test_real_adobe_rgb_photo_matches_independent_conversion(tmp_path: Path) -> None:
    photo = None
    for path in sorted(SHARED_PHOTOS.glob("*.JPEG")):
        with Image.open(path) as im:
            data = im.info.get("icc_profile")
            if im.mode == "RGB" and data and b"Adobe RGB (1998)" in data:
                photo, adobe = path, data
                break
    if photo is None:
        pytest.skip("no Adobe RGB photo in the shared folder")
    with Image.open(photo) as im:
        want = reference(im, adobe)
        naive = np.asarray(im.convert("RGB"))
    got = np.asarray(load_image(photo))
    np.testing.assert_array_equal(got, want)
    assert np.abs(got.astype(int) - naive).max() > 5  # the conversion matters for this photo
    # The same profile bytes on a synthetic image written here: saturated colours move a lot.
    path = tmp_path / "adobe.png"
    colours().save(path, icc_profile=adobe)
    got = np.asarray(load_image(path))
    np.testing.assert_array_equal(got, reference(Image.open(path), adobe))
    assert got[4, 5, 0] == 0 and got[4, 5, 1] == 255  # Adobe RGB's green lies outside sRGB: clipped


# ---------------------------------------------------------------------------------------------------------
# grey and CMYK
# ---------------------------------------------------------------------------------------------------------


def test_grey_image_with_grey_profile(tmp_path: Path) -> None:
    linear = grey_profile(1.0)  # linear light: stored 128 is half the light, sRGB ~188
    path = tmp_path / "grey.png"
    Image.new("L", (4, 4), 128).save(path, icc_profile=linear)
    got = load_image(path)
    assert got.mode == "RGB"
    r, g, b = got.getpixel((1, 1))  # type: ignore[misc]
    assert r == g == b and 185 <= r <= 191
    stored = Image.open(path)
    np.testing.assert_array_equal(np.asarray(got), reference(stored, linear))


def test_cmyk_image_with_profile(tmp_path: Path) -> None:
    profile = cmyk_profile()
    arr = np.zeros((2, 4, 4), np.uint8)
    arr[:, 1] = (0, 0, 0, 255)  # black ink only
    arr[:, 2] = (255, 0, 0, 0)  # cyan
    arr[:, 3] = (0, 128, 128, 0)
    path = tmp_path / "cmyk.tif"
    Image.fromarray(arr, "CMYK").save(path, icc_profile=profile)
    got = np.asarray(load_image(path))
    np.testing.assert_array_equal(got, reference(Image.open(path), profile))
    assert got[0, 0].min() >= 250  # no ink: paper white
    assert got[0, 1].max() <= 10  # full black ink
    cyan = got[0, 2].astype(int)
    assert cyan[2] > cyan[0] and cyan[1] > cyan[0]
    # Pillow's naive CMYK conversion differs: the profile was used.
    assert not np.array_equal(got, np.asarray(Image.open(path).convert("RGB")))


# ---------------------------------------------------------------------------------------------------------
# profiles that cannot be used: pixels kept, one line naming the file
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "profile", "says"),
    [
        ("RGB", b"this is not an ICC profile at all" * 8, "embedded colour profile is unreadable"),
        ("L", SWAPPED, "embedded colour profile is for RGB data but the image is L"),
        ("RGB", grey_profile(1.0), "embedded colour profile is for greyscale data but the image is RGB"),
    ],
)
def test_unusable_profile_keeps_pixels_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str, profile: bytes, says: str
) -> None:
    path = tmp_path / "odd.png"
    stored = colours().convert(mode)
    stored.save(path, icc_profile=profile)
    with caplog.at_level(logging.WARNING, logger="piaa.data.images"), warnings.catch_warnings():
        warnings.simplefilter("error")  # a note, not a raw warning
        img = load_image(path)
    np.testing.assert_array_equal(np.asarray(img), np.asarray(stored.convert("RGB")))
    notes = img.info["piaa_notes"]
    assert len(notes) == 1 and notes[0].startswith(f"{path}: {says}") and "\n" not in notes[0]
    assert [r.getMessage() for r in caplog.records] == notes


def srgb_curve_tag(points: int = 1024) -> bytes:
    """sRGB's tone curve as a sampled ``curv`` table."""
    v = np.linspace(0, 1, points)
    linear = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return b"curv\0\0\0\0" + struct.pack(f">I{points}H", points, *np.rint(linear * 65535).astype(int))


def test_grey_image_with_srgb_grey_profile_keeps_its_pixels(tmp_path: Path) -> None:
    # Grey with sRGB's own curve: converting would only add rounding noise, so tagged == untagged.
    ramp = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16), "L")
    ramp.save(tmp_path / "tagged.png", icc_profile=icc(b"GRAY", {b"kTRC": srgb_curve_tag()}))
    ramp.save(tmp_path / "plain.png")
    np.testing.assert_array_equal(
        np.asarray(load_image(tmp_path / "tagged.png")), np.asarray(load_image(tmp_path / "plain.png"))
    )
