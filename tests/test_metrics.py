"""The evaluation metrics against their definitions and against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau, pearsonr, spearmanr

from piaa.evaluation.metrics import pairwise_accuracy, plcc, spearman, srcc


def accuracy_by_definition(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Every pair with unequal truth: 1 when ordered alike, 1/2 when the prediction ties, else 0."""
    agree = total = 0.0
    for i in range(len(truth)):
        for j in range(i + 1, len(truth)):
            if truth[i] != truth[j]:
                total += 1
                s = np.sign(predicted[i] - predicted[j]) * np.sign(truth[i] - truth[j])
                agree += 1.0 if s > 0 else 0.5 if s == 0 else 0.0
    return agree / total if total else 0.5


def test_pairwise_accuracy_matches_its_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 40))
        truth = rng.integers(1, 6, n).astype(float)  # ratings 1-5: many ties
        pred = np.round(rng.normal(size=n) + 0.5 * truth, int(rng.integers(0, 2)))  # ties here too
        assert pairwise_accuracy(pred, truth) == pytest.approx(accuracy_by_definition(pred, truth), abs=1e-12)


def test_pairwise_accuracy_is_kendall_tau_b_without_ties() -> None:
    rng = np.random.default_rng(1)
    pred, truth = rng.normal(size=50), rng.normal(size=50)
    assert pairwise_accuracy(pred, truth) == pytest.approx((1 + kendalltau(pred, truth).statistic) / 2)


def test_pairwise_accuracy_edges() -> None:
    assert pairwise_accuracy([1, 2, 3], [5, 5, 5]) == 0.5  # no pair with unequal truth
    assert pairwise_accuracy([1], [2]) == 0.5
    assert pairwise_accuracy([0, 0, 0], [1, 2, 3]) == 0.5  # all tied: half each
    assert pairwise_accuracy([1, 2, 3], [1, 2, 3]) == 1.0
    assert pairwise_accuracy([3, 2, 1], [1, 2, 3]) == 0.0
    with pytest.raises(ValueError, match="2 predictions for 3"):
        pairwise_accuracy([1, 2], [1, 2, 3])


def test_srcc_and_plcc_are_scipys_with_zero_for_constant_input() -> None:
    rng = np.random.default_rng(2)
    pred, truth = rng.normal(size=30), rng.integers(1, 6, 30).astype(float)
    assert srcc is spearman
    assert srcc(pred, truth) == pytest.approx(spearmanr(pred, truth).statistic)
    assert plcc(pred, truth) == pytest.approx(pearsonr(pred, truth).statistic)
    for f in (srcc, plcc):
        assert f(pred, np.full(30, 4.0)) == 0.0 and f(np.zeros(30), truth) == 0.0 and f([1.0], [2.0]) == 0.0
