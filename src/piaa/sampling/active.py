"""Active pair choice: ask the person about the pairs that teach a cheap model of their taste the most.

The paper samples pairs at random. Here, once a few judgements exist, a linear Bradley–Terry model
(logistic regression on feature differences) is fitted to them, and the next pairs are those with the
largest expected information gain about its weights: pairs the model cannot order yet (probability near
0.5) *and* whose difference points where the model is still unsure (posterior variance, from the
Laplace approximation). Pure "closest scores" picks near-duplicates that teach little; the variance term
fixes that. Within one retraining round the posterior is updated as if each chosen pair were answered,
so consecutive pairs ask about different things. Pairs already stated, or implied by one-step
transitivity (:func:`piaa.preferences.infer_transitive`), are never proposed.

Features: the pooled embedding alone barely sees exposure, colour or contrast (what people's taste is
often about), so each photo is described by the channel means and standard deviations of the mid-level
map Z1 ("style") and by the embedding ("content"), each PCA-whitened, content down-weighted.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from piaa.backbones import Backbone, FeatureMaps
from piaa.data.images import FailureLog
from piaa.preferences import Pair, PairSampler, enrich_transitive, infer_transitive

__all__ = [
    "CRITERIA",
    "STRATEGIES",
    "ActiveSampler",
    "LinearRanker",
    "album_features",
    "design_matrix",
    "fit_ranker",
    "make_sampler",
    "photo_descriptors",
]

STRATEGIES = ("random", "active")
CRITERIA = ("information", "uncertainty")
STYLE_DIMS = 32
CONTENT_DIMS = 16
CONTENT_WEIGHT = 0.5


# ------------------------------------------------------------------------------------------ features


def photo_descriptors(maps: FeatureMaps) -> tuple[np.ndarray, np.ndarray]:
    """(style, content) rows for a batch: Z1 channel means and stds, and the L2-normalised embedding."""
    z1 = maps.z1.float().numpy()
    style = np.concatenate([z1.mean(axis=(2, 3)), z1.std(axis=(2, 3))], axis=1)
    emb = maps.embedding.float().numpy()
    content = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return style.astype(np.float32), content.astype(np.float32)


def _whiten(block: np.ndarray, dims: int) -> np.ndarray:
    """Centre, project on the top principal components, scale each to unit variance."""
    x = block.astype(np.float64) - block.mean(axis=0)
    _, sv, vt = np.linalg.svd(x, full_matrices=False)
    keep = min(dims, int((sv > 1e-6 * max(sv[0], 1e-12)).sum()))  # a small album has fewer real axes
    z = x @ vt[:keep].T
    return z / np.maximum(z.std(axis=0), 1e-12)


def design_matrix(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The linear model's input: whitened style and down-weighted whitened content, side by side."""
    return np.hstack([_whiten(style, STYLE_DIMS), CONTENT_WEIGHT * _whiten(content, CONTENT_DIMS)])


