"""``piaa evaluate``: the paper's evaluation protocol (section 4), every method in one run.

Protocol, per album (one person's rated photos) and per X in (10, 100):

- X training photos at random; up to 100 random pairs among them with unequal ratings (equal ratings
  discarded), ordered by the ratings and enriched by one-step transitivity;
- the generic model's reference neighbours come from the training photos only (K = 50 each);
- every method is scored on the remaining photos with Spearman's rho (eq. 4) and pairwise accuracy;
- S random splits (default 10); a method's value for an album is its mean over the splits, and the table
  reports mean ± std over albums, as the paper's Table 1 does.

The worlds come from :mod:`.worlds`, the methods from :mod:`.methods`, the table from :mod:`.report`;
they are re-exported here so ``protocol`` alone runs a benchmark.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from piaa.errors import UnknownNameError
from piaa.evaluation.methods import EVALUATION_METHODS, Method
from piaa.evaluation.metrics import pairwise_accuracy, spearman
from piaa.evaluation.report import BenchResult
from piaa.evaluation.worlds import EvalWorld, PooledAlbum, dataset_world, extract_all, simulated_world
from piaa.models.head import AestheticHead
from piaa.models.selection import fit_personal
from piaa.models.train import TrainConfig, cached_source, fit_generic, new_head
from piaa.preferences import enrich_transitive
from piaa.settings import RunSettings, torch_threads

__all__ = [
    "EVALUATION_METHODS",
    "BenchResult",
    "EvalWorld",
    "Method",
    "PooledAlbum",
    "Split",
    "dataset_world",
    "extract_all",
    "make_split",
    "run",
    "simulated_world",
]

ORACLE = "oracle (noise-free taste)"
FULL, GENERIC = "piaa (full)", "w/o rankings (generic)"


@dataclass
class Split:
    """One random split of one album: what every method trains on and is scored against."""

    world: EvalWorld
    train: np.ndarray  # (X,) photo-pool rows
    test: np.ndarray  # (T,) photo-pool rows
    test_scores: np.ndarray  # (T,) the person's ratings, 1-10
    pairs: np.ndarray  # (P, 2) photo-pool rows, preferred first, stated then inferred
    neighbors: np.ndarray  # reference rows
    cfg: TrainConfig
    cache: dict = field(default_factory=dict)
    stated: int = 0  # how many of ``pairs`` were stated (the rest are inferred)
    selections: list = field(default_factory=list)  # what ``rank`` chose, per call

    def new_head(self, **overrides: object) -> AestheticHead:
        cfg = dataclasses.replace(self.cfg, **overrides)
        return new_head(self.world.channels, cfg, self.world.photo_maps.stats.shape[1])

    def generic(self, **overrides: object) -> AestheticHead:
        """The generic model (EMD on the neighbours), trained once per split and setting."""
        key = tuple(sorted(overrides.items()))
        if key not in self.cache:
            cfg = dataclasses.replace(self.cfg, **overrides)
            head = self.new_head(**overrides)
            src = cached_source(self.world.ref_maps)
            rows = torch.from_numpy(self.neighbors)
            fit_generic(
                head, lambda i: src(rows[i]), torch.from_numpy(self.world.ref_dists[self.neighbors]), cfg
            )
            self.cache[key] = head
        return copy.deepcopy(self.cache[key])

    def rank(self, head: AestheticHead, **overrides: object) -> AestheticHead:
        """``head`` fine-tuned in place on the split's pairs (the ranking loss, paper section 3.3), pulled
        toward where it started as far as the pairs justify (:mod:`piaa.models.selection`)."""
        cfg = dataclasses.replace(self.cfg, **overrides)
        src = cached_source(self.world.photo_maps)
        self.selections.append(fit_personal(head, src, torch.from_numpy(self.pairs), self.stated, cfg))
        return head

    @torch.no_grad()
    def head_scores(self, head: AestheticHead, photos: np.ndarray | None = None) -> np.ndarray:
        """Mean scores (1-10) of ``photos`` (pool rows; default: the test photos)."""
        photos = self.test if photos is None else photos
        src = cached_source(self.world.photo_maps)
        head.eval()
        out = [head.score(src(torch.from_numpy(photos[i : i + 128]))) for i in range(0, len(photos), 128)]
        return torch.cat(out).numpy()


def make_split(
    world: EvalWorld,
    album: PooledAlbum,
    x: int,
    rng: np.random.Generator,
    cfg: TrainConfig,
    n_pairs: int = 100,
) -> Split:
    """X training photos of ``album`` at random, the rest for testing; up to ``n_pairs`` stated pairs
    with unequal ratings among the training photos, enriched by transitivity; their K = ``cfg.k``
    reference neighbours."""
    perm = rng.permutation(len(album.photos))
    tr, te = perm[:x], perm[x:]
    candidates = [(a, b) for i, a in enumerate(tr) for b in tr[i + 1 :] if album.scores[a] != album.scores[b]]
    chosen = rng.permutation(len(candidates))[:n_pairs]
    stated = []
    for c in chosen:
        a, b = candidates[c]
        stated.append((str(a), str(b)) if album.scores[a] > album.scores[b] else (str(b), str(a)))
    enriched = enrich_transitive(stated)
    pairs = np.array([(album.photos[int(a)], album.photos[int(b)]) for a, b in enriched], dtype=np.int64)
    train = album.photos[tr]
    return Split(
        world,
        train,
        album.photos[te],
        album.scores[te],
        pairs.reshape(-1, 2),
        world.neighbors(train, cfg.k),
        cfg,
        stated=len(stated),
    )


def run(
    world: EvalWorld,
    *,
    methods: Sequence[str] | None = None,
    xs: Sequence[int] = (10, 100),
    splits: int = 10,
    pairs: int = 100,
    config: TrainConfig | None = None,
    seed: int = 0,
    progress: bool | None = None,
    settings: RunSettings | None = None,
) -> BenchResult:
    """The protocol over ``world``'s albums for each X in ``xs`` (albums too small for an X are skipped),
    with an extra oracle row when every album knows its noise-free taste. Seeded: the same arguments
    give the same result. Raises ``ValueError`` for a name not in :data:`EVALUATION_METHODS`.
    ``settings``: how to run (default :meth:`RunSettings.resolve`); ``progress``, when given, replaces
    its field. Torch's thread count is held at ``settings.torch_threads`` throughout."""
    how = RunSettings.resolve(settings, progress=progress)
    with torch_threads(how.torch_threads):
        return _protocol(world, methods, xs, splits, pairs, config, seed, how)


