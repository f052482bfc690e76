"""piaa.data.labels: the real AVA and KonIQ label files, small fixtures for every format and error."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from piaa.data.labels import (
    FIVE_TO_TEN,
    LabelFormatError,
    LabelSet,
    five_bin_to_ten,
    mean_to_distribution,
    read_ava,
    read_csv_labels,
    read_labels,
)
from piaa.data.labels import ava as labels_mod

LABELS_DIR = Path(__file__).parents[2] / "shared" / "data" / "labels"
AVA_TEST = LABELS_DIR / "AVA_test_histograms.txt"
KONIQ = LABELS_DIR / "koniq10k_distributions_sets.csv"


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"shared label file {path} is missing (expected next to the repository in ../shared)")
    return path


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


AVA_LINE = "1 100 0 1 2 3 4 5 4 3 2 1 0 0 0\n"


# ------------------------------------------------------------------------------------ real AVA file


@pytest.fixture(scope="module")
def ava_test() -> LabelSet:
    return read_labels(_need(AVA_TEST))


def test_ava_real_file_reads_every_row(ava_test: LabelSet) -> None:
    # Measured: 25,551 rows, none with zero votes, so nothing is skipped.
    assert ava_test.source_format == "ava"
    assert len(ava_test.skipped) == 0
    assert len(ava_test) == 25_551
    assert ava_test.distributions.shape == (25_551, 10)
    assert ava_test.distributions.dtype == np.float32
    np.testing.assert_allclose(ava_test.distributions.sum(axis=1), 1.0, atol=1e-6)
    assert len(set(ava_test.ids)) == len(ava_test)
    assert all(f.endswith(".jpg") for f in ava_test.files)
    assert all(f == f"{i}.jpg" for i, f in zip(ava_test.ids, ava_test.files, strict=True))


def test_ava_real_file_row_42040(ava_test: LabelSet) -> None:
    counts = np.array([7, 15, 25, 41, 67, 41, 12, 11, 4, 1], dtype=np.float64)
    total = 7 + 15 + 25 + 41 + 67 + 41 + 12 + 11 + 4 + 1  # 224 votes
    mean = (1 * 7 + 2 * 15 + 3 * 25 + 4 * 41 + 5 * 67 + 6 * 41 + 7 * 12 + 8 * 11 + 9 * 4 + 10 * 1) / total
    assert total == 224 and mean == pytest.approx(1075 / 224)  # 4.799...
    row = ava_test.ids.index("42040")
    assert ava_test.files[row] == "42040.jpg"
    np.testing.assert_allclose(ava_test.distributions[row], counts / total, rtol=1e-6)
    assert ava_test.mean_scores()[row] == pytest.approx(mean, abs=1e-5)


def test_ava_real_file_fast_path_matches_line_by_line(ava_test: LabelSet) -> None:
    # The numpy fast path must agree exactly with the line-by-line parser it replaces.
    data = _need(AVA_TEST).read_bytes()
    fast = labels_mod._ava_fast(data, data.decode())
    assert fast is not None, "the real AVA file should take the fast path"
    slow = labels_mod._ava_slow(AVA_TEST, data.decode())
    np.testing.assert_array_equal(fast[0], slow[0])
    assert fast[1] == slow[1]
    np.testing.assert_array_equal(fast[2], slow[2])


# ---------------------------------------------------------------------------------- real KonIQ file


@pytest.fixture(scope="module")
def koniq() -> LabelSet:
    return read_labels(_need(KONIQ))


def test_koniq_reads_as_five_bin(koniq: LabelSet) -> None:
    assert koniq.source_format == "csv-5bin"
    assert len(koniq) == 10_073
    assert koniq.skipped == []
    np.testing.assert_allclose(koniq.distributions.sum(axis=1), 1.0, atol=1e-6)
    assert koniq.files[0] == "10004473376.jpg" and koniq.ids[0] == "10004473376"
    # Bins 2 and 9 never receive mass under the documented 1->1, 2->3.25, 3->5.5, 4->7.75, 5->10 map.
    assert np.all(koniq.distributions[:, [1, 8]] == 0)


def test_koniq_hand_computed_row(koniq: LabelSet) -> None:
    # First data row: 10004473376.jpg,0.0,0.0,0.238095238095,0.695238095238,0.0666666666667,...
    c3, c4, c5 = 0.238095238095, 0.695238095238, 0.0666666666667
    expected = np.zeros(10)
    expected[4] = expected[5] = 0.5 * c3  # rating 3 -> 5.5
    expected[6], expected[7] = 0.25 * c4, 0.75 * c4  # rating 4 -> 7.75
    expected[9] = c5  # rating 5 -> 10
    expected /= c3 + c4 + c5
    np.testing.assert_allclose(koniq.distributions[0], expected, atol=1e-6)
    mean5 = (3 * c3 + 4 * c4 + 5 * c5) / (c3 + c4 + c5)  # 3.8286
    assert koniq.mean_scores()[0] == pytest.approx(1 + (mean5 - 1) * 9 / 4, abs=1e-5)  # 7.364


def test_koniq_means_follow_the_linear_map(koniq: LabelSet) -> None:
    with _need(KONIQ).open(newline="") as f:
        rows = list(csv.DictReader(f))
    p5 = np.array([[float(r[f"c{i}"]) for i in range(1, 6)] for r in rows])
    mean5 = (p5 @ np.arange(1, 6)) / p5.sum(axis=1)
    assert [r["image_name"] for r in rows] == koniq.files
    np.testing.assert_allclose(koniq.mean_scores(), 1 + (mean5 - 1) * 9 / 4, atol=1e-5)


# ------------------------------------------------------------------------------------ CSV fixtures


def test_csv_ten_count_columns(tmp_path: Path) -> None:
    header = "image_id," + ",".join(f"count_{i}" for i in range(1, 11))
    p = _write(tmp_path, "counts.csv", f"{header}\n7,0,0,0,0,1,1,2,0,0,0\nb.png,1,1,1,1,1,1,1,1,1,1\n")
    ls = read_labels(p)
    assert ls.source_format == "csv-10bin"
    assert ls.ids == ["7", "b"] and ls.files == ["7.jpg", "b.png"]
    np.testing.assert_allclose(ls.distributions[0], [0, 0, 0, 0, 0.25, 0.25, 0.5, 0, 0, 0])
    np.testing.assert_allclose(ls.mean_scores(), [(5 + 6 + 14) / 4, 5.5], rtol=1e-6)


def test_csv_ten_probability_columns(tmp_path: Path) -> None:
    header = "Filename," + ",".join(f"P{i}" for i in range(1, 11))
    p = _write(tmp_path, "probs.txt", f"{header}\nx.jpeg,0,0,0,0,0,0.2,0.3,0.5,0,0\n")
    ls = read_labels(p)  # not .csv, but the comma on line 1 makes it CSV
    assert ls.source_format == "csv-10bin"
    assert ls.ids == ["x"] and ls.files == ["x.jpeg"]
    np.testing.assert_allclose(ls.distributions[0], [0, 0, 0, 0, 0, 0.2, 0.3, 0.5, 0, 0], atol=1e-7)


def test_csv_ten_columns_take_priority_over_mean(tmp_path: Path) -> None:
    header = "image,mean," + ",".join(f"c{i}" for i in range(1, 11))
    p = _write(tmp_path, "both.csv", f"{header}\na,9.9,0,0,1,0,0,0,0,0,0,0\n")
    ls = read_csv_labels(p)
    assert ls.source_format == "csv-10bin"
    assert ls.mean_scores()[0] == pytest.approx(3.0)


def test_csv_mean_column(tmp_path: Path) -> None:
    p = _write(tmp_path, "mean.csv", "name,mean_score\nimg1,6.3\nimg2,10\nimg3,1\n")
    ls = read_csv_labels(p)
    assert ls.source_format == "csv-mean"
    expected = np.zeros(10)
    expected[5], expected[6] = 0.7, 0.3  # p6 = 0.7, p7 = 0.3
    np.testing.assert_allclose(ls.distributions[0], expected, atol=1e-7)
    assert ls.distributions[1, 9] == 1.0 and ls.distributions[2, 0] == 1.0
    np.testing.assert_allclose(ls.mean_scores(), [6.3, 10.0, 1.0], atol=1e-6)


def test_csv_mean_out_of_range_names_the_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "mos.csv", "image_name,MOS\na.jpg,5.5\nb.jpg,77.38\n")
    with pytest.raises(LabelFormatError, match=r"mos\.csv:3: mean score 77\.38 .*outside \[1, 10\]") as e:
        read_labels(p)
    assert "\n" not in str(e.value)
    p0 = _write(tmp_path, "low.csv", "image,score\na,0.5\n")
    with pytest.raises(LabelFormatError, match=r"low\.csv:2: "):
        read_labels(p0)


def test_csv_five_bin_fixture(tmp_path: Path) -> None:
    # Counts are fine too: 2 votes for "2", 2 for "4" -> half at 3.25, half at 7.75.
    p = _write(tmp_path, "five.csv", "image,c1,c2,c3,c4,c5,MOS\na,0,2,0,2,0,55.0\n")
    ls = read_csv_labels(p)
    assert ls.source_format == "csv-5bin"
    np.testing.assert_allclose(ls.distributions[0], [0, 0, 0.375, 0.125, 0, 0, 0.125, 0.375, 0, 0])
    assert ls.mean_scores()[0] == pytest.approx(5.5)


def test_csv_missing_image_column(tmp_path: Path) -> None:
    p = _write(tmp_path, "noimg.csv", "picture,mean\na,5\n")
    with pytest.raises(LabelFormatError, match=r"noimg\.csv:1: no image column .*image_name"):
        read_labels(p)


def test_csv_headerless_file_is_rejected(tmp_path: Path) -> None:
    p = _write(tmp_path, "nohead.csv", "a.jpg,5.1\nb.jpg,6.2\n")
    with pytest.raises(LabelFormatError, match="header row is required"):
        read_labels(p)


def test_csv_no_score_columns_lists_what_was_expected(tmp_path: Path) -> None:
    p = _write(tmp_path, "noscore.csv", "image,c1,c2,c3,width\na,1,2,3,640\n")
    with pytest.raises(LabelFormatError, match=r"noscore\.csv:1: no score columns: .*c1\.\.c10.*mos") as e:
        read_labels(p)
    assert "\n" not in str(e.value)


def test_csv_partial_ten_bin_columns_are_ambiguous(tmp_path: Path) -> None:
    p = _write(tmp_path, "partial.csv", "image,c1,c2,c3,c4,c5,c6,c7\na,1,1,1,1,1,1,1\n")
    with pytest.raises(LabelFormatError, match="ambiguous"):
        read_labels(p)


def test_csv_zero_row_skipped(tmp_path: Path) -> None:
    header = "image," + ",".join(f"c{i}" for i in range(1, 11))
    p = _write(tmp_path, "z.csv", f"{header}\na,1,0,0,0,0,0,0,0,0,0\nb,0,0,0,0,0,0,0,0,0,0\n")
    ls = read_labels(p)
    assert ls.ids == ["a"] and len(ls) == 1
    assert len(ls.skipped) == 1 and "z.csv:3" in ls.skipped[0] and "b" in ls.skipped[0]


@pytest.mark.parametrize(
    ("body", "line", "problem"),
    [
        ("a,oops\n", 2, "not a number"),
        ("a,nan\n", 2, "not finite"),
        ("a,5\nb\n", 3, "expected 2 fields"),
        ("a,5\n,5\n", 3, "empty image name"),
        ("a,5\na.jpg,6\n", 3, "duplicate image id 'a'"),
    ],
)
def test_csv_malformed_rows(tmp_path: Path, body: str, line: int, problem: str) -> None:
    p = _write(tmp_path, "bad.csv", "image,mean\n" + body)
    with pytest.raises(LabelFormatError, match=rf"bad\.csv:{line}: .*{problem}"):
        read_csv_labels(p)


def test_csv_negative_count(tmp_path: Path) -> None:
    p = _write(tmp_path, "neg.csv", "image,c1,c2,c3,c4,c5\na,1,2,3,4,5\nb,1,-2,3,4,5\n")
    with pytest.raises(LabelFormatError, match=r"neg\.csv:3: column 'c2' is negative"):
        read_csv_labels(p)


def test_csv_header_only(tmp_path: Path) -> None:
    p = _write(tmp_path, "empty.csv", "image,mean\n")
    with pytest.raises(LabelFormatError, match="no data rows"):
        read_csv_labels(p)


# ------------------------------------------------------------------------------------ AVA fixtures


def test_ava_zero_vote_row_skipped(tmp_path: Path) -> None:
    p = _write(
        tmp_path, "ava.txt", AVA_LINE + "2 200 0 0 0 0 0 0 0 0 0 0 0 0 0\n\n3 300 1 0 0 0 0 0 0 0 0 0 1 2 3\n"
    )
    ls = read_labels(p)
    assert ls.source_format == "ava"
    assert ls.ids == ["100", "300"] and ls.files == ["100.jpg", "300.jpg"]
    assert ls.skipped == [f"{p}:2: image 200: zero votes"]
    np.testing.assert_allclose(ls.distributions[1], np.eye(10)[0])


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ("2 200 1 2 3 4 5 6 7 8 9 0 0 0\n", "expected 15 whitespace-separated columns.*found 14"),
        ("2 200 1 2 3 4 5 6 7 8 9 10 0 0 0 0\n", "found 16"),
        ("2 200 1 2 3.5 4 5 6 7 8 9 10 0 0 0\n", "c3 is not an integer: '3.5'"),
        ("2 200 1 2 3 4 5 6 7 8 x 10 0 0 0\n", "c9 is not an integer"),
        ("2 200 1 2 3 4 -5 6 7 8 9 10 0 0 0\n", "c5 is negative: -5"),
        ("2 100 1 2 3 4 5 6 7 8 9 10 0 0 0\n", "duplicate image id '100' \\(first seen on line 1\\)"),
    ],
)
def test_ava_malformed_line_names_the_line(tmp_path: Path, bad_line: str, problem: str) -> None:
    # Line 3 is bad; line 2 is blank and still counts.
    p = _write(tmp_path, "AVA.txt", AVA_LINE + "\n" + bad_line + "4 400 1 1 1 1 1 1 1 1 1 1 0 0 0\n")
    with pytest.raises(LabelFormatError, match=rf"AVA\.txt:3: .*{problem}") as e:
        read_ava(p)
    assert "\n" not in str(e.value)


def test_ava_crlf_and_tabs(tmp_path: Path) -> None:
    p = tmp_path / "crlf.txt"
    p.write_bytes(AVA_LINE.replace(" ", "\t").replace("\n", "\r\n").encode())
    ls = read_ava(p)
    assert ls.ids == ["100"]
    assert ls.mean_scores()[0] == pytest.approx(np.dot(np.arange(1, 11), [0, 1, 2, 3, 4, 5, 4, 3, 2, 1]) / 25)


def test_ava_empty_file(tmp_path: Path) -> None:
    with pytest.raises(LabelFormatError, match="no label rows"):
        read_ava(_write(tmp_path, "empty.txt", "\n  \n"))


# ---------------------------------------------------------------------------------------- dispatch


def test_read_labels_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(LabelFormatError) as e:
        read_labels(missing)
    assert str(e.value) == f"{missing}: no such file"
    with pytest.raises(LabelFormatError, match="no such file"):
        read_ava(missing)


def test_read_labels_explicit_format(tmp_path: Path) -> None:
    p = _write(tmp_path, "labels.dat", "image,mean\na,4\n")
    assert read_labels(p, fmt="csv").source_format == "csv-mean"
    with pytest.raises(LabelFormatError, match=r"labels\.dat:1: expected 15"):
        read_labels(p, fmt="ava")
    with pytest.raises(ValueError, match="unknown label format"):
        read_labels(p, fmt="json")


# -------------------------------------------------------------------------------------- properties


def test_five_to_ten_matrix_is_the_documented_table() -> None:
    expected = np.zeros((5, 10))
    expected[0, 0] = 1
    expected[1, 2], expected[1, 3] = 0.75, 0.25
    expected[2, 4], expected[2, 5] = 0.5, 0.5
    expected[3, 6], expected[3, 7] = 0.25, 0.75
    expected[4, 9] = 1
    np.testing.assert_array_equal(FIVE_TO_TEN, expected)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=1.0, max_value=10.0, allow_nan=False))
def test_mean_to_distribution_has_exact_mean(m: float) -> None:
    d = mean_to_distribution(m)
    assert d.shape == (10,)
    assert np.all(d >= 0)
    assert np.count_nonzero(d) <= 2
    assert d.sum() == pytest.approx(1.0, abs=1e-12)
    assert float(d @ np.arange(1, 11)) == pytest.approx(m, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=1.0, max_value=10.0, allow_nan=False), min_size=1, max_size=20))
def test_csv_mean_roundtrip_through_a_file(
    tmp_path_factory: pytest.TempPathFactory, means: list[float]
) -> None:
    p = tmp_path_factory.mktemp("means") / "m.csv"
    p.write_text("id,rating\n" + "".join(f"i{k},{m!r}\n" for k, m in enumerate(means)))
    ls = read_labels(p)
    np.testing.assert_allclose(ls.distributions.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(ls.mean_scores(), means, atol=1e-6)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(min_value=0.0, max_value=1e4, allow_nan=False), min_size=5, max_size=5).filter(
        lambda v: sum(v) > 1e-6
    )
)
def test_five_bin_mapping_preserves_the_linear_mean(p5: list[float]) -> None:
    v = np.array(p5)
    mean5 = float(v @ np.arange(1, 6) / v.sum())
    d = five_bin_to_ten(v)
    assert d.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(d >= 0)
    assert float(d @ np.arange(1, 11)) == pytest.approx(1 + (mean5 - 1) * 9 / 4, abs=1e-6)
