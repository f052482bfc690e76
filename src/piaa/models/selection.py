"""Personalization that pays and never does harm: how to move from the generic model, chosen per person.

The paper fine-tunes the generic model on a person's pairs for a fixed schedule. With few or noisy
pairs that can rank unseen photos worse than the generic model did, and with many it stops short:
a few hundred Adam steps at a rate that is safe for ten photos barely move the fully connected layer.
Here every person gets the best of a few candidates, judged on their own pairs:

- ``generic``: the generic model, unchanged;
- ``fine-tune a``: the paper's fine-tune pulled back toward the generic model,
  ``theta = theta_generic + a * (theta_personal - theta_generic)``, ``a`` in {1/4, 1/2, 3/4, 1};
- ``fit l``: the fully connected layer fitted to the pairs to convergence (logistic ranking loss,
  L-BFGS) with an L2 pull of strength ``l`` toward the generic weights
  (:func:`~piaa.models.train.fit_pooled_convex`).

The choice is made by cross-validation over photos: the judged photos are split into folds; for each
fold every candidate is trained on the pairs among the other photos (enriched by transitivity, never
with a pair that restates a held-out one) and scored by how many held-out pairs it orders as the person
did. A candidate replaces the generic model only when it beats it by a sign test on the held-out pairs
the two order differently; among those the most accurate wins, ties going to the earlier one (generic,
then the fits from the strongest pull, then the fine-tunes from the smallest ``a``). The test ratings
are never seen.

The fits are candidates only from 20 judged photos on: with 10 photos the held-out folds hold two
photos each, too few to judge a fit of a thousand weights, and on simulated persons they chose fits that
ranked the unseen photos worse than the generic model (the README's evaluation).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from piaa.errors import SelectionError
from piaa.models.head import AestheticHead
from piaa.models.losses import score_from_distribution
from piaa.models.train import (
    FeatureSource,
    TrainConfig,
    fit_pooled,
    fit_pooled_convex,
    fit_ranking,
    fit_stats_scaling,
    last_layers,
    pool_features,
)
from piaa.preferences import enrich_transitive
from piaa.settings import QUIET, RunSettings

# The selection's settings are TrainConfig fields (``--set`` reaches them, profiles record them); these
# names are their defaults, for code that asks without a config.
ALPHAS = (0.0, *TrainConfig.alphas)  # pulls of the paper's fine-tune toward the generic model
LAMBDAS = TrainConfig.lambdas  # L2 pulls of the converged fit, strongest first
MIN_STATED = TrainConfig.min_stated  # below this, held-out folds say nothing: the paper's fine-tune, as is
MIN_FIT_PHOTOS = TrainConfig.min_fit_photos  # below this many judged photos the fits are not candidates
MAX_FOLDS = TrainConfig.max_folds
Z = TrainConfig.z  # how sure the held-out pairs must be before the model moves from the generic one (sign
# test; stricter than one comparison needs, because several candidates compete for the move)
GENERIC = "generic"
KINDS = ("generic", "fine-tune", "fit")


@dataclass(frozen=True)
class Candidate:
    """One way to move from the generic model: ``kind`` "generic", "fine-tune" (``strength`` = alpha, the
    share of the fine-tune kept) or "fit" (``strength`` = its L2 pull). ``str()`` is its name in reports
    and profiles ("generic", "fine-tune 0.5", "fit 0.01"); :meth:`parse` reads one back."""

    kind: str
    strength: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SelectionError(f"candidate {self.kind!r}: the kind is one of {', '.join(KINDS)}")

    def __str__(self) -> str:
        return GENERIC if self.kind == GENERIC else f"{self.kind} {self.strength:g}"

    @classmethod
    def parse(cls, name: str | Candidate) -> Candidate:
        """``"fit 0.01"`` -> ``Candidate("fit", 0.01)``; raises :class:`SelectionError` for other text."""
        if isinstance(name, Candidate):
            return name
        kind, _, value = str(name).strip().partition(" ")
        try:
            return cls(kind) if kind == GENERIC and not value else cls(kind, float(value))
        except ValueError:
            raise SelectionError(f"candidate {name!r}: expected generic, 'fine-tune A' or 'fit L'") from None


def candidates(photos: int = MIN_FIT_PHOTOS, cfg: TrainConfig | None = None) -> list[str]:
    """The candidates' names for a person who judged ``photos`` photos, in order of preference on a tie:
    the generic model first; the fits only from ``cfg.min_fit_photos`` judged photos on."""
    return [str(c) for c in candidate_list(photos, cfg)]


def candidate_list(photos: int = MIN_FIT_PHOTOS, cfg: TrainConfig | None = None) -> list[Candidate]:
    """:func:`candidates` as :class:`Candidate` values (``cfg``: the settings, default TrainConfig's)."""
    cfg = cfg or TrainConfig()
    fits = [Candidate("fit", lam) for lam in cfg.lambdas] if photos >= cfg.min_fit_photos else []
    return [Candidate(GENERIC), *fits, *(Candidate("fine-tune", a) for a in cfg.alphas)]


@dataclass
class Selection:
    """What the cross-validation chose: the candidate ``choice`` (module docstring), ``alpha`` how far
    it moved (0 = the generic model, 1 = the whole fine-tune or fit), and the held-out pairwise accuracy
    (in [0, 1]) of every candidate; ``folds`` 0 when there was no choice to make (then the paper's
    fine-tune)."""

    alpha: float = 1.0
    cv_accuracy: dict[str, float] = field(default_factory=dict)
    folds: int = 0  # photo folds of the cross-validation (0: no choice was made)
    history: list[float] = field(default_factory=list)  # loss of the final training (per epoch or fit)
    choice: str = "fine-tune 1"

    @property
    def candidate(self) -> Candidate:
        """:attr:`choice` as a :class:`Candidate`."""
        return Candidate.parse(self.choice)

    @property
    def kind(self) -> str:
        """``generic``, ``fine-tune`` or ``fit``."""
        return self.candidate.kind

    def describe(self) -> str:
        """One line for people: what was chosen and how the candidates did on held-out pairs."""
        if self.choice == GENERIC:
            moved = "kept the generic model"
        elif self.kind == "fit":
            moved = f"fitted the pairs to convergence (L2 pull {self.candidate.strength:g})"
        else:
            moved = f"moved {self.alpha:.0%} of the way to the paper's fine-tune"
        cv = ", ".join(f"{c}: {v:.0%}" for c, v in self.cv_accuracy.items())
        return f"{moved} (held-out accuracy {cv})"

    def to_dict(self) -> dict:
        return {
            "choice": self.choice,
            "alpha": self.alpha,
            "folds": self.folds,
            "cv_accuracy": {c: round(v, 4) for c, v in self.cv_accuracy.items()},
        }


def fit_personal(
    head: AestheticHead,
    source: FeatureSource,
    pairs: torch.Tensor,
    stated: int,
    cfg: TrainConfig,
    *,
    run: RunSettings = QUIET,
) -> Selection:
    """Personalize ``head`` in place on ``pairs`` (P x 2 source rows, preferred first: the ``stated``
    pairs, then the ones inferred from them) with the candidate the person's held-out pairs choose
    (module docstring). Falls back to :func:`~piaa.models.train.fit_ranking` unchanged when
    ``cfg.select`` is off, the whole head is trained, or fewer than 6 pairs were stated."""
    pairs = torch.as_tensor(pairs, dtype=torch.long).reshape(-1, 2)
    if not cfg.select or cfg.rank_scope != "last" or stated < cfg.min_stated:
        return Selection(history=fit_ranking(head, source, pairs, cfg, run=run))
    fit_stats_scaling(head, source, torch.unique(pairs))  # only without a generic model
    ids, rows = torch.unique(pairs, return_inverse=True)
    pooled = pool_features(head, source, ids)
    rows = rows.view(-1, 2)
    start = copy.deepcopy(head.state_dict())
    stated_rows = rows[:stated]
    photos = torch.unique(stated_rows)
    folds = min(cfg.max_folds, len(photos))
    fold_of = torch.empty(int(rows.max()) + 1, dtype=torch.long)
    fold_of[photos[torch.randperm(len(photos), generator=torch.Generator().manual_seed(cfg.seed + 2))]] = (
        torch.arange(len(photos)) % folds
    )
    right: dict[str, list[torch.Tensor]] = {c: [] for c in candidates(len(photos), cfg)}
    for f in range(folds):
        touches = (fold_of[stated_rows] == f).any(dim=1)
        held, kept = stated_rows[touches], stated_rows[~touches]
        if len(held) == 0 or len(kept) == 0:
            continue
        train = _training_pairs(kept, held)
        for name, scores in _candidate_scores(head, start, pooled, train, held, cfg, fits=len(photos)):
            s = scores.view(-1, 2)
            right[name].append((s[:, 0] > s[:, 1]).float() + 0.5 * (s[:, 0] == s[:, 1]).float())
    best, accuracy = _choose({c: torch.cat(v) if v else torch.zeros(0) for c, v in right.items()}, cfg.z)
    head.load_state_dict(start)
    history, alpha = _train(head, start, pooled, rows, best, cfg, run)
    head.eval()
    return Selection(alpha, accuracy, folds, history, best)


def _train(
    head: AestheticHead,
    start: dict[str, torch.Tensor],
    pooled: torch.Tensor,
    rows: torch.Tensor,
    choice: str,
    cfg: TrainConfig,
    run: RunSettings,
) -> tuple[list[float], float]:
    """Train ``head`` (at ``start``) on ``rows`` as candidate ``choice`` says: (loss history, alpha)."""
    chosen = Candidate.parse(choice)
    if chosen.kind == GENERIC:
        return [], 0.0
    if chosen.kind == "fit":
        return fit_pooled_convex(head, pooled, rows, chosen.strength, spread=cfg.spread), 1.0
    history = fit_pooled(head, pooled, rows, cfg, run=run)
    _interpolate(head, start, chosen.strength)
    return history, chosen.strength


def _choose(right: dict[str, torch.Tensor], z: float = Z) -> tuple[str, dict[str, float]]:
    """The candidate to use, from its held-out pairs (``right``: 1 right, 0 wrong, 0.5 tied; candidates
    in order of preference). A candidate is eligible when it beats the generic model by a sign test on
    the pairs the two order differently (wins - losses > z * sqrt(wins + losses)): chance agreement
    with a few pairs is not a reason to move. The most accurate eligible candidate wins; ties keep the
    earlier one (the generic model first)."""
    accuracy = {c: float(r.mean()) if len(r) else 0.5 for c, r in right.items()}
    base = right[GENERIC]
    best = GENERIC
    for name in list(right)[1:]:
        d = right[name] - base
        wins, losses = float(d.clamp(min=0).sum()), float((-d).clamp(min=0).sum())
        if wins - losses > z * (wins + losses) ** 0.5 and accuracy[name] > accuracy[best]:
            best = name
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
def _scores(head: AestheticHead, pooled: torch.Tensor) -> torch.Tensor:
    head.eval()
    return score_from_distribution(head.classify(pooled).softmax(dim=-1))


def _candidate_scores(
    head: AestheticHead,
    start: dict[str, torch.Tensor],
    pooled: torch.Tensor,
    train: torch.Tensor,
    held: torch.Tensor,
    cfg: TrainConfig,
    *,
    fits: int,
):
    """(candidate, scores of the flattened ``held`` pairs) for every candidate of ``candidates(fits)``
    trained on ``train``; ``head`` is left at ``start``."""
    flat = pooled[held.reshape(-1)]
    head.load_state_dict(start)
    yield GENERIC, _scores(head, flat)
    with torch.enable_grad():
        fit_pooled(head, pooled, train, cfg)
    trained = copy.deepcopy(head.state_dict())
    for alpha in cfg.alphas:
        head.load_state_dict(trained)
        _interpolate(head, start, alpha)
        yield str(Candidate("fine-tune", alpha)), _scores(head, flat)
    for lam in cfg.lambdas if fits >= cfg.min_fit_photos else ():
        head.load_state_dict(start)
        with torch.enable_grad():
            fit_pooled_convex(head, pooled, train, lam, spread=cfg.spread)
        yield str(Candidate("fit", lam)), _scores(head, flat)
    head.load_state_dict(start)
