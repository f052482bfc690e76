"""The taste space's extra axes (issue 20): kinds of subject, a residual on the deep features, and the
per-column pull that lets the pairs move the residual only a little."""

import numpy as np
import pytest

from piaa.evaluation import protocol as bench
from piaa.models.attributes import _fit_linear_ranker, deep_residual, fit_taste, subject_axes
from piaa.models.train import TrainConfig
from piaa.settings import QUIET

NEW = "taste space (+ subjects + residual)"


def _pairs(taste: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` pairs of distinct photos, the one with the higher ``taste`` first."""
    a, b = rng.choice(len(taste), n), rng.choice(len(taste), n)
    keep = a != b
    a, b = a[keep], b[keep]
    first = taste[a] > taste[b]
    return np.stack([np.where(first, a, b), np.where(first, b, a)], 1)


def test_a_heavily_penalised_column_stays_near_zero_while_a_light_one_moves() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 3))
    taste = z[:, 0] + 2.0 * z[:, 1] + 2.0 * z[:, 2]  # the person cares as much for axes 1 and 2
    rows = _pairs(taste, 400, rng)
    prior = np.array([1.0, 0.0, 0.0])
    w = _fit_linear_ranker(z, rows, prior, 0.01, np.array([1.0, 1.0, 1000.0]))
    assert w[1] > 0.5  # the lightly penalised column moved
    assert abs(w[2]) < 0.05 * w[1]  # the heavily penalised one barely did
    even = _fit_linear_ranker(z, rows, prior, 0.01)
    assert even[2] > 0.5  # without the penalty the same pairs move it as far as axis 1


def test_default_penalties_reproduce_fit_taste_exactly() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(120, 6))
    taste = z[:, 0] - 2.0 * z[:, 2] + z[:, 4]
    pairs = _pairs(taste, 100, rng)
    w0, c0 = fit_taste(z, pairs, stated=len(pairs), seed=1)
    w1, c1 = fit_taste(z, pairs, stated=len(pairs), seed=1, penalty=np.ones(6))
    assert c0 == c1 and c0 != "generic"
    np.testing.assert_array_equal(w0, w1)
    w2, _ = fit_taste(z, pairs, stated=len(pairs), seed=1, penalty=np.r_[np.ones(5), 10.0])
    assert not np.array_equal(w0, w2)  # the argument is used
    with pytest.raises(ValueError, match="penalty"):
        fit_taste(z, pairs, stated=len(pairs), penalty=np.ones(5))


def test_subject_axes_are_deterministic_with_k_columns() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 32))
    ref = centres[rng.integers(0, 4, 300)] + 0.3 * rng.normal(size=(300, 32))
    pool = centres[rng.integers(0, 4, 50)] + 0.3 * rng.normal(size=(50, 32))
    a = subject_axes(ref, pool, k=8, seed=5)
    assert a.shape == (50, 8) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, subject_axes(ref, pool, k=8, seed=5))
    assert np.abs(a).max() <= 1.0 + 1e-5  # cosine similarities
    with pytest.raises(ValueError, match="reference photos"):
        subject_axes(ref[:5], pool, k=8)


def test_deep_residual_has_dims_columns_fitted_on_the_reference() -> None:
    rng = np.random.default_rng(1)
    ref, pool = rng.normal(size=(100, 40)), rng.normal(size=(30, 40))
    r = deep_residual(ref, pool, dims=16)
    assert r.shape == (30, 16)
    np.testing.assert_array_equal(r, deep_residual(ref, pool, dims=16))
    on_ref = deep_residual(ref, ref, dims=16)
    assert np.allclose(on_ref.mean(0), 0, atol=1e-8)  # centred on the reference, not the pool
    with pytest.raises(ValueError):
        deep_residual(ref[:10], pool, dims=16)


def test_the_new_method_is_registered_and_runs_on_a_tiny_world(demo_world) -> None:
    from piaa.evaluation.methods import RESIDUAL_DIMS, SUBJECTS

    assert NEW in bench.EVALUATION_METHODS
    world = bench.simulated_world(demo_world["example"].album, persons=2, album_size=40, run=QUIET)
    tiny = TrainConfig(generic_epochs=1, rank_epochs=1, k=5)
    s = bench.make_split(world, world.albums[0], 30, np.random.default_rng(1), tiny)
    pred = bench.EVALUATION_METHODS.get(NEW)(s)
    assert pred.shape == s.test.shape and np.isfinite(pred).all()
    assert world._taste_subjects.shape == (len(world.photo_emb), SUBJECTS)
    assert world._taste_residual.shape == (len(world.photo_emb), RESIDUAL_DIMS)
    assert s.cache["taste choices"][-1] in ("generic", *(f"fit {lam:g}" for lam in (10, 1, 0.1, 0.01)))


def test_no_method_name_has_a_comma() -> None:
    """``--methods`` lists are split on commas (``piaa evaluate``, ``benchmarks/bench_taste.py``)."""
    assert not [m for m in bench.EVALUATION_METHODS if "," in m]
