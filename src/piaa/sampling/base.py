"""The pair-choice interface every sampler implements, and the bookkeeping they all share.

A sampler hands out unordered pairs of album photos, each at most once, and is told which pairs the
person judged elsewhere (``mark_seen``) and, after every change, the store's effective pairs
(``update``). Pairs are kept as integer keys ``min(i, j) * n + max(i, j)`` over the album's item
indices, so the used set stays small and any pair maps to exactly one key.
"""

from __future__ import annotations

import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from piaa.preferences.rules import Pair
from piaa.registry import Registry

__all__ = ["PairSampler", "create_sampler", "list_samplers", "register_sampler"]


class PairSampler(ABC):
    """Hands out unjudged pairs of ``items``, never the same unordered pair twice. Thread-safe.

    Subclasses implement ``_choose``; the rest has working defaults: ``update``, ``set_features`` do
    nothing, ``scores()`` is ``None``, ``model_judgements`` is ``None`` and ``training`` is False.
    Raises ``ValueError`` if ``items`` has duplicates.
    """

    name: ClassVar[str] = ""
    needs_features: ClassVar[bool] = False  # whether the web app should compute album features for it

    def __init__(
        self,
        items: Sequence[str],
        *,
        seed: int | None = 0,
        seen: Iterable[Pair] = (),
        background: bool = False,
    ) -> None:
        self.items: list[str] = list(items)
        self.background = background  # do slow work (model fits) in a thread: a web app must not block
        self._index = {name: i for i, name in enumerate(self.items)}
        if len(self._index) != len(self.items):
            dupes = sorted({x for x in self.items if self.items.count(x) > 1})[:5]
            raise ValueError(f"items contain duplicates, e.g. {dupes}")
        n = len(self.items)
        self._total = n * (n - 1) // 2
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._used: set[int] = set()  # handed out or seen elsewhere
        self._pool: list[int] | None = None  # shuffled open keys once the used set gets dense
        for a, b in seen:
            self.mark_seen(a, b)

    # -- keys -------------------------------------------------------------------------------------------

    def key(self, i: int, j: int) -> int:
        """The unordered pair of item indices ``i`` and ``j`` as one integer."""
        return min(i, j) * len(self.items) + max(i, j)

    def known_keys(self, pairs: Iterable[Pair]) -> set[int]:
        """Keys of the pairs whose two names are both items (others are ignored)."""
        return {self.key(self._index[a], self._index[b]) for a, b in self.in_album(pairs)}

    def in_album(self, pairs: Iterable[Pair]) -> list[Pair]:
        """The pairs naming two different items, in order."""
        return [p for p in pairs if p[0] in self._index and p[1] in self._index and p[0] != p[1]]

    def _open_keys(self, blocked: set[int]) -> list[int]:
        n = len(self.items)
        return [k for k in (i * n + j for i in range(n) for j in range(i + 1, n)) if k not in blocked]

    def _random_pair(self, blocked: set[int]) -> tuple[int, int]:
        """A random open pair as (left, right) item indices, left/right at random (caller holds the lock).

        Rejection sampling while less than half of the pairs are blocked (two tries per draw on average,
        no memory beyond the blocked set); then a shuffled pool of the open keys, so even exhausting a
        small album is fast. Keys blocked after the pool was built are skipped when popped; the pool is
        rebuilt if it runs dry while pairs are open again (an undo unblocks inferred pairs).
        """
        n = len(self.items)
        if self._pool is None and 2 * len(blocked) < self._total:
            while True:
                i = self._rng.randrange(n)
                j = self._rng.randrange(n - 1)
                j += j >= i
                if self.key(i, j) not in blocked:
                    return i, j
        for _ in range(2):
            if self._pool is None:
                self._pool = self._open_keys(blocked)
                self._rng.shuffle(self._pool)
            while self._pool:
                key = self._pool.pop()
                if key not in blocked:
                    return self._oriented(key)
            self._pool = None
        raise LookupError("no open pair")  # next() checks there is one first

    def _oriented(self, key: int) -> tuple[int, int]:
        i, j = divmod(key, len(self.items))
        return (j, i) if self._rng.random() < 0.5 else (i, j)

    # -- interface --------------------------------------------------------------------------------------

    @property
    def total(self) -> int:
        """Number of unordered pairs of items, ``n * (n - 1) / 2``."""
        return self._total

    def _blocked(self) -> set[int]:
        """Keys that must not be handed out (caller holds the lock)."""
        return self._used

    @property
    def remaining(self) -> int:
        """Pairs that ``next`` may still hand out."""
        with self._lock:
            return self._total - len(self._blocked())

    def mark_seen(self, a: str, b: str) -> bool:
        """Never hand out this pair; names not in the album are ignored. True if newly excluded."""
        i, j = self._index.get(a), self._index.get(b)
        if i is None or j is None or i == j:
            return False
        key = self.key(i, j)
        with self._lock:
            if key in self._used:
                return False
            self._used.add(key)
            return True

    def next(self) -> Pair | None:
        """The next pair to show as (left, right), or ``None`` once no pair is left."""
        with self._lock:
            blocked = self._blocked()
            if len(blocked) >= self._total:
                return None
            i, j = self._choose(blocked)
            self._used.add(self.key(i, j))
        return (self.items[i], self.items[j])

    @abstractmethod
    def _choose(self, blocked: set[int]) -> tuple[int, int]:
        """An open pair as (left, right) item indices; called with the lock held and a pair open."""

    def update(self, pairs: Sequence[Pair]) -> None:  # noqa: B027 - optional hook
        """The store's effective pairs changed (after every choice and undo). Default: nothing to do."""

    def set_features(self, features: np.ndarray) -> None:  # noqa: B027 - optional hook
        """Per-item feature rows, for samplers with ``needs_features``. Default: ignored."""

    def scores(self) -> np.ndarray | None:
        """A score per item from the sampler's model, higher preferred; ``None`` without a model."""
        return None

    @property
    def model_judgements(self) -> int | None:
        """How many stated pairs the sampler's model was trained on (``None``: no model)."""
        return None

    @property
    def training(self) -> bool:
        """Whether a model is being fitted right now."""
        return False

    def status(self) -> dict[str, Any]:
        """What the web page shows about pair choice; at least ``{"strategy": name}``."""
        return {"strategy": self.name}

    def __iter__(self) -> Iterator[Pair]:
        while (pair := self.next()) is not None:
            yield pair


SAMPLERS: Registry[type[PairSampler]] = Registry("strategy")
"""Pair-choice strategies by name (``random``: the paper's; ``active``)."""


def register_sampler(name: str) -> Callable[[type[PairSampler]], type[PairSampler]]:
    """Class decorator: make a sampler available to ``create_sampler(name, ...)``."""

    def add(cls: type[PairSampler]) -> type[PairSampler]:
        cls.name = name
        return SAMPLERS.register(name, cls)

    return add


def list_samplers() -> list[str]:
    """Names ``create_sampler`` accepts, e.g. ``["random", "active"]`` (registration order)."""
    return SAMPLERS.names()


def create_sampler(
    name: str,
    items: Sequence[str],
    *,
    seed: int | None = 0,
    seen: Iterable[Pair] = (),
    background: bool = False,
    **options: Any,
) -> PairSampler:
    """A sampler by name: ``random`` (the paper) or ``active``; ``options`` go to its constructor.

    Raises :class:`~piaa.errors.UnknownNameError` (a ``ValueError``: "unknown strategy ...") for a
    name not in ``list_samplers()``.
    """
    cls = SAMPLERS.get(name)
    return cls(items, seed=seed, seen=seen, background=background, **options)