def _protocol(
    world: EvalWorld,
    methods: Sequence[str] | None,
    xs: Sequence[int],
    splits: int,
    pairs: int,
    config: TrainConfig | None,
    seed: int,
    run: RunSettings,
) -> BenchResult:
    t0 = time.perf_counter()
    cfg = config or TrainConfig(seed=seed)
    methods = list(methods or EVALUATION_METHODS)
    unknown = [m for m in methods if m not in EVALUATION_METHODS and m != "oracle"]
    if unknown:
        raise UnknownNameError(f"unknown methods {unknown}; choose from {', '.join(EVALUATION_METHODS)}")
    methods = [m for m in methods if m != "oracle"]  # its row comes with the truth, not as a method
    has_truth = all(a.truth is not None for a in world.albums)
    rows = methods + ([ORACLE] if has_truth else [])
    rho: dict[tuple[str, int], list[float]] = {}
    acc: dict[tuple[str, int], list[float]] = {}
    alphas: dict[int, list[float]] = {}
    choices: dict[int, list[str]] = {}
    jobs = [(a, x) for a in world.albums for x in xs if x < len(a.photos) - 1]
    bar = tqdm(total=len(jobs) * splits, desc="bench", unit="split", disable=not run.progress)
    for album, x in jobs:
        per: dict[str, list[tuple[float, float]]] = {m: [] for m in rows}
        rng = np.random.default_rng(
            [seed, x, int.from_bytes(album.user.encode()[:8].ljust(8, b"\0"), "little")]
        )
        for _ in range(splits):
            split = make_split(world, album, x, rng, cfg, pairs)
            for m in methods:
                pred = EVALUATION_METHODS[m](split)
                if m == FULL and split.selections:
                    alphas.setdefault(x, []).append(split.selections[-1].alpha)
                    choices.setdefault(x, []).append(split.selections[-1].kind)
                per[m].append((spearman(pred, split.test_scores), pairwise_accuracy(pred, split.test_scores)))
            if has_truth:
                assert album.truth is not None
                pos = {int(p): k for k, p in enumerate(album.photos)}
                t = album.truth[[pos[int(p)] for p in split.test]]
                per[ORACLE].append((spearman(t, split.test_scores), pairwise_accuracy(t, split.test_scores)))
            bar.update()
        for m, vals in per.items():
            rho.setdefault((m, x), []).append(float(np.mean([v[0] for v in vals])))
            acc.setdefault((m, x), []).append(float(np.mean([v[1] for v in vals])))
    bar.close()
    seconds = time.perf_counter() - t0
    return BenchResult(rho, acc, tuple(xs), rows, world.description, seconds, splits, alphas, choices)
