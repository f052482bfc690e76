"""A linear Bradley–Terry model of one person's taste: cheap enough to refit after every few clicks.

P(a preferred to b) = sigmoid(w · (x_a − x_b)) with an L2 penalty on w. It is logistic regression
without intercept on feature differences, so scikit-learn fits it; the Laplace posterior covariance of
w (what the active sampler needs to know where the model is unsure) comes from the Hessian at the fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from piaa.preferences.rules import Pair, enrich_transitive

__all__ = ["LinearRanker", "fit_ranker", "sigmoid"]


def sigmoid(m: np.ndarray) -> np.ndarray:
    """Logistic function, overflow-free for any margin."""
    return 0.5 * (1.0 + np.tanh(0.5 * m))


@dataclass
class LinearRanker:
    """Bradley–Terry on features, L2-regularised with strength ``l2``; ``w`` has shape ``(D,)``.

    ``cov`` ``(D, D)`` is the Laplace posterior covariance of ``w``: the inverse Hessian of the
    penalised loss at ``w``.
    """

    l2: float = 1.0
    w: np.ndarray | None = None
    cov: np.ndarray | None = None
    pairs: int = 0

    def fit(self, x: np.ndarray, pairs: np.ndarray) -> LinearRanker:
        """Fit on ``x`` ``(N, D)`` and ``pairs`` ``(k, 2)``, rows of (preferred, other) indices into ``x``.

        Minimises ``sum log(1 + exp(-w·d)) + l2/2 |w|²`` over the differences ``d``. scikit-learn needs
        two classes, so each ``d`` is given as ``+d`` (class 1) and ``−d`` (class 0): the data term
        doubles, hence ``C = 1 / (2 l2)``. No pairs: ``w = 0``, the prior.
        """
        x = np.asarray(x, np.float64)
        pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
        d = x[pairs[:, 0]] - x[pairs[:, 1]]
        w = np.zeros(x.shape[1])
        if len(d) and np.any(d):
            from sklearn.linear_model import LogisticRegression  # a second to import: only when fitting

            c = 1.0 / (2.0 * self.l2)
            model = LogisticRegression(
                C=c, fit_intercept=False, solver="newton-cholesky", tol=1e-10, max_iter=200
            )
            model.fit(np.vstack([d, -d]), np.r_[np.ones(len(d)), np.zeros(len(d))])
            w = model.coef_[0].astype(np.float64)
        p = sigmoid(d @ w)
        hessian = self.l2 * np.eye(x.shape[1]) + (d * (p * (1 - p))[:, None]).T @ d
        self.w, self.cov, self.pairs = w, np.linalg.inv(hessian), len(d)
        return self

    def scores(self, x: np.ndarray) -> np.ndarray:
        """``(N,)`` scores for rows of ``x``: higher is preferred; only differences mean anything.
        Raises ``ValueError`` before ``fit``."""
        if self.w is None:
            raise ValueError("LinearRanker is not fitted")
        return np.asarray(x, np.float64) @ self.w


def fit_ranker(x: np.ndarray, pairs: Sequence[Pair], index: dict[str, int], l2: float = 1.0) -> LinearRanker:
    """Fit on stated pairs plus the one-step transitive ones (section 3.1; what personalization trains on
    too). ``index`` maps names to rows of ``x``; pairs naming other photos are ignored."""
    known = [p for p in pairs if p[0] in index and p[1] in index]
    rows = np.array([(index[a], index[b]) for a, b in enrich_transitive(known)], np.int64).reshape(-1, 2)
    return LinearRanker(l2=l2).fit(x, rows)
