"""Training losses for generic regression (EMD) and personal fine-tuning (pairwise ranking).

Rules, following the paper (sections 3.2.2 and 3.3):

* A model predicts a probability mass function over the score bins 1..K (K = 10 for AVA) in the last
  dimension; its aesthetic score is the mean ``sum_i i * p_i``, so it lies on 1..K.
* ``emd_loss`` is eq. 1: the batch mean of ``((1/K) * sum_j |CDF_true(j) - CDF_pred(j)|^r)^(1/r)``.
  The root is taken with a "double where" instead of adding an eps, so identical distributions give
  exactly 0 and the gradient there is exactly 0 (not NaN/inf): the root is only evaluated on positive
  inputs, and a zero inner sum gets the subgradient 0.
* The ranking losses take the scores of the preferred images ``s_pref`` and of the other images
  ``s_other`` (same shape, one entry per pair) and return the mean over pairs of a per-pair loss of the
  difference ``d = s_pref - s_other``:

  - ``hinge``: ``max(0, margin - d)``, eq. 2 (margin 0.1 as in the paper). Its gradient is eq. 3: zero
    when ``s_other - s_pref + margin <= 0`` (boundary included) and ``grad s_other - grad s_pref``
    otherwise.
  - ``exp``: ``exp(-d)`` (RankBoost). Unbounded by design: a badly violated pair of scores on the
    1..10 scale costs at most ``exp(9)``, but arbitrary logits can overflow to ``inf``.
  - ``logistic``: ``log(1 + exp(-d))`` (RankNet), computed with ``softplus`` so it is finite with a
    finite gradient for any ``d``.

  An optional ``weight`` (one non-negative value per pair, e.g. lower for pairs inferred by
  transitivity) multiplies the per-pair losses before the mean, so all-ones weights equal no weights and
  a weight keeps its meaning whatever the batch composition. An empty batch gives a zero loss that is
  still connected to the graph.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from piaa.data.labels import mean_score
from piaa.registry import Registry

__all__ = [
    "RANK_LOSSES",
    "RankLoss",
    "emd_loss",
    "exp_rank_loss",
    "get_rank_loss",
    "hinge_rank_loss",
    "logistic_rank_loss",
    "score_from_distribution",
]

RankLoss = Callable[..., Tensor]


def score_from_distribution(p: Tensor) -> Tensor:
    """Mean score of 10-bin distributions (N x 10 -> N, on 1-10): the paper's scalar output."""
    return mean_score(p)


def emd_loss(p_true: Tensor, p_pred: Tensor, r: float = 2.0) -> Tensor:
    """Eq. 1; penalises mass moved far more than mass moved to a neighbouring bin.

    ``r`` must be >= 1 (below 1 it is not a norm and ``|x|^r`` has an infinite gradient at 0).
    No eps is added: the root uses a safe "double where" (module docstring), so the value is exact and
    the gradient at zero difference is 0 rather than NaN.
    All leading dimensions are batch dimensions and are averaged.
    """
    if p_true.shape != p_pred.shape:
        raise ValueError(f"shape mismatch: p_true {tuple(p_true.shape)} vs p_pred {tuple(p_pred.shape)}")
    if p_true.dim() == 0:
        raise ValueError("distributions need at least one dimension (the score bins)")
    if r < 1:
        raise ValueError(f"r must be >= 1, got {r}")
    diff = torch.cumsum(p_true, dim=-1) - torch.cumsum(p_pred, dim=-1)
    inner = diff.abs().pow(r).mean(dim=-1)  # mean over bins == (1/K) * sum
    positive = inner > 0
    # Double where: the root only ever sees positive values, so no inf/NaN leaks into the backward pass.
    safe = torch.where(positive, inner, torch.ones_like(inner))
    per_item = torch.where(positive, safe.pow(1.0 / r), torch.zeros_like(inner))
    return per_item.mean()


def _check_pairs(s_pref: Tensor, s_other: Tensor, weight: Tensor | None) -> None:
    if s_pref.shape != s_other.shape:
        raise ValueError(f"shape mismatch: s_pref {tuple(s_pref.shape)} vs s_other {tuple(s_other.shape)}")
    if weight is not None and weight.shape != s_pref.shape:
        raise ValueError(f"weight shape {tuple(weight.shape)} does not match scores {tuple(s_pref.shape)}")


def _reduce(per_pair: Tensor, weight: Tensor | None) -> Tensor:
    if weight is not None:
        per_pair = per_pair * weight
    if per_pair.numel() == 0:
        return per_pair.sum()  # 0, still attached to the graph
    return per_pair.mean()


def hinge_rank_loss(
    s_pref: Tensor, s_other: Tensor, margin: float = 0.1, weight: Tensor | None = None
) -> Tensor:
    """Eq. 2; only pairs ranked wrongly or within ``margin`` produce a gradient (eq. 3)."""
    _check_pairs(s_pref, s_other, weight)
    # relu, not clamp: relu's gradient at exactly 0 is 0, which is eq. 3's "<= 0" case.
    return _reduce(torch.relu(s_other - s_pref + margin), weight)


def exp_rank_loss(s_pref: Tensor, s_other: Tensor, weight: Tensor | None = None) -> Tensor:
    """RankBoost's exponential loss; keeps pushing satisfied pairs apart, hardest on violated ones."""
    _check_pairs(s_pref, s_other, weight)
    return _reduce(torch.exp(s_other - s_pref), weight)


def logistic_rank_loss(s_pref: Tensor, s_other: Tensor, weight: Tensor | None = None) -> Tensor:
    """RankNet's loss: a smooth hinge whose gradient stays bounded for badly violated pairs."""
    _check_pairs(s_pref, s_other, weight)
    return _reduce(F.softplus(s_other - s_pref), weight)


RANK_LOSSES: Registry[RankLoss] = Registry("rank loss")
"""Pairwise ranking losses by config name (``TrainConfig.rank_loss``)."""
RANK_LOSSES.register("hinge", hinge_rank_loss)
RANK_LOSSES.register("exp", exp_rank_loss)
RANK_LOSSES.register("logistic", logistic_rank_loss)


def get_rank_loss(name: str) -> RankLoss:
    """Look a ranking loss up by its config name, failing loudly on typos (:class:`UnknownNameError`)."""
    return RANK_LOSSES.get(name)
