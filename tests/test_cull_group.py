"""Grouping (time window + embedding cosine), exact duplicates, flags, and the flag rule of the ranking."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from conftest import synthetic_photo
from piaa.cull import CullSettings, find_duplicates, flag_photos, group_photos, rank_groups, star_ratings
from piaa.cull.core import layout_vectors
from piaa.cull.measure import measure, sharpness
from piaa.features.index import normalize

T0 = datetime(2024, 5, 1, 10, 0, 0)


def at(*seconds: float) -> list[datetime]:
    return [T0 + timedelta(seconds=s) for s in seconds]


def unit(*angles: float) -> np.ndarray:
    """2-D embeddings at these angles (degrees): cosine = cos(angle difference)."""
    a = np.radians(angles)
    return np.stack([np.cos(a), np.sin(a)], 1).astype(np.float32)


def test_time_window_and_similarity_both_needed():
    times = at(0, 0.4, 0.8, 30, 30.5)
    emb = unit(0, 5, 10, 0, 90)  # the 4th looks like the first burst but is 30 s later; the 5th differs
    labels = group_photos(times, emb, time_window=10, similarity=0.9)
    assert labels == [0, 0, 0, 1, 2]


def test_neighbours_in_time_chain_a_long_burst():
    times = at(*[0.5 * i for i in range(40)])  # 20 s of frames, each 0.5 s after the last
    emb = unit(*[i * 1.0 for i in range(40)])  # slowly drifting scene: ends 39 degrees from its start
    labels = group_photos(times, emb, time_window=2, similarity=0.99)
    assert set(labels) == {0}


def test_groups_are_ordered_by_capture_time_not_input_order():
    times = at(100, 0, 50)
    labels = group_photos(times, unit(0, 90, 180), time_window=10, similarity=0.9)
    assert labels == [2, 0, 1]


def test_duplicates_join_across_time_and_missing_times():
    times = [T0, T0 + timedelta(days=1), None, T0 + timedelta(hours=1)]
    emb = unit(0, 0, 0, 0)
    labels = group_photos(times, emb, time_window=10, similarity=0.9, duplicates=[(0, 1), (0, 2)])
    assert labels[0] == labels[1] == labels[2] != labels[3]


def test_lowering_similarity_merges(tmp_path):
    times = at(0, 1, 2)
    emb = unit(0, 40, 80)
    assert len(set(group_photos(times, emb, time_window=10, similarity=0.9))) == 3
    assert len(set(group_photos(times, emb, time_window=10, similarity=0.7))) == 1
    assert len(set(group_photos(times, emb, time_window=0.5, similarity=0.7))) == 3


def _measures(paths: list[Path]):
    from piaa.data.images import load_image

    return [measure(load_image(p)) for p in paths]


def test_exact_duplicates_other_name_and_format(tmp_path):
    rng = np.random.default_rng(3)
    a = synthetic_photo(rng, 160, 120)
    a.save(tmp_path / "a.jpg", quality=90)
    (tmp_path / "a copy.jpg").write_bytes((tmp_path / "a.jpg").read_bytes())
    Image.open(tmp_path / "a.jpg").save(tmp_path / "a export.png")  # the same decoded pixels
    near = np.asarray(Image.open(tmp_path / "a.jpg")).astype(np.int16)
    near[0, 0] ^= 8  # one pixel differs: not an exact duplicate
    Image.fromarray(near.astype(np.uint8)).save(tmp_path / "a nearly.png")
    synthetic_photo(rng, 160, 120).save(tmp_path / "b.jpg")
    paths = [tmp_path / n for n in ("a.jpg", "a copy.jpg", "a export.png", "a nearly.png", "b.jpg")]
    measures = _measures(paths)
    emb = np.array([[1, 0], [1, 0], [1, 0], [1, 0], [0, 1]], np.float32)  # as similar as can be
    pairs = find_duplicates(paths, measures, emb)
    assert {i for pair in pairs for i in pair} == {0, 1, 2}
    assert (
        len(set(group_photos([T0, None, None, T0, T0], emb, time_window=0, similarity=2, duplicates=pairs)))
        == 3
    )


def test_exact_duplicate_decoded_another_way_is_verified_in_full(tmp_path):
    """A big JPEG is decoded drafted (DCT-scaled), its PNG export in full: the digests differ, the
    full decodes agree."""
    from piaa.data.images import load_image

    big = synthetic_photo(np.random.default_rng(4), 960, 720)
    big.save(tmp_path / "big.jpg", quality=92)
    Image.open(tmp_path / "big.jpg").save(tmp_path / "big.png")
    drafted = load_image(tmp_path / "big.jpg", draft_size=(224, 224))
    assert drafted.size[0] < 960
    measures = [measure(drafted), measure(load_image(tmp_path / "big.png"))]
    assert measures[0].digest != measures[1].digest
    emb = np.array([[1, 0], [1, 0]], np.float32)
    assert find_duplicates([tmp_path / "big.jpg", tmp_path / "big.png"], measures, emb) == [(0, 1)]


def test_sharpness_measure_falls_with_blur_not_with_exposure():
    img = synthetic_photo(np.random.default_rng(0), 384, 288)
    y = np.asarray(img.convert("L"), np.float32)
    blurred = np.asarray(img.filter(ImageFilter.GaussianBlur(2)).convert("L"), np.float32)
    assert sharpness(blurred) < 0.5 * sharpness(y)
    assert sharpness(0.5 * y) == pytest.approx(sharpness(y), rel=1e-4)
    assert sharpness(np.full((10, 10), 7.0)) == 0.0


def test_flags_blurred_relative_to_group_and_clipped():
    rng = np.random.default_rng(1)
    img = synthetic_photo(rng, 384, 288)
    sharp, soft = measure(img), measure(img.filter(ImageFilter.GaussianBlur(3)))
    white = measure(Image.new("RGB", (64, 48), (255, 255, 255)))
    dark = np.asarray(img).copy()
    dark[:150] = 0  # over half the frame black
    shadows = measure(Image.fromarray(dark))
    s = CullSettings()
    assert flag_photos([sharp, soft, white, shadows], [0, 0, 1, 2], s) == [
        (),
        ("blurred",),
        ("clipped",),
        ("clipped",),
    ]
    assert flag_photos([soft], [0], s) == [()]  # a group of one has nothing to be blurred relative to
    assert flag_photos([sharp, soft], [0, 0], CullSettings(blur_ratio=0.01)) == [(), ()]


def _rank(scores, flags, keep=1, **kw):
    n = len(scores)
    paths = [Path(f"p{i}.jpg") for i in range(n)]
    rows = rank_groups(paths, scores, [0] * n, flags, [(None, "file")] * n, CullSettings(keep=keep, **kw))
    return {r.path.name: (r.rank, r.status) for r in rows}, rows


def test_a_flagged_photo_never_wins_over_an_unflagged_one():
    ranks, _ = _rank([9.0, 5.0, 4.0], [("blurred",), (), ()])
    assert ranks == {"p1.jpg": (1, "pick"), "p2.jpg": (2, "alternate"), "p0.jpg": (3, "reject")}
    ranks, _ = _rank([9.0, 5.0], [("blurred",), ("clipped",)])  # all flagged: the score decides
    assert ranks == {"p0.jpg": (1, "pick"), "p1.jpg": (2, "reject")}
    ranks, _ = _rank([9.0, 5.0, 4.0], [("blurred",), (), ()], reject_flagged=False)
    assert ranks["p0.jpg"] == (3, "alternate")
    ranks, _ = _rank([3.0, 5.0, 4.0], [(), (), ()], keep=2)
    assert ranks == {"p1.jpg": (1, "pick"), "p2.jpg": (2, "pick"), "p0.jpg": (3, "alternate")}


def test_ratings_picks_by_quintile_alternates_and_rejects():
    assert star_ratings([1.0]) == [5]
    assert star_ratings([5.0, 1.0, 3.0, 2.0, 4.0]) == [5, 1, 3, 2, 4]
    assert sorted(star_ratings(list(range(10)))) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    _, rows = _rank([9.0, 5.0, 4.0], [("blurred",), (), ()], alternate_rating=1)
    assert {r.status: r.rating for r in rows} == {"pick": 5, "alternate": 1, "reject": -1}


def test_settings_out_of_range():
    with pytest.raises(ValueError, match="keep=0"):
        CullSettings(keep=0)
    with pytest.raises(ValueError, match="similarity=2"):
        CullSettings(similarity=2)


def test_layout_links_a_darker_blurred_frame_the_embedding_misses():
    img = synthetic_photo(np.random.default_rng(2), 384, 288)
    dark_soft = Image.fromarray((np.asarray(img) * 0.5).astype(np.uint8)).filter(ImageFilter.GaussianBlur(3))
    other = synthetic_photo(np.random.default_rng(8), 384, 288)
    layout = layout_vectors([measure(img), measure(dark_soft), measure(other)])
    sims = normalize(layout) @ normalize(layout).T
    assert sims[0, 1] > 0.9 and sims[0, 2] < 0.7
    emb = unit(0, 90, 180)  # the embeddings say all three differ
    times = at(0, 0.5, 1.0)
    assert group_photos(times, emb, time_window=10, similarity=0.93) == [0, 1, 2]
    labels = group_photos(times, emb, time_window=10, similarity=0.93, layout=layout, layout_similarity=0.7)
    assert labels == [0, 0, 1]


def test_an_exact_duplicate_tie_goes_to_the_camera_original_whatever_the_names():
    for names in (["a-export.png", "z-IMG_1.JPG"], ["z-export.png", "a-IMG_1.JPG"]):
        paths = [Path(n) for n in names]
        times = [(None, "file"), (datetime(2024, 5, 1, 10, 0), "exif")]  # the export has no EXIF time
        rows = rank_groups(paths, [6.2, 6.2], [0, 0], [(), ()], times, CullSettings())
        assert [r.path.name for r in rows if r.status == "pick"] == [names[1]]


def test_keep_two_never_spends_the_second_pick_on_an_exact_duplicate():
    paths = [Path(n) for n in ("a.jpg", "a-copy.jpg", "a.png", "b.jpg")]
    scores, flags, times = [6.0, 6.0, 6.0, 5.0], [(), (), (), ()], [(None, "file")] * 4
    rows = rank_groups(paths, scores, [0] * 4, flags, times, CullSettings(keep=2), [(0, 1), (1, 2)])
    picks = sorted(r.path.name for r in rows if r.status == "pick")
    assert len(picks) == 2 and "b.jpg" in picks  # one of the three copies (a chain of pairs), then b
    rows = rank_groups(paths, scores, [0] * 4, flags, times, CullSettings(keep=2))  # not known as copies
    assert "b.jpg" not in [r.path.name for r in rows if r.status == "pick"]
