"""Personalization that never does harm: how far to move from the generic model, chosen per person.

The paper fine-tunes the generic model on a person's pairs for a fixed schedule. With few or noisy
pairs that can rank unseen photos worse than the generic model did. Here the fine-tuned layers are
pulled back toward the generic ones, ``theta = theta_generic + alpha * (theta_personal - theta_generic)``,
and ``alpha`` (0 = the generic model, 1 = the paper's fine-tune) is chosen from the pairs alone, by
cross-validation: the stated pairs are split into folds; for each fold the model is fine-tuned on the
other folds (enriched by transitivity, never with a pair that restates a held-out one) and every
``alpha`` is scored by how many held-out pairs it orders as the person did. Ties go to the smaller
``alpha``: the generic model unless the pairs show that moving helps. The test ratings are never seen.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from piaa.models.head import AestheticHead
from piaa.models.losses import score_from_distribution
from piaa.models.train import (
    FeatureSource,
    TrainConfig,
    fit_pooled,
    fit_ranking,
    fit_stats_scaling,
    last_layers,
    pool_features,
)
from piaa.preferences import enrich_transitive

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
MIN_STATED = 6  # below this, held-out folds say nothing: the paper's fine-tune, as is
MAX_FOLDS = 5
Z = 1.0  # how sure the held-out pairs must be before the model moves from the generic one (sign test)


@dataclass
class Selection:
    """What the cross-validation chose: ``alpha`` in [0, 1] and the held-out pairwise accuracy (in
    [0, 1]) of every candidate; ``folds`` 0 when there was no choice to make."""

    alpha: float = 1.0
    cv_accuracy: dict[float, float] = field(default_factory=dict)
    folds: int = 0  # photo folds of the cross-validation (0: no choice was made)
    history: list[float] = field(default_factory=list)  # ranking loss per epoch of the final fine-tune

    def to_dict(self) -> dict:
        return {
            "alpha": self.alpha,
            "folds": self.folds,
            "cv_accuracy": {str(a): round(v, 4) for a, v in self.cv_accuracy.items()},
        }


def fit_personal(
    head: AestheticHead,
    source: FeatureSource,
    pairs: torch.Tensor,
    stated: int,
    cfg: TrainConfig,
    *,
    progress: bool = False,
) -> Selection:
    """Fine-tune ``head`` in place on ``pairs`` (P x 2 source rows, preferred first: the ``stated``
    pairs, then the ones inferred from them) and pull it toward where it started as the pairs justify
    (module docstring). Falls back to :func:`~piaa.models.train.fit_ranking` unchanged when
    ``cfg.select`` is off, the whole head is trained, or fewer than 6 pairs were stated."""
    pairs = torch.as_tensor(pairs, dtype=torch.long).reshape(-1, 2)
    if not cfg.select or cfg.rank_scope != "last" or stated < MIN_STATED:
        return Selection(history=fit_ranking(head, source, pairs, cfg, progress=progress))
    fit_stats_scaling(head, source, torch.unique(pairs))  # only without a generic model
    ids, rows = torch.unique(pairs, return_inverse=True)
    pooled = pool_features(head, source, ids)
    rows = rows.view(-1, 2)
    start = copy.deepcopy(head.state_dict())
    stated_rows = rows[:stated]
    photos = torch.unique(stated_rows)
    folds = min(MAX_FOLDS, len(photos))
    fold_of = torch.empty(int(rows.max()) + 1, dtype=torch.long)
    fold_of[photos[torch.randperm(len(photos), generator=torch.Generator().manual_seed(cfg.seed + 2))]] = (
        torch.arange(len(photos)) % folds
    )
    right: dict[float, list[torch.Tensor]] = {a: [] for a in ALPHAS}
    for f in range(folds):
        touches = (fold_of[stated_rows] == f).any(dim=1)
        held, kept = stated_rows[touches], stated_rows[~touches]
        if len(held) == 0 or len(kept) == 0:
            continue
        head.load_state_dict(start)
        fit_pooled(head, pooled, _training_pairs(kept, held), cfg)
        for alpha, scores in _interpolated_scores(head, start, pooled, held):
            s = scores.view(-1, 2)
            right[alpha].append((s[:, 0] > s[:, 1]).float() + 0.5 * (s[:, 0] == s[:, 1]).float())
    best, accuracy = _choose({a: torch.cat(v) if v else torch.zeros(0) for a, v in right.items()})
    head.load_state_dict(start)
    history = fit_pooled(head, pooled, rows, cfg, progress=progress)
    _interpolate(head, start, best)
    head.eval()
    return Selection(best, accuracy, folds, history)


def _choose(right: dict[float, torch.Tensor]) -> tuple[float, dict[float, float]]:
    """The ``alpha`` whose held-out pairs are most often right, among those that beat the generic model
    (alpha 0) by a sign test on the pairs they order differently (wins - losses > Z * sqrt(wins +
    losses)): chance agreement with a few pairs is not a reason to move."""
    accuracy = {a: float(r.mean()) if len(r) else 0.5 for a, r in right.items()}
    base = right[0.0]
    best = 0.0
    for alpha in ALPHAS[1:]:
        d = right[alpha] - base
        wins, losses = float(d.clamp(min=0).sum()), float((-d).clamp(min=0).sum())
        if wins - losses > Z * (wins + losses) ** 0.5 and accuracy[alpha] > accuracy[best]:
            best = alpha
    return best, accuracy


def _training_pairs(stated: torch.Tensor, held: torch.Tensor) -> torch.Tensor:
    """``stated`` enriched by one-step transitivity, minus any pair that restates a held-out one."""
    hidden = {frozenset((int(a), int(b))) for a, b in held.tolist()}
    enriched = enrich_transitive([(str(a), str(b)) for a, b in stated.tolist()])
    kept = [(int(a), int(b)) for a, b in enriched if frozenset((int(a), int(b))) not in hidden]
    return torch.tensor(kept, dtype=torch.long).reshape(-1, 2)


def _interpolate(head: AestheticHead, start: dict[str, torch.Tensor], alpha: float) -> None:
    """Move the trained layers to ``start + alpha * (trained - start)``."""
    names = {id(p): n for n, p in head.named_parameters()}
    with torch.no_grad():
        for p in last_layers(head):
            s = start[names[id(p)]]
            p.copy_(s + alpha * (p - s))


@torch.no_grad()
def _interpolated_scores(
    head: AestheticHead, start: dict[str, torch.Tensor], pooled: torch.Tensor, pairs: torch.Tensor
):
    """(alpha, scores of the flattened ``pairs``) for every alpha, from one fine-tuned ``head``."""
    head.eval()
    trained = copy.deepcopy(head.state_dict())
    for alpha in ALPHAS:
        head.load_state_dict(trained)
        _interpolate(head, start, alpha)
        yield alpha, score_from_distribution(head.classify(pooled[pairs.reshape(-1)]).softmax(dim=-1))
    head.load_state_dict(trained)
