"""How well a model's scores agree with a person's: the paper's Spearman rho (eq. 4) and the
pairwise ranking accuracy (the share of image pairs ordered as the person orders them)."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr


def spearman(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Spearman's rank correlation in [-1, 1] (ties get average ranks); 0 when either side is constant."""
    p, t = np.asarray(predicted, float), np.asarray(truth, float)
    if len(p) < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return 0.0
    return float(spearmanr(p, t).statistic)


def pairwise_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Share of pairs with unequal true scores that the prediction orders the same way (ties in the
    prediction count half). 0.5 is chance, 1 is perfect."""
    p, t = np.asarray(predicted, float), np.asarray(truth, float)
    dt = np.sign(t[:, None] - t[None, :])
    dp = np.sign(p[:, None] - p[None, :])
    mask = np.triu(dt != 0, k=1)
    if not mask.any():
        return 0.5
    agree = (dp == dt)[mask].sum() + 0.5 * (dp == 0)[mask].sum()
    return float(agree / mask.sum())
