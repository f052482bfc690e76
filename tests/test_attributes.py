"""Attribute heads (piaa.models.attributes): fitting, prediction, save/load, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from piaa.backbones import FeatureMaps
from piaa.models.attributes import (
    PIXEL_ATTRIBUTES,
    AttributeHeads,
    AttributeHeadsError,
    pixel_attributes,
    pooled_features,
    read_attribute_table,
    taste_space,
)


def _data(n: int = 400, d: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.1, 10, d)  # columns of very different scales
    w = rng.normal(size=(d, 2))
    y = (x / x.std(0)) @ w * 0.1 + 3 + rng.normal(0, 0.05, (n, 2))
    return x, y, w


def test_heads_recover_a_linear_attribute_and_score_it() -> None:
    x, y, _ = _data()
    heads = AttributeHeads.fit(x[:300], y[:300], ["a", "b"], backbones=["bb"], licence="test only")
    pred = heads.predict(x[300:])
    assert set(pred) == {"a", "b"} and pred["a"].shape == (100,)
    s = heads.score(x[300:], y[300:])
    assert s["a"]["r2"] > 0.9 and s["b"]["srcc"] > 0.9
    # noise targets are not predictable: R² near or below 0 on held-out rows
    noise = np.random.default_rng(5).normal(size=(400, 1))
    h2 = AttributeHeads.fit(x[:300], noise[:300], ["n"], backbones=["bb"], licence="x")
    assert h2.score(x[300:], noise[300:])["n"]["r2"] < 0.1


def test_save_load_round_trip_keeps_predictions_and_metadata(tmp_path: Path) -> None:
    x, y, _ = _data()
    heads = AttributeHeads.fit(x, y, ["a", "b"], backbones=["e", "n"], licence="research only", source="s")
    f = tmp_path / "heads.safetensors"
    heads.save(f)
    back = AttributeHeads.load(f)
    assert back.names == ("a", "b") and back.backbones == ("e", "n")
    assert back.licence == "research only" and back.source == "s"
    np.testing.assert_allclose(back.predict_array(x), heads.predict_array(x), rtol=1e-6)
    np.testing.assert_array_equal(back.alphas, heads.alphas)


def test_load_and_predict_refuse_bad_input(tmp_path: Path) -> None:
    x, y, _ = _data()
    heads = AttributeHeads.fit(x, y, ["a", "b"], backbones=["e"], licence="l")
    with pytest.raises(AttributeHeadsError, match="3 columns; these heads read 30"):
        heads.predict(np.zeros((2, 3)))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(AttributeHeadsError, match="bad.safetensors: not a safetensors"):
        AttributeHeads.load(bad)
    with pytest.raises(AttributeHeadsError, match="missing.safetensors: attribute heads not found"):
        AttributeHeads.load(tmp_path / "missing.safetensors")
    other = tmp_path / "other.safetensors"
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3, np.float32)}, str(other))
    with pytest.raises(AttributeHeadsError, match="not piaa attribute heads"):
        AttributeHeads.load(other)
    with pytest.raises(ValueError, match="at least 10"):
        AttributeHeads.fit(x[:5], y[:5], ["a", "b"], backbones=["e"], licence="l")


def test_read_attribute_table_strips_suffix_and_names_bad_lines(tmp_path: Path) -> None:
    f = tmp_path / "attributes.csv"
    f.write_text("image,quality_mean,light_mean\ns1/a.jpg,3.5,2.0\ns1/b.jpg,4.0,1.5\n")
    t = read_attribute_table(f)
    assert t.names == ("quality", "light") and t.images == ["s1/a.jpg", "s1/b.jpg"]
    np.testing.assert_array_equal(t.rows(["s1/b.jpg"]), [[4.0, 1.5]])
    with pytest.raises(KeyError, match="no attribute row"):
        t.rows(["nope.jpg"])
    f.write_text("image,quality_mean\ns1/a.jpg,abc\n")
    with pytest.raises(AttributeHeadsError, match=r"attributes.csv:2: a value is not a number"):
        read_attribute_table(f)
    f.write_text("image,quality_mean\ns1/a.jpg,3\ns1/a.jpg,4\n")
    with pytest.raises(AttributeHeadsError, match=r":3: image 's1/a.jpg' appears twice"):
        read_attribute_table(f)
    f.write_text("name,quality\n")
    with pytest.raises(AttributeHeadsError, match=r":1: expected a header"):
        read_attribute_table(f)


def test_pooled_features_layout_and_pixel_axes() -> None:
    maps = FeatureMaps(
        z1=torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 2, 2),
        z2=torch.zeros(2, 5, 1, 1),
        z3=torch.ones(2, 5, 1, 1),
        embedding=torch.zeros(2, 5),
        stats=torch.full((2, 4), 7.0),
    )
    f = pooled_features(maps)
    assert f.shape == (2, 3 + 5 + 4) and f.dtype == np.float32
    np.testing.assert_allclose(f[0, :3], [1.5, 5.5, 9.5])  # spatial means of z1
    assert (f[:, 3:8] == 1).all() and (f[:, 8:] == 7).all()
    dark = np.full((40, 40, 3), 20, np.uint8)
    bright = np.full((40, 40, 3), 230, np.uint8)
    px = pixel_attributes([dark, bright])
    assert px.shape == (2, len(PIXEL_ATTRIBUTES)) and px[1, 0] > px[0, 0]  # brightness
    x, y, _ = _data(n=20, d=12)
    heads = AttributeHeads.fit(x, y, ["a", "b"], backbones=["e"], licence="l")
    space = taste_space(heads, x[:2], px)
    assert list(space) == ["a", "b", *PIXEL_ATTRIBUTES]
    with pytest.raises(AttributeHeadsError, match="2 feature rows but 1"):
        taste_space(heads, x[:2], px[:1])


def _pairs(utility: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    a, b = rng.choice(len(utility), (2, n))
    keep = a != b
    a, b = a[keep], b[keep]
    first = utility[a] > utility[b]
    return np.c_[np.where(first, a, b), np.where(first, b, a)]


def test_fit_taste_moves_from_the_generic_model_only_when_the_pairs_say_so() -> None:
    from piaa.models.attributes import fit_taste

    rng = np.random.default_rng(0)
    z = rng.normal(size=(100, 4))
    taste = z[:, 0] - 2.0 * z[:, 2]  # this person dislikes what axis 2 measures
    w, choice = fit_taste(z, _pairs(taste, 100, rng), stated=100)
    assert choice.startswith("fit") and w[2] < -0.5 * abs(w[0])
    assert np.corrcoef(z @ w, taste)[0, 1] > 0.9
    # pairs that follow the generic score: no reason to move
    w, choice = fit_taste(z, _pairs(z[:, 0], 100, rng), stated=100)
    assert choice == "generic" and np.array_equal(w, [1, 0, 0, 0])
    w, choice = fit_taste(z, _pairs(taste, 5, rng)[:5], stated=5)
    assert choice == "generic"


def test_fit_taste_keeps_the_generic_model_below_twenty_judged_photos() -> None:
    """fit_personal's rule (selection.MIN_FIT_PHOTOS): every pair among 10 photos, all agreeing with a
    taste far from the generic model, is still too few photos to judge a fit by; 20 photos are enough."""
    from piaa.models.attributes import fit_taste
    from piaa.models.selection import MIN_FIT_PHOTOS

    rng = np.random.default_rng(3)
    z = rng.normal(size=(100, 4))
    taste = z[:, 0] - 3.0 * z[:, 2]

    def all_pairs(photos: np.ndarray) -> np.ndarray:
        a, b = np.triu_indices(len(photos), 1)
        a, b = photos[a], photos[b]
        first = taste[a] > taste[b]
        return np.c_[np.where(first, a, b), np.where(first, b, a)]

    few = all_pairs(rng.choice(100, MIN_FIT_PHOTOS - 10, replace=False))  # 45 pairs, 10 photos
    w, choice = fit_taste(z, few, stated=len(few))
    assert choice == "generic" and np.array_equal(w, [1, 0, 0, 0])
    enough = all_pairs(rng.choice(100, MIN_FIT_PHOTOS, replace=False))[:100]
    w, choice = fit_taste(z, enough, stated=len(enough))
    assert choice.startswith("fit") and w[2] < 0
