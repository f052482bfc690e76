"""The para-human world (piaa.evaluation.world_human): seeded, built from PARA's real human ratings only,
exposing the reference's attribute ratings and the pool's pixel attributes; and its CLI switch. A tiny
version on the first photos of the shared PARA sample (skipped without it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from piaa.data.labels import mean_score, read_labels
from piaa.evaluation import protocol as bench
from piaa.evaluation.simulate import para_persons
from piaa.evaluation.world_human import (
    HUMAN_ATTRIBUTES,
    _emotion_shares,
    _residual_z,
    human_persons,
    human_world,
)
from piaa.models.attributes import PARA_ATTRIBUTES, read_attribute_table
from piaa.settings import QUIET

PARA = Path(__file__).parents[2] / "shared" / "data" / "para"
N = 60


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    if not (PARA / "attributes.csv").is_file():
        pytest.skip(f"shared PARA sample {PARA} is missing (expected in ../shared)")
    cache = tmp_path_factory.mktemp("cache")
    return human_world(PARA, persons=2, album_size=20, limit=N, cache_dir=cache, run=QUIET), cache


def test_persons_are_seeded_and_not_the_para_worlds() -> None:
    a, b = human_persons(8, seed=0), human_persons(8, seed=0)
    assert all(
        np.array_equal(p.weights, q.weights) and np.array_equal(p.topics, q.topics)
        for p, q in zip(a, b, strict=True)
    )
    assert all(len(p.weights) == len(HUMAN_ATTRIBUTES) and len(p.topics) == 8 for p in a)
    assert all(0.2 <= p.generic_share <= 0.6 and 0.3 <= p.content_weight <= 1.0 for p in a)
    assert not np.allclose(a[0].weights, para_persons(8, 8, seed=0)[0].weights)
    assert not np.allclose(a[0].weights, human_persons(8, seed=1)[0].weights)


@pytest.mark.slow  # builds a 60-photo world: ~10 s unloaded, more on a busy machine
def test_world_is_seeded(world, tmp_path) -> None:
    w, cache = world
    again = human_world(PARA, persons=2, album_size=20, limit=N, cache_dir=cache, run=QUIET)
    for a, b in zip(w.albums, again.albums, strict=True):
        np.testing.assert_array_equal(a.scores, b.scores)
        np.testing.assert_array_equal(a.photos, b.photos)
        np.testing.assert_array_equal(a.truth, b.truth)
    np.testing.assert_array_equal(w.ref_dists, again.ref_dists)
    other = human_world(PARA, persons=2, album_size=20, limit=N, cache_dir=cache, run=QUIET, seed=1)
    assert not np.array_equal(w.albums[0].scores, other.albums[0].scores)


@pytest.mark.slow  # builds a 60-photo world: ~10 s unloaded, more on a busy machine
def test_truth_is_made_of_human_ratings_only(world) -> None:
    """Recomputed from the two CSV files alone: no pixel statistic and no network enters a taste."""
    w, _ = world
    labels = read_labels(PARA / "labels.csv")
    names = labels.files[:N]
    table = read_attribute_table(PARA / "attributes.csv")
    crowd = mean_score(labels.distributions[:N].astype(np.float64))
    col = [table.names.index(a) for a in HUMAN_ATTRIBUTES]
    human = _residual_z(table.rows(names)[:, col], crowd)
    mood = _emotion_shares(PARA / "labels.csv", names)
    row = {str(PARA / "images" / f): i for i, f in enumerate(names)}
    for album, person in zip(w.albums, human_persons(2, seed=0), strict=True):
        idx = [row[str(p)] for p in album.images]
        np.testing.assert_allclose(album.truth, person.utility(human[idx], mood[idx], crowd[idx]), atol=1e-9)
        assert set(np.unique(album.scores)) <= {2.0, 4.0, 6.0, 8.0, 10.0}
    np.testing.assert_allclose(np.abs(np.corrcoef(np.c_[human, crowd].T)[-1, :-1]), 0, atol=1e-9)


@pytest.mark.slow  # builds a 60-photo world: ~10 s unloaded, more on a busy machine
def test_world_exposes_reference_attributes_and_pool_pixels(world) -> None:
    w, _ = world
    assert len(w.ref_emb) == N // 2 and len(w.photo_emb) == N - N // 2
    assert w.attribute_names == PARA_ATTRIBUTES
    assert w.ref_attributes is not None and w.ref_attributes.shape == (N // 2, 8)
    assert w.ref_attributes.min() >= 1 and w.ref_attributes.max() <= 5
    real = {round(float(m), 5) for m in read_labels(PARA / "labels.csv").mean_scores()[:N]}
    assert {round(float(m), 5) for m in mean_score(w.ref_dists.astype(np.float64))} <= real
    assert w.photo_pixels is not None and w.photo_pixels.shape == (len(w.photo_emb), 5)
    assert "para-human world" in w.description


def test_cli_runs_the_world(tmp_path, monkeypatch) -> None:
    from piaa.cli.main import app

    seen = {}

    def fake(photos, **kw):
        seen.update(kw, photos=photos)
        raise RuntimeError("stop here")

    monkeypatch.setattr(bench, "simulated_world", fake)
    args = [
        "evaluate",
        "--world",
        "para-human",
        "--photos",
        str(tmp_path),
        "--feature-cache",
        str(tmp_path / "c"),
    ]
    res = CliRunner().invoke(app, args)
    assert "stop here" in res.output or isinstance(res.exception, RuntimeError)
    assert seen["kind"] == "para-human" and seen["cache_dir"] == tmp_path / "c"
    assert "content_backbone" not in seen


@pytest.mark.slow  # a split of the protocol on the 60-photo world
def test_taste_space_method_reads_the_reference_attributes(world) -> None:
    from piaa.evaluation.methods import EVALUATION_METHODS
    from piaa.models.train import TrainConfig

    w, _ = world
    tiny = TrainConfig(generic_epochs=1, rank_epochs=1, k=5)
    s = bench.make_split(w, w.albums[0], 10, np.random.default_rng(1), tiny)
    pred = EVALUATION_METHODS["taste space"](s)
    assert pred.shape == s.test.shape and np.isfinite(pred).all()
    assert w.__dict__["_taste_attributes"].shape == (len(w.photo_emb), 8)  # heads fitted once per world
    assert s.cache["taste choices"][-1] == "generic" or s.cache["taste choices"][-1].startswith("fit")


@pytest.mark.slow  # extracts the other backbone over 60 photos, then a split of the protocol
def test_taste_space_on_both_backbones_reads_their_concatenated_pooled_features(world) -> None:
    from piaa.evaluation.methods import EVALUATION_METHODS
    from piaa.models.attributes import pooled_features
    from piaa.models.train import TrainConfig

    w, _ = world
    ref2, pool2 = w.other_pooled()
    assert ref2.shape == (len(w.ref_emb), 2496) and pool2.shape == (len(w.photo_emb), 2496)  # nima-mobilenet
    assert w.other_pooled()[0] is ref2  # extracted once
    assert not np.allclose(ref2[:, : pooled_features(w.ref_maps).shape[1]], pooled_features(w.ref_maps))
    tiny = TrainConfig(generic_epochs=1, rank_epochs=1, k=5)
    s = bench.make_split(w, w.albums[0], 10, np.random.default_rng(1), tiny)
    pred = EVALUATION_METHODS["taste space (both backbones)"](s)
    assert pred.shape == s.test.shape and np.isfinite(pred).all()
    assert w.__dict__["_taste_attributes_both_width"] == 1616 + 2496  # efficientnet-lite0 + nima-mobilenet
    assert w.__dict__["_taste_attributes_both"].shape == (len(w.photo_emb), 8)
    assert s.cache["taste choices"] == ["generic"]  # 10 judged photos: too few to fit (MIN_FIT_PHOTOS)
