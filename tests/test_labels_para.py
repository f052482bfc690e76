"""PARA's crowd labels as a reference corpus: the official GIAA layout (a fixture with invented counts
in the real header layout), the shared sample's per-image means, and ``piaa reference build`` on them."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from piaa.data.labels import (
    NINE_TO_TEN,
    LabelFormatError,
    mean_score,
    nine_bin_to_ten,
    para_mean_to_ten,
    read_csv_labels,
    read_labels,
)
from piaa.data.labels.para import GIAA_BINS, read_para_labels

FIXTURE = Path(__file__).parent / "fixtures" / "para_giaa_sample.csv"
PARA = Path(__file__).parents[2] / "shared" / "data" / "para"
PARA_LABELS = PARA / "labels.csv"


def _need_para() -> Path:
    if not PARA_LABELS.is_file():
        pytest.skip(f"shared PARA sample {PARA_LABELS} is missing (expected in ../shared)")
    return PARA_LABELS


def _to_ten(v: float) -> float:
    return 1.0 + (v - 1.0) * 9.0 / 4.0


def test_nine_to_ten_rows_are_distributions_with_the_mapped_means() -> None:
    assert NINE_TO_TEN.shape == (9, 10)
    np.testing.assert_allclose(NINE_TO_TEN.sum(1), 1.0)
    np.testing.assert_allclose(mean_score(NINE_TO_TEN), [_to_ten(v) for v in GIAA_BINS], atol=1e-12)
    # 1.5 -> 2.125: bin 2 gets 0.875, bin 3 0.125; 3.0 -> 5.5: half on 5 and 6; the ends are exact
    np.testing.assert_allclose(NINE_TO_TEN[1, 1:3], [0.875, 0.125])
    np.testing.assert_allclose(NINE_TO_TEN[4, 4:6], [0.5, 0.5])
    assert NINE_TO_TEN[0, 0] == 1.0 and NINE_TO_TEN[8, 9] == 1.0
    assert not NINE_TO_TEN.flags.writeable


def test_giaa_fixture_maps_with_exact_means() -> None:
    ls = read_labels(FIXTURE)
    assert ls.source_format == "para-giaa"
    assert ls.ids == ["session1/iaa_pub1_", "session1/iaa_pub2_", "session2/iaa_pub3_", "session2/iaa_pub4_"]
    assert ls.files[0] == "session1/iaa_pub1_.jpg"
    assert len(ls.skipped) == 1 and "para_giaa_sample.csv:6" in ls.skipped[0] and "iaa_pub5_" in ls.skipped[0]
    with FIXTURE.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["imageName"] != "iaa_pub5_.jpg"]
    for row, dist in zip(rows, ls.distributions, strict=True):
        counts = np.array([float(row[f"aestheticScore_{v:.1f}"]) for v in GIAA_BINS])
        mean5 = counts @ np.array(GIAA_BINS) / counts.sum()
        assert mean_score(dist.astype(np.float64)) == pytest.approx(_to_ten(mean5), abs=1e-5)
        assert mean5 == pytest.approx(float(row["aestheticScore_mean"]), abs=1e-4)  # the file's own mean
    # all votes on 1.0 -> bin 1; all on 5.0 -> bin 10
    np.testing.assert_allclose(ls.distributions[1], np.eye(10)[0])
    np.testing.assert_allclose(ls.distributions[2], np.eye(10)[9])
    # the csv reader takes the same route
    assert read_csv_labels(FIXTURE).ids == ls.ids


def test_nine_bin_hand_computed_row() -> None:
    # 2 votes on 2.5 (-> 4.375) and 2 on 4.5 (-> 8.875): mean 3.5 -> 6.625
    d = nine_bin_to_ten(np.array([0, 0, 0, 2, 0, 0, 0, 2, 0]))
    expect = np.zeros(10)
    expect[3], expect[4] = 0.5 * 0.625, 0.5 * 0.375
    expect[7], expect[8] = 0.5 * 0.125, 0.5 * 0.875
    np.testing.assert_allclose(d, expect)
    assert mean_score(d) == pytest.approx(6.625)
    with pytest.raises(ValueError, match="9 bins"):
        nine_bin_to_ten(np.ones(5))


def test_para_mean_to_ten_two_nearest_bins() -> None:
    d = para_mean_to_ten(np.array([3.0, 1.0, 5.0, 3.2826]))
    np.testing.assert_allclose(mean_score(d), [5.5, 1.0, 10.0, _to_ten(3.2826)])
    assert (np.count_nonzero(d, axis=1) <= 2).all()
    with pytest.raises(ValueError, match=r"\[1, 5\]"):
        para_mean_to_ten(5.5)


def test_mean_file_layout(tmp_path: Path) -> None:
    p = tmp_path / "labels.csv"
    p.write_text("image,aesthetic_mean,quality_mean\nsession1/a_.jpg,3.0,2.0\nsession2/b_.jpg,4.2,4.0\n")
    ls = read_labels(p)
    assert ls.source_format == "para-mean"
    assert ls.ids == ["session1/a_", "session2/b_"] and ls.files == ["session1/a_.jpg", "session2/b_.jpg"]
    np.testing.assert_allclose(ls.mean_scores(), [5.5, _to_ten(4.2)], atol=1e-6)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("image,aesthetic_mean\ns/a.jpg,5.5\n", r"labels\.csv:2: aesthetic_mean 5\.5 is outside PARA's"),
        ("image,aesthetic_mean\ns/a.jpg,x\n", r"labels\.csv:2: column 'aesthetic_mean' is not a number"),
        ("image,aesthetic_mean\ns/a.jpg,3\ns/a.jpg,4\n", r"labels\.csv:3: duplicate image id 's/a'"),
        ("image,aesthetic_mean\ns/a.jpg\n", r"labels\.csv:2: expected 2 fields"),
        ("image,aesthetic_mean\n", r"labels\.csv: no data rows"),
    ],
)
def test_mean_file_errors_name_the_line(tmp_path: Path, text: str, problem: str) -> None:
    p = tmp_path / "labels.csv"
    p.write_text(text)
    with pytest.raises(LabelFormatError, match=problem):
        read_labels(p)


def test_giaa_negative_count_and_empty_session(tmp_path: Path) -> None:
    lines = FIXTURE.read_text().splitlines()
    bad = lines[:2]
    bad[1] = bad[1].replace("portrait,0,0,1", "portrait,0,-1,1")
    p = tmp_path / "giaa.csv"
    p.write_text("\n".join(bad) + "\n")
    with pytest.raises(LabelFormatError, match=r"giaa\.csv:2: column 'aestheticScore_1\.5' is negative"):
        read_labels(p)
    p.write_text("\n".join([lines[0], lines[1].replace(",session1,", ",,")]) + "\n")
    with pytest.raises(LabelFormatError, match=r"giaa\.csv:2: empty sessionId"):
        read_labels(p)


def test_explicit_para_format_refuses_other_layouts(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("image,mean\na,5\n")
    with pytest.raises(LabelFormatError, match="not a PARA label file"):
        read_labels(p, fmt="para")
    assert read_labels(p).source_format == "csv-mean"  # auto still reads it as a plain CSV


# ------------------------------------------------------------------------------- the shared PARA sample


def test_real_para_labels_read_every_row() -> None:
    ls = read_labels(_need_para())
    assert ls.source_format == "para-mean"
    assert len(ls) == 5000 and not ls.skipped
    with PARA_LABELS.open(newline="") as f:
        first = next(csv.DictReader(f))
    assert ls.files[0] == first["image"] and ls.ids[0] == first["image"][:-4]
    assert mean_score(ls.distributions[0].astype(np.float64)) == pytest.approx(
        _to_ten(float(first["aesthetic_mean"])), abs=1e-5
    )
    assert all((PARA / "images" / f).is_file() for f in ls.files[:50])
    assert read_para_labels(PARA_LABELS).ids == ls.ids


def test_reference_build_on_a_few_para_images(tmp_path: Path) -> None:
    labels = _need_para()
    from piaa.cli.main import app
    from piaa.features.reference import Reference

    out = tmp_path / "REF"
    res = CliRunner().invoke(
        app,
        ["reference", "build", "--labels", str(labels), "--images", str(PARA / "images"),
         "--out", str(out), "--limit", "6", "--engine", "torch"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "6 of 6 images embedded" in res.output
    ref = Reference.open(out)
    assert len(ref) == 6 and ref.meta.labels_format == "para-mean"
    with labels.open(newline="") as f:
        means = [float(r["aesthetic_mean"]) for _, r in zip(range(6), csv.DictReader(f), strict=False)]
    np.testing.assert_allclose(ref.mean_scores(), [_to_ten(m) for m in means], atol=1e-4)
