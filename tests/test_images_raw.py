"""Camera RAW files: real DNG files are written here (a small TIFF writer) and read through rawpy/LibRaw.

rawpy cannot write RAW files, but DNG is TIFF with a few tags, so both code paths run for real: the
embedded JPEG preview when it is large enough, else a demosaic of the Bayer data.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from piaa.data import raw as raw_module
from piaa.data.images import FailureLog, ImageError, iter_image_files, load_image

rawpy = pytest.importorskip("rawpy")

# ---------------------------------------------------------------------------------------------------------
# a minimal DNG writer
# ---------------------------------------------------------------------------------------------------------

_FMT = {1: "B", 2: "B", 3: "H", 4: "I", 5: "I", 10: "i"}  # (S)RATIONAL values are given as num, den pairs


def tiff_bytes(ifds: list[tuple[list[tuple[int, int, list[int]]], bytes]]) -> bytes:
    """Little-endian TIFF from ``[(entries, strip), ...]``, entries ``(tag, type, values)``; IFDs chained."""
    layout = [(sorted([*entries, (273, 4, [0]), (279, 4, [len(strip)])]), strip) for entries, strip in ifds]
    pos, ifd_pos = 8, []
    for full, _ in layout:
        ifd_pos.append(pos)
        pos += 2 + 12 * len(full) + 4
    payloads: dict[tuple[int, int], tuple[int, bytes]] = {}
    strip_pos = []
    for i, (full, strip) in enumerate(layout):
        for tag, typ, values in full:
            data = struct.pack(f"<{len(values)}{_FMT[typ]}", *values)
            if len(data) > 4:
                payloads[i, tag] = (pos, data)
                pos += len(data) + len(data) % 2
        strip_pos.append(pos)
        pos += len(strip) + len(strip) % 2
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_pos[0]))
    for i, (full, _) in enumerate(layout):
        out += struct.pack("<H", len(full))
        for tag, typ, values in full:
            values = [strip_pos[i]] if tag == 273 else values
            count = len(values) // 2 if typ in (5, 10) else len(values)
            data = struct.pack(f"<{len(values)}{_FMT[typ]}", *values)
            field = struct.pack("<I", payloads[i, tag][0]) if (i, tag) in payloads else data.ljust(4, b"\0")
            out += struct.pack("<HHI", tag, typ, count) + field
        out += struct.pack("<I", ifd_pos[i + 1] if i + 1 < len(layout) else 0)
    for i, (full, strip) in enumerate(layout):
        for tag, _, _ in full:
            if (i, tag) in payloads:
                out += payloads[i, tag][1] + b"\0" * (len(payloads[i, tag][1]) % 2)
        out += strip + b"\0" * (len(strip) % 2)
    return bytes(out)


def text(value: str) -> list[int]:
    return list(value.encode() + b"\0")


def write_dng(path: Path, cfa: np.ndarray, preview: Image.Image | None = None, orientation: int = 1) -> Path:
    """A DNG with RGGB Bayer data (12-bit) and, optionally, a JPEG preview in a second IFD."""
    h, w = cfa.shape
    entries = [
        (254, 4, [0]), (256, 4, [w]), (257, 4, [h]), (258, 3, [16]), (259, 3, [1]), (262, 3, [32803]),
        (271, 2, text("piaa")), (272, 2, text("test")), (274, 3, [orientation]), (277, 3, [1]),
        (278, 4, [h]), (284, 3, [1]), (33421, 3, [2, 2]), (33422, 1, [0, 1, 1, 2]),
        (50706, 1, [1, 4, 0, 0]), (50707, 1, [1, 1, 0, 0]), (50708, 2, text("piaa test camera")),
        (50717, 4, [4095]), (50721, 10, [1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1]),
        (50728, 5, [1, 1, 1, 1, 1, 1]), (50778, 3, [21]),
    ]  # fmt: skip
    ifds = [(entries, cfa.astype("<u2").tobytes())]
    if preview is not None:
        buf = io.BytesIO()
        preview.save(buf, "JPEG", quality=95)
        pw, ph = preview.size
        jpeg_entries = [
            (254, 4, [1]), (256, 4, [pw]), (257, 4, [ph]), (258, 3, [8, 8, 8]), (259, 3, [7]),
            (262, 3, [6]), (277, 3, [3]), (278, 4, [ph]), (284, 3, [1]),
        ]  # fmt: skip
        ifds.append((jpeg_entries, buf.getvalue()))
    path.write_bytes(tiff_bytes(ifds))
    return path


def red_blue_mosaic(h: int = 64, w: int = 96) -> np.ndarray:
    """Bayer RGGB data of a scene that is red on the left half and blue on the right."""
    cfa = np.full((h, w), 200, np.uint16)
    cfa[0::2, 0 : w // 2 : 2] = 1500  # red sites, left
    cfa[1::2, w // 2 + 1 :: 2] = 1500  # blue sites, right
    return cfa


def green_preview(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A preview that looks nothing like the mosaic, so the test can tell which one was used."""
    img = Image.new("RGB", size, (0, 200, 0))
    img.paste((200, 0, 200), (0, 0, 16, 16))  # magenta block at the stored top-left
    return img


