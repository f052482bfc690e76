"""Active pair choice: ask the person about the pairs that teach a cheap model of their taste the most.

The paper samples pairs at random. Here, once a few judgements exist, a linear Bradley–Terry model
(:mod:`piaa.sampling.bradley_terry`, on the features of :mod:`piaa.sampling.features`) is fitted to
them, and the next pairs are those with the largest expected information gain about its weights: pairs
the model cannot order yet (probability near 0.5) *and* whose difference points where the model is still
unsure (posterior variance, from the Laplace approximation). Pure "closest scores" picks near-duplicates
that teach little; the variance term fixes that. Within one retraining round the posterior is updated as
if each chosen pair were answered, so consecutive pairs ask about different things. Pairs already
stated, or implied by one-step transitivity (:func:`piaa.preferences.infer_transitive`), are never
proposed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from piaa.errors import UsageError
from piaa.preferences.rules import Pair, infer_transitive
from piaa.sampling.base import PairSampler, register_sampler
from piaa.sampling.bradley_terry import LinearRanker, fit_ranker, sigmoid

__all__ = ["CRITERIA", "ActiveSampler"]

CRITERIA = ("information", "uncertainty")


@dataclass
class _Model:
    ranker: LinearRanker
    cov: np.ndarray  # updated as pairs are proposed (batch diversity)
    judgements: int  # stated pairs it was trained on


@register_sampler("active")
class ActiveSampler(PairSampler):
    """Proposes the most informative unjudged pair; random until ``warmup`` judgements are in.

    ``update(pairs)`` is called with the store's effective pairs after every change; the model is refit
    every ``retrain_every`` judgements, in a background thread when ``background`` (a web app must not
    block on it), else inline (deterministic for a seed: same updates, same proposals). ``features``
    ``(len(items), D)`` may arrive later through ``set_features`` (embedding takes a while); until then
    the sampler draws at random. ``criterion`` is ``"information"`` (expected information gain) or
    ``"uncertainty"`` (probability nearest 0.5); anything else raises ``ValueError``. Thread-safe.
    """

    needs_features = True

    def __init__(
        self,
        items: Sequence[str],
        features: np.ndarray | None = None,
        *,
        seed: int | None = 0,
        seen: Iterable[Pair] = (),
        warmup: int = 10,
        retrain_every: int = 10,
        candidates: int = 2000,
        l2: float = 1.0,
        criterion: str = "information",
        background: bool = False,
    ) -> None:
        if criterion not in CRITERIA:
            raise UsageError(f"unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
        self.warmup, self.retrain_every, self.candidates = warmup, retrain_every, candidates
        self.l2, self.criterion = l2, criterion
        self.features: np.ndarray | None = None
        self._known: set[int] = set()  # stated or inferred by transitivity
        self._pairs: list[Pair] = []
        self._model: _Model | None = None
        self._training = False
        self._dirty = False
        super().__init__(items, seed=seed, seen=seen, background=background)
        self._np_rng = np.random.default_rng(self._rng.randrange(2**32))
        if features is not None:
            self._check_features(features)
            self.features = np.asarray(features, np.float64)

    # -- bookkeeping --------------------------------------------------------------------------------

    def _blocked(self) -> set[int]:
        return self._used | self._known

    @property
    def model_judgements(self) -> int | None:
        model = self._model
        return None if model is None else model.judgements

    @property
    def training(self) -> bool:
        return self._training

    def status(self) -> dict[str, Any]:
        return {**super().status(), "model_judgements": self.model_judgements}

    def _check_features(self, features: np.ndarray) -> None:
        if len(features) != len(self.items):
            raise ValueError(f"features have {len(features)} rows for {len(self.items)} items")

    def set_features(self, features: np.ndarray) -> None:
        """Provide the design matrix (rows aligned with ``items``) and train if enough pairs are in."""
        self._check_features(features)
        with self._lock:
            self.features = np.asarray(features, np.float64)
        self._maybe_retrain()

    def update(self, pairs: Sequence[Pair]) -> None:
        """The store's effective pairs changed: refresh what is known, retrain when due."""
        known = self.in_album(pairs)
        keys = self.known_keys(known) | self.known_keys(infer_transitive(known))
        with self._lock:
            self._pairs, self._known = known, keys
        self._maybe_retrain()

    # -- training ------------------------------------------------------------------------------------

    def _due(self) -> bool:
        n = len(self._pairs)
        if self.features is None or n < self.warmup:
            return False
        model = self._model
        return model is None or abs(n - model.judgements) >= self.retrain_every

    def _maybe_retrain(self) -> None:
        with self._lock:
            if not self._due():
                return
            if self._training:
                self._dirty = True
                return
            self._training = True
            pairs, features = list(self._pairs), self.features
        if self.background:
            threading.Thread(target=self._train, args=(features, pairs), daemon=True).start()
        else:
            self._train(features, pairs)

    def _train(self, features: np.ndarray, pairs: list[Pair]) -> None:
        try:
            ranker = fit_ranker(features, pairs, self._index, self.l2)
            assert ranker.cov is not None
            with self._lock:
                self._model = _Model(ranker, ranker.cov.copy(), len(pairs))
        finally:
            with self._lock:
                self._training = False
                again, self._dirty = self._dirty, False
        if again:
            self._maybe_retrain()

    # -- proposing -----------------------------------------------------------------------------------

    def _choose(self, blocked: set[int]) -> tuple[int, int]:
        model = self._model
        if model is None or self.features is None:
            return self._random_pair(blocked)
        return self._oriented(self._informative_key(blocked, model))

    def _candidate_keys(self, blocked: set[int]) -> np.ndarray:
        n = len(self.items)
        if self._total - len(blocked) <= self.candidates:
            return np.array(self._open_keys(blocked), np.int64)
        ij = self._np_rng.integers(0, n, size=(self.candidates, 2))
        ij = ij[ij[:, 0] != ij[:, 1]]
        keys = np.unique(ij.min(axis=1) * n + ij.max(axis=1))
        keys = keys[~np.isin(keys, np.fromiter(blocked, np.int64, len(blocked)))]
        return keys if len(keys) else np.array(self._open_keys(blocked), np.int64)

    def _informative_key(self, blocked: set[int], model: _Model) -> int:
        """Maximise the expected information gain 1/2 log(1 + p(1-p) d'Σd) (or, for the "uncertainty"
        criterion, take the probability nearest 0.5), then update Σ as if the pair were answered, so the
        next proposal looks elsewhere."""
        assert self.features is not None and model.ranker.w is not None
        keys = self._candidate_keys(blocked)
        i, j = np.divmod(keys, len(self.items))
        d = self.features[i] - self.features[j]
        p = sigmoid(d @ model.ranker.w)
        var = ((d @ model.cov) * d).sum(axis=1)
        gain = np.log1p(p * (1 - p) * var) if self.criterion == "information" else -np.abs(p - 0.5)
        best = int(np.argmax(gain))
        q, dv = p[best] * (1 - p[best]), d[best]
        sd = model.cov @ dv
        model.cov = model.cov - np.outer(sd, sd) * (q / (1.0 + q * dv @ sd))
        return int(keys[best])

    def scores(self) -> np.ndarray | None:
        """The current model's score per item (for ranking without a reference), if there is a model."""
        model = self._model
        if model is None or self.features is None:
            return None
        return model.ranker.scores(self.features)
