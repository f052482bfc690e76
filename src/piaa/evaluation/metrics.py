"""How well a model's scores agree with a person's: the paper's Spearman rho (eq. 4; SRCC), the pairwise
ranking accuracy (the share of image pairs ordered as the person orders them) and Pearson's r (PLCC).

All three come from :mod:`scipy.stats`; this module only fixes the degenerate cases (constant input,
fewer than two photos) to the value chance gives, so an album's mean over splits never turns NaN.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import pearsonr, somersd, spearmanr

__all__ = ["pairwise_accuracy", "plcc", "spearman", "srcc"]


def _pair(predicted: ArrayLike, truth: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(predicted, float).reshape(-1), np.asarray(truth, float).reshape(-1)
    if p.shape != t.shape:
        raise ValueError(f"{len(p)} predictions for {len(t)} true scores")
    return p, t


def spearman(predicted: ArrayLike, truth: ArrayLike) -> float:
    """Spearman's rank correlation (paper eq. 4) in [-1, 1], ties given average ranks; 0 when either
    side is constant or has fewer than two values. Raises ``ValueError`` on unequal lengths."""
    p, t = _pair(predicted, truth)
    if len(p) < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return 0.0
    return float(spearmanr(p, t).statistic)


srcc = spearman
"""SRCC, the field's name for :func:`spearman`."""


def plcc(predicted: ArrayLike, truth: ArrayLike) -> float:
    """Pearson's linear correlation (PLCC) in [-1, 1]; 0 when either side is constant or has fewer than
    two values. Raises ``ValueError`` on unequal lengths."""
    p, t = _pair(predicted, truth)
    if len(p) < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return 0.0
    return float(pearsonr(p, t).statistic)


def pairwise_accuracy(predicted: ArrayLike, truth: ArrayLike) -> float:
    """Share in [0, 1] of pairs with unequal true scores that the prediction orders the same way, ties
    in the prediction counting half: 0.5 is chance (and the value when no pair has unequal truth), 1 is
    perfect. Raises ``ValueError`` on unequal lengths.

    This is ``(1 + D) / 2`` with Somers' D of the prediction given the truth (:func:`scipy.stats.somersd`
    with the truth as the independent variable): D counts concordant minus discordant pairs over the
    pairs whose truth differs, so a prediction tie adds 0 to D, i.e. one half to the accuracy.
    """
    p, t = _pair(predicted, truth)
    if len(t) < 2 or np.ptp(t) == 0:
        return 0.5
    if np.ptp(p) == 0:  # somersd needs two distinct values on each side; every pair is a tie here
        return 0.5
    return float((1.0 + somersd(t, p).statistic) / 2.0)