def album_features(
    paths: Sequence[str | Path],
    backbone: Backbone | None = None,
    *,
    failures: FailureLog | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Design-matrix rows for ``paths`` (one backbone pass). Unreadable photos get the mean row, so rows
    stay aligned with ``paths``; they then look average to the model rather than breaking it."""
    from piaa.backbones import create_backbone
    from piaa.features.extract import FeatureExtractor

    extractor = FeatureExtractor(backbone or create_backbone())
    style: list[np.ndarray | None] = [None] * len(paths)
    content: list[np.ndarray | None] = [None] * len(paths)
    done = 0
    for batch in extractor.files(list(paths), failures=failures, progress=False):
        s, c = photo_descriptors(batch.features)
        for j, i in enumerate(batch.indices):
            style[i], content[i] = s[j], c[j]
        done = max(done, max(batch.indices, default=-1) + 1)
        if progress is not None:
            progress(done, len(paths))
    ok = [i for i, s in enumerate(style) if s is not None]
    if not ok:
        raise ValueError("no readable photos to compute features from")
    s_arr = np.stack([style[i] for i in ok])
    c_arr = np.stack([content[i] for i in ok])
    full_s = np.tile(s_arr.mean(axis=0), (len(paths), 1))
    full_c = np.tile(c_arr.mean(axis=0), (len(paths), 1))
    full_s[ok], full_c[ok] = s_arr, c_arr
    return design_matrix(full_s, full_c)


# ---------------------------------------------------------------------------------------------- model


@dataclass
class LinearRanker:
    """Bradley–Terry on features: P(a preferred to b) = sigmoid(w · (x_a - x_b)), L2-regularised.

    Fitted with numpy alone (scikit-learn is not needed for this). ``cov`` is the Laplace posterior
    covariance of ``w``, which the active sampler uses to tell what the model does not know yet.
    """

    l2: float = 1.0
    w: np.ndarray | None = None
    cov: np.ndarray | None = None
    pairs: int = 0

    def fit(self, x: np.ndarray, pairs: np.ndarray) -> LinearRanker:
        """``pairs``: rows of (preferred, other) indices into ``x``. Newton's method: the loss is strictly
        convex and the dimension small, so a few exact steps beat a quasi-Newton solver."""
        x = np.asarray(x, np.float64)
        pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
        d = x[pairs[:, 0]] - x[pairs[:, 1]]
        eye = np.eye(x.shape[1])
        w = np.zeros(x.shape[1])
        loss = self._loss(d, w)
        for _ in range(50):
            p = _sigmoid(d @ w)
            grad = -(d.T @ (1 - p)) + self.l2 * w
            hessian = self.l2 * eye + (d * (p * (1 - p))[:, None]).T @ d
            step = np.linalg.solve(hessian, grad)
            t = 1.0
            while (new := self._loss(d, w - t * step)) > loss and t > 1e-6:
                t *= 0.5
            w, loss = w - t * step, new
            if float(np.abs(t * step).max()) < 1e-8:
                break
        p = _sigmoid(d @ w)
        hessian = self.l2 * eye + (d * (p * (1 - p))[:, None]).T @ d
        self.w, self.cov, self.pairs = w, np.linalg.inv(hessian), len(d)
        return self

    def _loss(self, d: np.ndarray, w: np.ndarray) -> float:
        return float(np.logaddexp(0.0, -(d @ w)).sum() + 0.5 * self.l2 * w @ w)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Higher is preferred; only differences mean anything."""
        if self.w is None:
            raise ValueError("LinearRanker is not fitted")
        return np.asarray(x, np.float64) @ self.w


def _sigmoid(m: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * m))  # overflow-free


def fit_ranker(x: np.ndarray, pairs: Sequence[Pair], index: dict[str, int], l2: float = 1.0) -> LinearRanker:
    """Fit on stated pairs plus the one-step transitive ones (what personalization trains on too)."""
    known = [p for p in pairs if p[0] in index and p[1] in index]
    rows = np.array([(index[a], index[b]) for a, b in enrich_transitive(known)], np.int64).reshape(-1, 2)
    return LinearRanker(l2=l2).fit(x, rows)


# -------------------------------------------------------------------------------------------- sampler


@dataclass
class _Model:
    ranker: LinearRanker
    cov: np.ndarray  # updated as pairs are proposed (batch diversity)
    judgements: int  # stated pairs it was trained on


