"""How well a personal model knows its person, measured honestly: agreement on pairs it did not train on.

:func:`piaa.models.selection.fit_personal` picks among candidates by cross-validation over photos, so
the winner's cross-validated accuracy is biased upward: of several noisy estimates the largest was
kept. Here the whole procedure, selection included, is wrapped in an outer split (nested
cross-validation; Varma & Simon 2006, "Bias in error estimation when using cross-validation for model
selection"): the judged photos are split into :data:`OUTER_FOLDS` folds; for each fold the personal
model is built (selection and all) from the generic model using only the judgements among the other
photos, and the judgements touching the fold are then asked of it and of the generic model. Every
stated judgement is asked exactly once (in the first fold it touches), so ``pairs`` counts distinct
judgements. Nothing but the person's own judgements is used; the split is seeded, so the same store
and settings give the same figure (the page and ``piaa personalize`` show the same).

The learning curve repeats this on the first 20, 40, ... judgements (in the order they were stated;
at most :data:`MAX_CURVE_POINTS` points, spaced by multiples of 20): whether more clicks are still paying.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field

import torch

from piaa.models.head import AestheticHead
from piaa.models.selection import _scores, _training_pairs, fit_personal
from piaa.models.train import FeatureSource, TrainConfig, pool_features

__all__ = ["CURVE_STEP", "MIN_PAIRS", "OUTER_FOLDS", "Agreement", "held_out_agreement", "wilson"]

OUTER_FOLDS = 5
MIN_PAIRS = 10  # below this, a held-out figure is noise: none is given
CURVE_STEP = 20  # judgements between the learning curve's points (a multiple of it past 120)
MAX_CURVE_POINTS = 6  # each point is a nested cross-validation of its own
SEED_OFFSET = 7  # the outer split's seed, apart from the inner one's (selection uses cfg.seed + 2)


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) for a proportion ``p`` in [0, 1] observed over ``n`` trials;
    95 % for the default ``z``. Returns ``(low, high)`` within [0, 1]; ``(0, 1)`` for ``n == 0``."""
    if n <= 0:
        return 0.0, 1.0
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Agreement:
    """Held-out agreement with the person (fractions in [0, 1]; ties count half) of the personal model
    and of the generic model it started from, over ``pairs`` stated judgements, with 95 % Wilson
    intervals; ``curve`` is ``[{"judgements", "personal", "generic", "pairs"}]``."""

    personal: float
    generic: float
    pairs: int
    folds: int
    personal_interval: tuple[float, float] = (0.0, 1.0)
    generic_interval: tuple[float, float] = (0.0, 1.0)
    curve: list[dict[str, float]] = field(default_factory=list)

    def describe(self) -> str:
        """The sentence the page and ``piaa personalize`` show."""
        lo, hi = self.personal_interval
        return (
            f"on {self.pairs} pairs it did not train on, your model agrees with you {self.personal:.0%} "
            f"of the time (95% interval {lo:.0%}-{hi:.0%}); the generic model {self.generic:.0%}"
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("personal", "generic"):
            d[key] = round(d[key], 4)
            d[f"{key}_interval"] = [round(x, 4) for x in d[f"{key}_interval"]]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Agreement:
        """The inverse of :meth:`to_dict` (as stored in a profile's metadata)."""
        d = dict(d)
        for key in ("personal_interval", "generic_interval"):
            d[key] = tuple(d.get(key, (0.0, 1.0)))
        return cls(**d)


def _right(scores: torch.Tensor) -> torch.Tensor:
    s = scores.view(-1, 2)
    return (s[:, 0] > s[:, 1]).float() + 0.5 * (s[:, 0] == s[:, 1]).float()


def _nested(
    generic: AestheticHead, source: FeatureSource, stated: torch.Tensor, cfg: TrainConfig
) -> tuple[float, float, int, int] | None:
    """(personal, generic, pairs, folds) over the outer folds of ``stated`` (S x 2 source rows)."""
    photos = torch.unique(stated)
    folds = min(OUTER_FOLDS, len(photos))
    fold_of = torch.full((int(stated.max()) + 1,), -1, dtype=torch.long)
    order = torch.randperm(len(photos), generator=torch.Generator().manual_seed(cfg.seed + SEED_OFFSET))
    fold_of[photos[order]] = torch.arange(len(photos)) % folds
    owner = fold_of[stated].min(dim=1).values  # each judgement is asked once, in its first fold
    ids = torch.unique(stated)
    base = copy.deepcopy(generic)
    base_pooled = pool_features(base, source, ids)
    position = {int(i): k for k, i in enumerate(ids)}
    personal_right: list[torch.Tensor] = []
    generic_right: list[torch.Tensor] = []
    for f in range(folds):
        touches = (fold_of[stated] == f).any(dim=1)
        asked, kept = stated[owner == f], stated[~touches]
        if len(asked) == 0 or len(kept) == 0:
            continue
        train = _training_pairs(kept, stated[touches])
        head = copy.deepcopy(generic)
        fit_personal(head, source, train, len(kept), cfg)
        flat = asked.reshape(-1)
        pooled = pool_features(head, source, flat)
        personal_right.append(_right(_scores(head, pooled)))
        generic_right.append(_right(_scores(base, base_pooled[[position[int(i)] for i in flat]])))
    if not personal_right:
        return None
    p, g = torch.cat(personal_right), torch.cat(generic_right)
    return float(p.mean()), float(g.mean()), len(p), folds


def held_out_agreement(
    generic: AestheticHead,
    source: FeatureSource,
    stated: torch.Tensor,
    cfg: TrainConfig,
    *,
    curve: bool = True,
) -> Agreement | None:
    """Nested cross-validated agreement (module docstring) of the personal model built by
    :func:`~piaa.models.selection.fit_personal` from ``generic`` (left unchanged) on the person's
    ``stated`` judgements (S x 2 rows of ``source``, preferred first, in the order stated; no inferred
    pairs: they are re-derived inside each split). ``None`` below :data:`MIN_PAIRS` judgements.
    Deterministic for a given ``cfg.seed``."""
    stated = torch.as_tensor(stated, dtype=torch.long).reshape(-1, 2)
    if len(stated) < MIN_PAIRS:
        return None
    whole = _nested(generic, source, stated, cfg)
    if whole is None:
        return None
    personal, gen, pairs, folds = whole
    result = Agreement(personal, gen, pairs, folds, wilson(personal, pairs), wilson(gen, pairs))
    if curve:
        step = CURVE_STEP * math.ceil(len(stated) / (CURVE_STEP * MAX_CURVE_POINTS))  # a bounded cost
        sizes = list(range(step, len(stated), step)) + [len(stated)]
        for n in sizes:
            point = whole if n == len(stated) else _nested(generic, source, stated[:n], cfg)
            if point is not None:
                result.curve.append(
                    {"judgements": n, "personal": round(point[0], 4), "generic": round(point[1], 4),
                     "pairs": point[2]}
                )  # fmt: skip
    return result
