"""XMP sidecars: written, merged into (a darktable sidecar keeps every other byte), named without
collisions, read back by exiftool (a real XMP reader; skipped only where it is absent)."""

from __future__ import annotations

import difflib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from piaa.cull.xmp import (
    SidecarError,
    read_sidecar,
    sidecar_path,
    status_properties,
    write_sidecar,
    write_sidecars,
)
from piaa.data.files import FailureLog

FIXTURE = Path(__file__).parent / "fixtures" / "darktable_sidecar.xmp"
EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(
    EXIFTOOL is None, reason="exiftool not installed (libimage-exiftool-perl)"
)


def exiftool(path: Path) -> dict:
    out = subprocess.run([EXIFTOOL, "-j", "-XMP:all", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def photo(tmp_path: Path, name: str = "IMG_0001.JPG") -> Path:
    p = tmp_path / name
    p.write_bytes(b"\xff\xd8 not really a photo: the sidecar code never opens it")
    return p


@needs_exiftool
def test_new_sidecar_read_back_by_exiftool(tmp_path):
    p = photo(tmp_path)
    side = write_sidecar(p, 4, "Green", 3)
    assert side == tmp_path / "IMG_0001.JPG.xmp"
    tags = exiftool(side)
    assert (tags["Rating"], tags["Label"], tags["PickLabel"]) == (4, "Green", 3)
    assert read_sidecar(side) == {"Rating": "4", "Label": "Green", "PickLabel": "3"}


@needs_exiftool
def test_reject_is_minus_one_and_rewrites_in_place(tmp_path):
    p = photo(tmp_path)
    write_sidecar(p, 5, "Green", 3)
    side = write_sidecar(p, -1, "Red", 1)
    tags = exiftool(side)
    assert (tags["Rating"], tags["Label"], tags["PickLabel"]) == (-1, "Red", 1)
    assert side.read_text().count("xmp:Rating") == 1  # replaced, not added twice


def test_darktable_history_survives_byte_for_byte(tmp_path):
    p = photo(tmp_path, "IMG_0001.CR2")
    side = p.with_name(p.name + ".xmp")
    original = FIXTURE.read_text()
    side.write_text(original)
    write_sidecar(p, 5, "Green", 3)
    new = side.read_text()
    diff = [
        line
        for line in difflib.unified_diff(original.splitlines(), new.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert sorted(diff) == sorted(
        [
            '-   xmp:Rating="2"',
            '+   xmp:Rating="5"',
            '+    xmp:Label="Green"',
            '+    xmlns:digiKam="http://www.digikam.org/ns/1.0/"',
            '+    digiKam:PickLabel="3"',
        ]
    )
    tail = original[original.index("<darktable:masks_history>") :]
    assert new.endswith(tail)  # the whole edit history, keywords and closing tags: the same bytes


@needs_exiftool
def test_darktable_sidecar_read_back_with_everything_else_intact(tmp_path):
    p = photo(tmp_path, "IMG_0001.CR2")
    side = p.with_name(p.name + ".xmp")
    shutil.copy(FIXTURE, side)
    before = exiftool(side)
    write_sidecar(p, -1, "Red", 1)
    after = exiftool(side)
    assert (after["Rating"], after["Label"], after["PickLabel"]) == (-1, "Red", 1)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed == {"Rating", "Label", "PickLabel"}
    assert after["Subject"] == ["holiday", "beach & sea"]


def test_element_form_and_other_prefix_are_merged(tmp_path):
    p = photo(tmp_path)
    side = p.with_name(p.name + ".xmp")
    side.write_text(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:xap="http://ns.adobe.com/xap/1.0/">'
        "<xap:Rating>1</xap:Rating><xap:Label>Purple</xap:Label></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    write_sidecar(p, 3, None, None)
    text = side.read_text()
    assert "<xap:Rating>3</xap:Rating>" in text and "xmp:Rating" not in text
    assert "<xap:Label>Purple</xap:Label>" in text  # not one of piaa's labels: a user's own, kept
    assert "PickLabel" not in text  # None leaves the pick label alone


def test_label_none_clears_only_piaas_labels(tmp_path):
    p = photo(tmp_path)
    write_sidecar(p, 5, "Green", 3)
    write_sidecar(p, 0, None, 2)  # the pick became an alternate
    assert read_sidecar(sidecar_path(p)) == {"Rating": "0", "PickLabel": "2"}


def test_broken_sidecar_is_refused_and_left_as_it_was(tmp_path):
    p = photo(tmp_path)
    side = p.with_name(p.name + ".xmp")
    side.write_bytes(b"<x:xmpmeta><rdf:RDF>unterminated")
    with pytest.raises(SidecarError, match=r"IMG_0001\.JPG\.xmp: existing sidecar is not well-formed XML"):
        write_sidecar(p, 5, "Green", 3)
    assert side.read_bytes() == b"<x:xmpmeta><rdf:RDF>unterminated"
    failures = FailureLog()
    write_sidecars([(p, 5, "Green", 3)], failures=failures)
    assert len(failures) == 1 and "sidecar not written" in failures.lines()[0]


def test_out_of_range_values_are_refused(tmp_path):
    p = photo(tmp_path)
    with pytest.raises(ValueError, match="rating 6"):
        write_sidecar(p, 6, None, None)
    with pytest.raises(ValueError, match="pick label 4"):
        write_sidecar(p, 1, None, 4)
    assert not sidecar_path(p).exists()


def test_adobe_names_and_raw_jpeg_pairs_never_collide(tmp_path):
    raw, jpg, alone = photo(tmp_path, "IMG_1.CR2"), photo(tmp_path, "IMG_1.JPG"), photo(tmp_path, "IMG_2.JPG")
    png, jpg2 = photo(tmp_path, "IMG_3.png"), photo(tmp_path, "IMG_3.jpg")
    assert sidecar_path(alone, "adobe") == tmp_path / "IMG_2.xmp"
    assert sidecar_path(raw, "adobe") == tmp_path / "IMG_1.xmp"  # the RAW owns photo.xmp, as in Lightroom
    assert sidecar_path(jpg, "adobe") == tmp_path / "IMG_1.JPG.xmp"
    assert {sidecar_path(png, "adobe"), sidecar_path(jpg2, "adobe")} == {
        tmp_path / "IMG_3.png.xmp",
        tmp_path / "IMG_3.jpg.xmp",
    }  # no RAW among them: nobody takes photo.xmp
    paths = write_sidecars([(raw, 5, "Green", 3), (jpg, -1, "Red", 1)], "adobe")
    assert len(set(paths)) == 2
    assert read_sidecar(tmp_path / "IMG_1.xmp")["Rating"] == "5"
    assert read_sidecar(tmp_path / "IMG_1.JPG.xmp")["Rating"] == "-1"
    with pytest.raises(ValueError, match="unknown sidecar naming"):
        sidecar_path(raw, "capture-one")


def test_status_properties():
    assert status_properties("pick") == ("Green", 3)
    assert status_properties("alternate") == (None, 2)
    assert status_properties("reject", reject_label="Purple") == ("Purple", 1)
    with pytest.raises(ValueError, match="unknown status"):
        status_properties("maybe")


def test_walks_pass_sidecars_silently(tmp_path):
    """A folder culled with --xmp is walked again without every sidecar listed as a skipped file."""
    from piaa.data.files import iter_image_files

    p = tmp_path / "a.jpg"
    Image.new("RGB", (8, 8)).save(p)
    write_sidecar(p, 3, None, None)
    (tmp_path / "notes.txt").write_text("not a photo")
    skipped = FailureLog()
    assert list(iter_image_files([tmp_path], skipped=skipped)) == [p]
    assert [path.name for path, _ in skipped] == ["notes.txt"]