@dataclass
class ActiveSampler:
    """Proposes the most informative unjudged pair; random until ``warmup`` judgements are in.

    Same interface as :class:`~piaa.preferences.PairSampler` (``next``, ``mark_seen``, ``remaining``)
    plus ``update(pairs)``, called with the store's effective pairs after every change; it retrains
    every ``retrain_every`` judgements, in a background thread when ``background`` (a web app must not
    block on it), else inline (deterministic for a seed: same updates, same proposals).
    ``features`` may arrive later through ``set_features`` (embedding takes a while); until then the
    sampler draws at random. Thread-safe.
    """

    items: Sequence[str]
    features: np.ndarray | None = None
    seed: int | None = 0
    seen: Iterable[Pair] = ()
    warmup: int = 10
    retrain_every: int = 10
    candidates: int = 2000
    l2: float = 1.0
    criterion: str = "information"
    background: bool = False
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.criterion not in CRITERIA:
            raise ValueError(f"unknown criterion {self.criterion!r}; choose one of {', '.join(CRITERIA)}")
        self.items = list(self.items)
        self._index = {name: i for i, name in enumerate(self.items)}
        if len(self._index) != len(self.items):
            raise ValueError("items contain duplicates")
        n = len(self.items)
        self._total = n * (n - 1) // 2
        self._rng = random.Random(self.seed)
        self._np_rng = np.random.default_rng(self._rng.randrange(2**32))
        self._used: set[int] = set()  # proposed or seen elsewhere
        self._known: set[int] = set()  # stated or inferred by transitivity
        self._pairs: list[Pair] = []
        self._model: _Model | None = None
        self._training = False
        self._dirty = False
        for a, b in self.seen:
            self.mark_seen(a, b)

    # -- bookkeeping --------------------------------------------------------------------------------

    def _key(self, i: int, j: int) -> int:
        return min(i, j) * len(self.items) + max(i, j)

    @property
    def total(self) -> int:
        return self._total

    @property
    def remaining(self) -> int:
        """Pairs neither proposed, seen, stated nor inferable."""
        with self._lock:
            return self._total - len(self._used | self._known)

    @property
    def model_judgements(self) -> int | None:
        """How many stated pairs the current model was trained on (``None``: no model yet)."""
        model = self._model
        return None if model is None else model.judgements

    @property
    def training(self) -> bool:
        return self._training

    def mark_seen(self, a: str, b: str) -> bool:
        """Never propose this pair; names not in the album are ignored. True if newly excluded."""
        i, j = self._index.get(a), self._index.get(b)
        if i is None or j is None or i == j:
            return False
        with self._lock:
            key = self._key(i, j)
            if key in self._used:
                return False
            self._used.add(key)
            return True

    def set_features(self, features: np.ndarray) -> None:
        """Provide the design matrix (rows aligned with ``items``) and train if enough pairs are in."""
        if len(features) != len(self.items):
            raise ValueError(f"features have {len(features)} rows for {len(self.items)} items")
        with self._lock:
            self.features = np.asarray(features, np.float64)
        self._maybe_retrain()

    def update(self, pairs: Sequence[Pair]) -> None:
        """The store's effective pairs changed: refresh what is known, retrain when due."""
        known = [p for p in pairs if p[0] in self._index and p[1] in self._index and p[0] != p[1]]
        keys = {self._key(self._index[a], self._index[b]) for a, b in known}
        keys |= {self._key(self._index[a], self._index[c]) for a, c in infer_transitive(known)}
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

    def next(self) -> Pair | None:
        """The next pair to show (left, right), or ``None`` when no unjudged, uninferable pair is left."""
        with self._lock:
            blocked = self._used | self._known
            if len(blocked) >= self._total:
                return None
            model = self._model
            if model is None or self.features is None:
                key = self._random_key(blocked)
            else:
                key = self._informative_key(blocked, model)
            self._used.add(key)
            i, j = divmod(key, len(self.items))
            if self._rng.random() < 0.5:
                i, j = j, i
        return (self.items[i], self.items[j])

    def _random_key(self, blocked: set[int]) -> int:
        n = len(self.items)
        if 2 * len(blocked) < self._total:
            while True:
                i = self._rng.randrange(n)
                j = self._rng.randrange(n - 1)
                j += j >= i
                key = self._key(i, j)
                if key not in blocked:
                    return key
        return self._rng.choice(self._open_keys(blocked))

    def _open_keys(self, blocked: set[int]) -> list[int]:
        n = len(self.items)
        return [k for k in (i * n + j for i in range(n) for j in range(i + 1, n)) if k not in blocked]

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
        p = _sigmoid(d @ model.ranker.w)
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


def make_sampler(
    strategy: str,
    items: Sequence[str],
    *,
    seed: int | None = 0,
    seen: Iterable[Pair] = (),
    background: bool = False,
) -> PairSampler | ActiveSampler:
    """``random`` (the paper: :class:`~piaa.preferences.PairSampler`) or ``active`` (this module)."""
    if strategy == "random":
        return PairSampler(items, seed=seed, seen=seen)
    if strategy == "active":
        return ActiveSampler(items, seed=seed, seen=seen, background=background)
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
