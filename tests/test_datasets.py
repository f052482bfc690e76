"""Benchmark loaders on small fixtures written in each data set's public layout (see piaa.data.datasets)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from piaa.data.datasets import (
    DATASETS,
    DatasetError,
    RatedAlbum,
    check_images,
    list_datasets,
    load_dataset,
    load_flickr_aes,
    load_para,
    load_realcur,
)
from piaa.errors import PiaaError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def touch(*paths: Path) -> None:
    """Image files: the loaders never open them, so empty files stand in for photos."""
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


def error_at(path: Path, line: int | None = None) -> str:
    """The regex for a one-line DatasetError naming ``path`` (and ``line``)."""
    where = f"{path.resolve()}:{line}: " if line is not None else f"{path.resolve()}: "
    return "^" + re.escape(where)


# ---------------------------------------------------------------------------------------------------------
# RatedAlbum and check_images
# ---------------------------------------------------------------------------------------------------------


def test_album_normalises_types_and_checks_lengths() -> None:
    album = RatedAlbum("u", ["/a.jpg", Path("/b.jpg")], [2, 4])
    assert album.images == [Path("/a.jpg"), Path("/b.jpg")]
    assert album.scores.dtype == np.float64 and len(album) == 2
    with pytest.raises(ValueError, match="2 images but 1 scores"):
        RatedAlbum("u", ["/a.jpg", "/b.jpg"], [2.0])


def test_check_images_lists_each_missing_file_once_in_album_order(tmp_path: Path) -> None:
    here, gone, gone2 = tmp_path / "here.jpg", tmp_path / "gone.jpg", tmp_path / "sub" / "gone2.jpg"
    touch(here)
    albums = [RatedAlbum("a", [gone, here], [1.0, 2.0]), RatedAlbum("b", [gone2, gone], [3.0, 4.0])]
    assert check_images(albums) == [str(gone), str(gone2)]
    assert check_images([RatedAlbum("c", [here], [5.0])]) == []


# ---------------------------------------------------------------------------------------------------------
# REAL-CUR
# ---------------------------------------------------------------------------------------------------------


def realcur_label_files(root: Path) -> Path:
    """Three albums with one label file each, in the accepted flavours of separator and header."""
    write(root / "user1" / "labels.txt", "IMG_0001.JPG 3\nIMG_0002.JPG 5\n\nIMG_0003.JPG 1\n")
    write(root / "user2" / "user2.csv", "image,score\nDSC01.jpg, 4\nDSC02.jpg,2\n")
    write(root / "user10" / "ratings.txt", "# owner ratings\nname\tscore\nmy photo.png\t2\nb.png\t5\n")
    touch(root / "user1" / "IMG_0001.JPG", root / "user1" / "IMG_0002.JPG", root / "user1" / "IMG_0003.JPG")
    touch(root / "user2" / "DSC01.jpg", root / "user10" / "my photo.png", root / "user10" / "b.png")
    touch(root / "README.txt")  # files in root are not albums
    (root / "__MACOSX").mkdir()  # archive debris is skipped
    return root


def test_realcur_label_files(tmp_path: Path) -> None:
    root = realcur_label_files(tmp_path / "REAL-CUR")
    albums = load_realcur(root)
    assert [a.user for a in albums] == ["user1", "user2", "user10"]  # natural order
    u1, u2, u10 = albums
    assert u1.scores.tolist() == [6.0, 10.0, 2.0]  # 1-5 doubled: 3 -> 6.0
    assert u1.images == [
        root.resolve() / "user1" / n for n in ("IMG_0001.JPG", "IMG_0002.JPG", "IMG_0003.JPG")
    ]
    assert all(p.is_absolute() for a in albums for p in a.images)
    assert u2.scores.tolist() == [8.0, 4.0] and [p.name for p in u2.images] == ["DSC01.jpg", "DSC02.jpg"]
    assert u10.scores.tolist() == [4.0, 10.0] and u10.images[0].name == "my photo.png"
    # DSC02.jpg is listed but absent: not an error at load time, reported by check_images.
    assert check_images(albums) == [str(root.resolve() / "user2" / "DSC02.jpg")]


def test_realcur_score_folders(tmp_path: Path) -> None:
    root = tmp_path / "REAL-CUR"
    touch(
        root / "album_b" / "5" / "p3.jpg",
        root / "album_b" / "1" / "p10.jpg",
        root / "album_b" / "3" / "p2.JPEG",
    )
    touch(
        root / "album_b" / "3" / "notes.db",
        root / "album_b" / "unrated.jpg",
        root / "album_b" / "4" / ".x.jpg",
    )
    touch(root / "album_a" / "2" / "x.png")
    albums = load_realcur(root)
    assert [a.user for a in albums] == ["album_a", "album_b"]
    b = albums[1]
    # Ordered by file name, never by score, so a split by position cannot leak the ratings.
    assert [p.name for p in b.images] == ["p2.JPEG", "p3.jpg", "p10.jpg"]
    assert b.scores.tolist() == [6.0, 10.0, 2.0]
    assert b.images[0] == root.resolve() / "album_b" / "3" / "p2.JPEG"
    assert check_images(albums) == []


def test_realcur_repeated_image_is_averaged(tmp_path: Path) -> None:
    write(tmp_path / "u" / "l.txt", "a.jpg 2\nb.jpg 4\na.jpg 3\n")
    (album,) = load_realcur(tmp_path)
    assert [p.name for p in album.images] == ["a.jpg", "b.jpg"]
    assert album.scores.tolist() == [5.0, 8.0]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("a.jpg 3\nb.jpg 6\n", 2, "outside"),
        ("a.jpg 3\nb.jpg 0\n", 2, "outside"),
        ("name score\na.jpg 3\nb.jpg good\n", 3, "not a number"),
        ("a.jpg, 3, extra\n", 1, "expected an image name and a score"),
        ("a.jpg 3\nlonely\n", 2, "expected an image name and a score"),
        ("a.jpg 3\nb.jpg nan\n", 2, "outside"),
    ],
)
def test_realcur_bad_rows_name_file_and_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    label = write(tmp_path / "user1" / "labels.txt", text)
    with pytest.raises(DatasetError, match=error_at(label, line) + ".*" + problem) as info:
        load_realcur(tmp_path)
    assert "\n" not in str(info.value)


def test_realcur_bad_layouts(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such folder"):
        load_realcur(tmp_path / "absent")
    with pytest.raises(DatasetError, match="no user folders"):
        load_realcur(tmp_path)
    (tmp_path / "u1").mkdir()
    with pytest.raises(DatasetError, match=error_at(tmp_path / "u1") + "no label file"):
        load_realcur(tmp_path)
    touch(tmp_path / "u1" / "best" / "a.jpg")
    with pytest.raises(DatasetError, match="score folder named 1 to 5"):
        load_realcur(tmp_path)
    (tmp_path / "u1" / "best").rename(tmp_path / "u1" / "6")
    with pytest.raises(DatasetError, match="outside"):
        load_realcur(tmp_path)
    write(tmp_path / "u1" / "a.txt", "a.jpg 1\n")
    write(tmp_path / "u1" / "b.csv", "a.jpg,1\n")
    with pytest.raises(DatasetError, match="more than one label file"):
        load_realcur(tmp_path)
    (tmp_path / "u1" / "b.csv").unlink()
    write(tmp_path / "u1" / "a.txt", "# nothing rated yet\n")
    with pytest.raises(DatasetError, match="no rated images"):
        load_realcur(tmp_path)


# ---------------------------------------------------------------------------------------------------------
# FLICKR-AES
# ---------------------------------------------------------------------------------------------------------

# The public file's quirk: a space after each comma, in the header and in the values.
FLICKR_CSV = """\
worker, imagePair, score
A2WORKERBBBBB, farm1_262_19948404426_8e6bc75fd3_b.jpg, 5
A1WORKERAAAAA, farm1_262_19948404426_8e6bc75fd3_b.jpg, 3
A2WORKERBBBBB, farm4_3960_15538131014_4d3ef0b58e_b.jpg, 1
A3WORKERCCCCC, farm8_7356_16390591519_0c8bd3b1a2_b.jpg, 4
A1WORKERAAAAA, farm4_3960_15538131014_4d3ef0b58e_b.jpg, 2
A3WORKERCCCCC, farm1_262_19948404426_8e6bc75fd3_b.jpg, 2
"""


@pytest.fixture
def flickr(tmp_path: Path) -> tuple[Path, Path]:
    csv_path = write(tmp_path / "FLICKR-AES_image_labeled_by_each_worker.csv", FLICKR_CSV)
    images = tmp_path / "40K"
    touch(
        images / "farm1_262_19948404426_8e6bc75fd3_b.jpg", images / "farm4_3960_15538131014_4d3ef0b58e_b.jpg"
    )
    return csv_path, images


def test_flickr_all_workers(flickr: tuple[Path, Path]) -> None:
    csv_path, images = flickr
    albums = load_flickr_aes(csv_path, images, workers="all")
    assert [a.user for a in albums] == ["A1WORKERAAAAA", "A2WORKERBBBBB", "A3WORKERCCCCC"]
    b = albums[1]
    assert b.scores.tolist() == [10.0, 2.0]  # 1-5 doubled: 5 -> 10.0
    # Leading spaces in the values are not part of the file name.
    assert b.images == [
        images.resolve() / "farm1_262_19948404426_8e6bc75fd3_b.jpg",
        images.resolve() / "farm4_3960_15538131014_4d3ef0b58e_b.jpg",
    ]
    assert check_images(albums) == [str(images.resolve() / "farm8_7356_16390591519_0c8bd3b1a2_b.jpg")]


def test_flickr_worker_list_and_file(flickr: tuple[Path, Path], tmp_path: Path) -> None:
    csv_path, images = flickr
    albums = load_flickr_aes(csv_path, images, workers=["A3WORKERCCCCC", "A1WORKERAAAAA"])
    assert [a.user for a in albums] == ["A1WORKERAAAAA", "A3WORKERCCCCC"]
    assert albums[0].scores.tolist() == [6.0, 4.0]
    ids = write(
        tmp_path / "test_workers.txt", "worker\n# the held-out people\nA2WORKERBBBBB\n\nA3WORKERCCCCC, x\n"
    )
    for spec in (ids, str(ids)):
        assert [a.user for a in load_flickr_aes(csv_path, images, workers=spec)] == [
            "A2WORKERBBBBB",
            "A3WORKERCCCCC",
        ]


def test_flickr_test_split_needs_the_official_list(flickr: tuple[Path, Path], tmp_path: Path) -> None:
    csv_path, images = flickr
    for split in ("test", "train"):
        with pytest.raises(DatasetError, match=error_at(csv_path) + ".*37 worker ids.*test_workers") as info:
            load_flickr_aes(csv_path, images, workers=split)  # type: ignore[arg-type]
        assert "\n" not in str(info.value)
    with pytest.raises(DatasetError, match="37"):
        load_flickr_aes(csv_path, images)  # "test" is the default
    ids = write(tmp_path / "official_test_workers.txt", "A2WORKERBBBBB\n")
    test = load_flickr_aes(csv_path, images, workers="test", test_workers=ids)
    train = load_flickr_aes(csv_path, images, workers="train", test_workers=["A2WORKERBBBBB"])
    assert [a.user for a in test] == ["A2WORKERBBBBB"]
    assert [a.user for a in train] == ["A1WORKERAAAAA", "A3WORKERCCCCC"]


def test_flickr_unknown_workers_are_an_error(flickr: tuple[Path, Path], tmp_path: Path) -> None:
    csv_path, images = flickr
    with pytest.raises(DatasetError, match="1 requested worker.*ANOBODY"):
        load_flickr_aes(csv_path, images, workers=["A1WORKERAAAAA", "ANOBODY"])
    with pytest.raises(DatasetError, match="no such file"):
        load_flickr_aes(csv_path, images, workers=tmp_path / "missing.txt")
    with pytest.raises(DatasetError, match="no worker ids"):
        load_flickr_aes(csv_path, images, workers=write(tmp_path / "empty.txt", "worker\n"))


def test_flickr_headerless_file_and_repeats(tmp_path: Path) -> None:
    csv_path = write(tmp_path / "w.csv", "W1, a.jpg, 4\nW1, a.jpg, 5\nW1, b.jpg, 1\n")
    (album,) = load_flickr_aes(csv_path, tmp_path, workers="all")
    assert album.scores.tolist() == [9.0, 2.0] and [p.name for p in album.images] == ["a.jpg", "b.jpg"]


@pytest.mark.parametrize(
    ("rows", "line", "problem"),
    [
        ("W1, a.jpg, 6\n", 3, "outside"),
        ("W1, a.jpg, x\n", 3, "not a number"),
        ("W1, a.jpg\n", 3, "expected 3 fields"),
        (", a.jpg, 3\n", 3, "empty worker"),
    ],
)
def test_flickr_bad_rows_name_file_and_line(tmp_path: Path, rows: str, line: int, problem: str) -> None:
    csv_path = write(tmp_path / "w.csv", "worker, imagePair, score\nW0, z.jpg, 2\n" + rows)
    with pytest.raises(DatasetError, match=error_at(csv_path, line) + ".*" + problem):
        load_flickr_aes(csv_path, tmp_path, workers="all")


def test_flickr_bad_header(tmp_path: Path) -> None:
    csv_path = write(tmp_path / "w.csv", "worker, image, score\nW0, z.jpg, 2\n")
    with pytest.raises(DatasetError, match=error_at(csv_path, 1) + "header must name"):
        load_flickr_aes(csv_path, tmp_path, workers="all")


# ---------------------------------------------------------------------------------------------------------
# PARA
# ---------------------------------------------------------------------------------------------------------

PARA_HEADER = (
    "sessionId,imageName,userId,aestheticScore,qualityScore,compositionScore,colorScore,dofScore,"
    "contentScore,lightScore,isObjectEmphasis,emotion,difficultyOfJudgment,contentPreference,"
    "willingnessToShare,semantic\n"
)


def para_row(session: str, image: str, user: str, score: str) -> str:
    return f"{session},{image},{user},{score},3.0,3.0,3.5,3.0,3.0,3.5,1,contentment,0,3.0,2.5,portrait\n"


@pytest.fixture
def para(tmp_path: Path) -> Path:
    root = tmp_path / "PARA"
    rows = [
        para_row("session1", "iaa_pub1_.jpg", "A10", "3.5"),
        para_row("session1", "iaa_pub2_.jpg", "A10", "5.0"),
        para_row("session1", "iaa_pub1_.jpg", "A9", "1.0"),
        para_row("session2", "iaa_pub71_.jpg", "A9", "4.5"),
        para_row("session2", "iaa_pub71_.jpg", "B1", "2.0"),
    ]
    write(root / "annotation" / "PARA-Images.csv", PARA_HEADER + "".join(rows))
    touch(root / "imgs" / "session1" / "iaa_pub1_.jpg", root / "imgs" / "session1" / "iaa_pub2_.jpg")
    return root


def test_para_default_layout(para: Path) -> None:
    albums = load_para(para)
    assert [a.user for a in albums] == ["A9", "A10", "B1"]
    a9, a10, b1 = albums
    assert a10.scores.tolist() == [6.625, 10.0]  # 1 + (s - 1) * 9 / 4: 3.5 -> 6.625
    assert a9.scores.tolist() == [1.0, 8.875]
    assert b1.scores.tolist() == [3.25]
    imgs = para.resolve() / "imgs"
    assert a9.images == [imgs / "session1" / "iaa_pub1_.jpg", imgs / "session2" / "iaa_pub71_.jpg"]
    assert check_images(albums) == [str(imgs / "session2" / "iaa_pub71_.jpg")]


def test_para_explicit_files_and_images_root(para: Path, tmp_path: Path) -> None:
    extra = write(
        tmp_path / "more.csv",
        "userId, aestheticScore, imageName, sessionId\nC7, 3.0, iaa_pub9_.jpg, session1\n",
    )
    albums = load_para(
        para, annotations=[para / "annotation" / "PARA-Images.csv", extra], images_root=tmp_path / "pics"
    )
    assert [a.user for a in albums] == ["A9", "A10", "B1", "C7"]
    assert albums[-1].scores.tolist() == [5.5]
    assert albums[-1].images == [(tmp_path / "pics").resolve() / "session1" / "iaa_pub9_.jpg"]
    assert [a.user for a in load_para(tmp_path, annotations=extra)] == ["C7"]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (para_row("session1", "iaa_pub3_.jpg", "A1", "5.5"), "outside"),
        (para_row("session1", "iaa_pub3_.jpg", "A1", "0.5"), "outside"),
        (para_row("session1", "iaa_pub3_.jpg", "A1", "n/a"), "not a number"),
        (para_row("session1", "iaa_pub3_.jpg", "", "3.0"), "empty userId"),
        ("session1,iaa_pub3_.jpg,A1,3.0\n", "expected 16 fields"),
    ],
)
def test_para_bad_rows_name_file_and_line(tmp_path: Path, row: str, problem: str) -> None:
    ann = write(
        tmp_path / "annotation" / "PARA-Images.csv", PARA_HEADER + para_row("s", "i.jpg", "A", "3") + row
    )
    with pytest.raises(DatasetError, match=error_at(ann, 3) + ".*" + problem):
        load_para(tmp_path)


def test_para_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="PARA-Images.csv: no such file"):
        load_para(tmp_path)
    ann = write(tmp_path / "a.csv", "sessionId,imageName,user,score\n")
    with pytest.raises(DatasetError, match=error_at(ann, 1) + ".*userId, aestheticScore"):
        load_para(tmp_path, annotations=ann)
    with pytest.raises(DatasetError, match="no ratings"):
        load_para(tmp_path, annotations=write(tmp_path / "b.csv", PARA_HEADER))


# ---------------------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------------------


def test_load_dataset_dispatches_by_name(para: Path, flickr: tuple[Path, Path], tmp_path: Path) -> None:
    assert DATASETS == ("realcur", "flickr-aes", "para")
    assert [a.user for a in load_dataset("PARA", root=para)] == ["A9", "A10", "B1"]
    csv_path, images = flickr
    got = load_dataset("flickr-aes", labels_csv=csv_path, images_root=images, workers="all")
    assert len(got) == 3
    assert load_dataset("FLICKR_AES", labels_csv=csv_path, images_root=images, workers=["A1WORKERAAAAA"])
    realcur = realcur_label_files(tmp_path / "rc")
    assert [a.user for a in load_dataset("REAL-CUR", root=realcur)] == ["user1", "user2", "user10"]
    with pytest.raises(ValueError, match="unknown dataset 'ava'"):
        load_dataset("ava", root=tmp_path)


def test_registry_lists_every_loader_and_errors_are_piaa_errors(tmp_path: Path) -> None:
    assert list_datasets() == list(DATASETS)
    with pytest.raises(PiaaError, match="unknown dataset"):
        load_dataset("ava")
    with pytest.raises(ValueError, match=error_at(tmp_path / "absent") + "no such folder$"):
        load_dataset("realcur", root=tmp_path / "absent")  # still a ValueError, as before
    assert issubclass(DatasetError, PiaaError) and issubclass(DatasetError, ValueError)