# ---------------------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------------------


def test_dng_without_preview_is_demosaiced(tmp_path: Path) -> None:
    path = write_dng(tmp_path / "IMG_0001.DNG", red_blue_mosaic())
    img = load_image(path)
    assert (img.mode, img.size) == ("RGB", (96, 64))
    left, right = np.asarray(img)[32, 10].astype(int), np.asarray(img)[32, 85].astype(int)
    assert left[0] > 200 and left[2] < left[0] - 100, left
    assert right[2] > 120 and right[0] < right[2] - 100, right


def test_dng_preview_used_when_large_enough(tmp_path: Path) -> None:
    path = write_dng(tmp_path / "preview.dng", red_blue_mosaic(), green_preview())
    img = load_image(path, draft_size=(48, 48))
    assert img.size == (96, 64)
    g = np.asarray(img)[40, 60].astype(int)
    assert g[1] > 150 and g[0] < 40 and g[2] < 40  # the preview, not the red/blue mosaic


def test_dng_preview_too_small_falls_back_to_demosaic(tmp_path: Path) -> None:
    path = write_dng(tmp_path / "preview.dng", red_blue_mosaic(), green_preview())
    img = load_image(path)  # no draft size: the preview would have to be 1024 px
    left = np.asarray(img)[32, 10].astype(int)
    assert left[0] > 200 and left[1] < 100


@pytest.mark.parametrize("use_preview", [True, False])
def test_raw_orientation_applied_on_both_paths(tmp_path: Path, use_preview: bool) -> None:
    path = write_dng(tmp_path / "sideways.dng", red_blue_mosaic(), green_preview(), orientation=6)
    img = load_image(path, draft_size=(48, 48) if use_preview else None)
    assert img.size == (64, 96)  # turned upright: taller than wide
    arr = np.asarray(img).astype(int)
    if use_preview:  # stored top-left magenta block, rotated 90 degrees clockwise: now top-right
        assert arr[4, 60, 0] > 150 and arr[4, 60, 2] > 150 and arr[4, 4, 1] > 150
    else:  # stored left (red) half is now the top half
        assert arr[10, 32, 0] > 200 and arr[85, 32, 2] > 120


def test_raw_found_by_the_walk_and_renamed_jpeg_loads(tmp_path: Path) -> None:
    write_dng(tmp_path / "a.NEF", red_blue_mosaic())  # TIFF-based RAW under another maker's name
    Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / "b.cr2", "JPEG")  # a JPEG named like RAW
    skipped = FailureLog()
    found = list(iter_image_files([tmp_path], skipped=skipped))
    assert [p.name for p in found] == ["a.NEF", "b.cr2"] and not len(skipped)
    assert load_image(found[0]).size == (96, 64)
    assert load_image(found[1]).size == (8, 8)  # content decides: decoded as the JPEG it is


def test_garbage_raw_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.arw"
    path.write_bytes(b"definitely not a raw file" * 10)
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)
    assert "RAW" in info.value.reason


def test_raw_too_large_refused_before_decoding(tmp_path: Path) -> None:
    path = write_dng(tmp_path / "big.dng", red_blue_mosaic())
    with pytest.raises(ImageError, match=r"image too large \(96x64 pixels, limit 1000\)"):
        load_image(path, max_pixels=1000)


def test_missing_rawpy_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_dng(tmp_path / "x.dng", red_blue_mosaic())
    monkeypatch.setattr(raw_module, "_rawpy", lambda: None)
    with pytest.raises(ImageError, match=r"need the rawpy package"):
        load_image(path)
