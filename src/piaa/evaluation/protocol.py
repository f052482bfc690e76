"""``piaa bench``: the paper's evaluation protocol (section 4), every method in one run.

Protocol, per album (one person's rated photos) and per X in (10, 100):

- X training photos at random; up to 100 random pairs among them with unequal ratings (equal ratings
  discarded), ordered by the ratings and enriched by one-step transitivity;
- the generic model's reference neighbours come from the training photos only (K = 50 each);
- every method is scored on the remaining photos with Spearman's rho (eq. 4) and pairwise accuracy;
- S random splits (default 10); a method's value for an album is its mean over the splits, and the table
  reports mean ± std over albums, as the paper's Table 1 does.

Feature maps of all photos are computed once (frozen backbone), so each split costs only the heads.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from piaa.backbones import Backbone, FeatureMaps, create_backbone
from piaa.data.images import FailureLog, iter_image_files
from piaa.evaluation.metrics import pairwise_accuracy, spearman
from piaa.features.extract import FeatureExtractor
from piaa.features.index import NeighborIndex, normalize
from piaa.models.head import AestheticHead
from piaa.models.losses import get_rank_loss
from piaa.models.train import TrainConfig, cached_source, fit_generic, fit_ranking, new_head
from piaa.preferences import enrich_transitive


@dataclass
class EvalAlbum:
    user: str
    photos: np.ndarray  # indices into the world's photo pool
    scores: np.ndarray  # the person's ratings on 1-10
    truth: np.ndarray | None = None  # noise-free utility (simulated people only)


@dataclass
class EvalWorld:
    """Everything a benchmark needs, with features precomputed."""

    ref_maps: FeatureMaps
    ref_dists: np.ndarray
    ref_emb: np.ndarray  # L2-normalised
    photo_maps: FeatureMaps
    photo_emb: np.ndarray  # L2-normalised
    albums: list[EvalAlbum]
    channels: tuple[int, int, int]
    description: str = ""

    def __post_init__(self) -> None:
        self._index = NeighborIndex(self.ref_emb)

    def neighbors(self, photos: np.ndarray, k: int) -> np.ndarray:
        return self._index.union(self.photo_emb[photos], k)


def extract_all(
    paths: Sequence[Path], backbone: Backbone, progress: bool = True
) -> tuple[list[int], FeatureMaps]:
    """Feature maps (float16) of every readable photo, once."""
    fe = FeatureExtractor(backbone)
    kept, maps = fe.collect(list(paths), failures=FailureLog(), progress="features" if progress else False)
    if maps is None:
        raise ValueError("no readable photos")
    return kept, maps


def simulated_world(
    photos: str | Path,
    *,
    persons: int = 8,
    album_size: int = 200,
    seed: int = 0,
    backbone: str = "efficientnet-lite0",
    progress: bool = True,
) -> EvalWorld:
    """Half the photos are the reference (crowd histograms from 100 simulated raters), the other half
    the pool the persons' albums are drawn from (REAL-CUR-like: ``album_size`` photos rated 1-5, doubled)."""
    from PIL import Image

    from piaa.evaluation.simulate import World, content_topics, photo_attributes, standardize_attributes

    files = list(iter_image_files([photos]))
    bb = create_backbone(backbone)
    kept, maps = extract_all(files, bb, progress)
    files = [files[i] for i in kept]
    if len(files) < 40:
        raise ValueError(f"{photos}: need at least 40 readable photos for a benchmark, found {len(files)}")
    it = tqdm(files, desc="attributes", unit="img", disable=not progress)
    attrs = standardize_attributes(np.stack([photo_attributes(Image.open(f)) for f in it]))
    emb = normalize(maps.embedding.numpy())
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    ref_idx, pool_idx = np.sort(order[: len(files) // 2]), np.sort(order[len(files) // 2 :])
    topics = content_topics(emb, seed=seed)
    world = World.create(topics.shape[1], persons, seed)
    counts = world.crowd_histograms(attrs[ref_idx], topics[ref_idx], rng)
    albums = []
    size = min(album_size, len(pool_idx))
    for p, person in enumerate(world.persons):
        local = np.sort(rng.choice(len(pool_idx), size, replace=False))
        idx = pool_idx[local]
        truth, ratings = world.ratings(person, attrs[idx], topics[idx], rng)
        albums.append(EvalAlbum(f"person{p + 1}", local, 2.0 * ratings, truth))

    def take(f: FeatureMaps, idx: np.ndarray) -> FeatureMaps:
        t = torch.from_numpy(idx)
        return FeatureMaps(*(x[t] for x in f))

    return EvalWorld(
        ref_maps=take(maps, ref_idx),
        ref_dists=(counts / counts.sum(1, keepdims=True)).astype(np.float32),
        ref_emb=emb[ref_idx],
        photo_maps=take(maps, pool_idx),
        photo_emb=emb[pool_idx],
        albums=albums,
        channels=tuple(bb.info.channels),
        description=f"{len(ref_idx)} reference photos, {persons} simulated persons with {size}-photo albums "
        f"from {photos} (seed {seed})",
    )


def dataset_world(
    reference: str | Path, albums: Sequence, *, progress: bool = True, description: str = ""
) -> EvalWorld:
    """A benchmark on real ratings: ``albums`` from :mod:`piaa.data.datasets`, neighbours and generic
    training from a reference built with feature maps (``piaa reference build``, AVA for the paper)."""
    from piaa.features.reference import Reference

    ref = Reference.open(reference)
    if not ref.has_maps:
        raise ValueError(f"{reference}: built with --no-maps; the benchmark needs the stored feature maps")
    paths = [p for a in albums for p in a.images]
    kept, maps = extract_all(paths, ref.create_backbone(), progress)  # checked against the reference
    pos = {k: i for i, k in enumerate(kept)}
    out, start = [], 0
    for a in albums:
        idx = [pos[start + j] for j in range(len(a.images)) if start + j in pos]
        good = [j for j in range(len(a.images)) if start + j in pos]
        start += len(a.images)
        if len(idx) >= 12:
            out.append(EvalAlbum(a.user, np.array(idx), np.asarray(a.scores, float)[good]))
    return EvalWorld(
        ref_maps=ref.maps(np.arange(len(ref))),
        ref_dists=ref.distributions,
        ref_emb=ref.embeddings,
        photo_maps=maps,
        photo_emb=normalize(maps.embedding.numpy()),
        albums=out,
        channels=tuple(json.loads(ref.meta["backbone_info"])["channels"]),
        description=description or f"{len(out)} albums, reference {reference}",
    )


# ------------------------------------------------------------------------------------ splits


@dataclass
class Split:
    world: EvalWorld
    train: np.ndarray  # photo-pool indices
    test: np.ndarray
    test_scores: np.ndarray
    pairs: np.ndarray  # (P, 2) photo-pool indices, preferred first, stated then inferred
    neighbors: np.ndarray  # reference rows
    cfg: TrainConfig
    cache: dict = field(default_factory=dict)

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
        fit_ranking(
            head,
            cached_source(self.world.photo_maps),
            torch.from_numpy(self.pairs),
            dataclasses.replace(self.cfg, **overrides),
        )
        return head

    @torch.no_grad()
    def head_scores(self, head: AestheticHead, photos: np.ndarray | None = None) -> np.ndarray:
        photos = self.test if photos is None else photos
        src = cached_source(self.world.photo_maps)
        head.eval()
        out = [head.score(src(torch.from_numpy(photos[i : i + 128]))) for i in range(0, len(photos), 128)]
        return torch.cat(out).numpy()


def make_split(
    world: EvalWorld, album: EvalAlbum, x: int, rng: np.random.Generator, cfg: TrainConfig, n_pairs: int = 100
) -> Split:
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
    )


# ----------------------------------------------------------------------------------- methods

Method = Callable[[Split], np.ndarray]


def _piaa(**overrides: object) -> Method:
    def run(s: Split) -> np.ndarray:
        return s.head_scores(s.rank(s.generic(), **overrides))

    return run


def _without_rankings(s: Split) -> np.ndarray:
    return s.head_scores(s.generic())


def _ablation(**overrides: object) -> Method:
    """piaa with one part switched off, in the generic model and the ranking fine-tune alike."""

    def run(s: Split) -> np.ndarray:
        return s.head_scores(s.rank(s.generic(**overrides), **overrides))

    return run


def _without_pretraining(s: Split) -> np.ndarray:
    return s.head_scores(s.rank(s.new_head()))


def _pair_features(s: Split) -> tuple[np.ndarray, np.ndarray]:
    x = s.world.photo_emb
    return x[s.pairs[:, 0]] - x[s.pairs[:, 1]], x


def _rsvm(s: Split) -> np.ndarray:
    """RankSVM (Joachims 2002): a linear SVM on embedding differences of the ordered pairs."""
    from sklearn.svm import LinearSVC

    d, x = _pair_features(s)
    if len(d) == 0:
        return np.zeros(len(s.test))
    svm = LinearSVC(C=1.0, fit_intercept=False, max_iter=5000)
    svm.fit(np.vstack([d, -d]), np.r_[np.ones(len(d)), -np.ones(len(d))])
    return x[s.test] @ svm.coef_[0]


def _linear_fit(
    loss_fn: Callable[[torch.Tensor], torch.Tensor], dim: int, l2: float, steps: int = 300
) -> torch.Tensor:
    w = torch.zeros(dim + 1, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn(w) + l2 * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def _rsvr(s: Split) -> np.ndarray:
    """R-SVR after Park et al. (2017): one linear model with an epsilon-insensitive regression loss on
    the reference neighbours' mean scores and a ranking hinge on the person's pairs, jointly (squared
    hinges, so L-BFGS can solve it)."""
    x = torch.from_numpy(s.world.photo_emb).float()
    xr = torch.from_numpy(s.world.ref_emb[s.neighbors]).float()
    yr = torch.from_numpy(s.world.ref_dists[s.neighbors] @ np.arange(1, 11, dtype=np.float32))
    p = torch.from_numpy(s.pairs)

    def loss(w: torch.Tensor) -> torch.Tensor:
        reg = torch.relu((xr @ w[:-1] + w[-1] - yr).abs() - 0.1) ** 2
        rank = torch.relu(1.0 - (x[p[:, 0]] - x[p[:, 1]]) @ w[:-1]) ** 2 if len(p) else torch.zeros(1)
        return reg.mean() + rank.mean()

    w = _linear_fit(loss, x.shape[1], l2=1e-3)
    return (x[torch.from_numpy(s.test)] @ w[:-1]).numpy()


def _pam(s: Split) -> np.ndarray:
    """PAM-style (after Ren et al. 2017): the generic score plus a personal residual, a linear function
    of the embedding learned from the pairs with a hinge loss and L2 regularisation."""
    g = torch.from_numpy(s.head_scores(s.generic(), np.arange(len(s.world.photo_emb)))).float()
    x = torch.from_numpy(s.world.photo_emb).float()
    p = torch.from_numpy(s.pairs)
    if len(p) == 0:
        return g[torch.from_numpy(s.test)].numpy()

    def loss(w: torch.Tensor) -> torch.Tensor:
        diff = g[p[:, 0]] - g[p[:, 1]] + (x[p[:, 0]] - x[p[:, 1]]) @ w[:-1]
        return (torch.relu(0.5 - diff) ** 2).mean()

    w = _linear_fit(loss, x.shape[1], l2=1e-2)
    t = torch.from_numpy(s.test)
    return (g[t] + x[t] @ w[:-1]).numpy()


def _rankiqa(s: Split) -> np.ndarray:
    """RankIQA-style (Liu et al. 2017) with the person's rankings: a Siamese network (pooled backbone
    features -> MLP -> scalar score) trained on the pairs alone with the hinge loss."""
    src = cached_source(s.world.photo_maps)
    ids = torch.from_numpy(np.unique(np.r_[s.pairs.ravel(), s.test]))
    with torch.no_grad():
        f = src(ids)
        feats = torch.cat([f.z1.mean((2, 3)), f.z2.mean((2, 3))], 1)
    feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    pos = {int(i): k for k, i in enumerate(ids)}
    torch.manual_seed(s.cfg.seed)
    net = torch.nn.Sequential(torch.nn.Linear(feats.shape[1], 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-3)
    hinge = get_rank_loss("hinge")
    a = torch.tensor([pos[int(i)] for i in s.pairs[:, 0]], dtype=torch.long)
    b = torch.tensor([pos[int(i)] for i in s.pairs[:, 1]], dtype=torch.long)
    for _ in range(200 if len(a) else 0):
        out = net(feats).squeeze(1)
        loss = hinge(out[a], out[b], margin=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return net(feats[[pos[int(i)] for i in s.test]]).squeeze(1).numpy()


METHODS: dict[str, Method] = {
    "piaa (full)": _piaa(),
    "w/o rankings (generic)": _without_rankings,
    "w/o attention": _ablation(attention=False),
    "w/o low-level statistics": _ablation(low_level=False),
    "w/o pre-training": _without_pretraining,
    "exponential loss": _piaa(rank_loss="exp"),
    "logistic loss": _piaa(rank_loss="logistic"),
    "R-SVM": _rsvm,
    "R-SVR": _rsvr,
    "RankIQA-style": _rankiqa,
    "PAM-style": _pam,
}


# ------------------------------------------------------------------------------------ running


@dataclass
class BenchResult:
    """Per method and X: one (rho, pairwise accuracy) per album, each the mean over the splits."""

    rho: dict[tuple[str, int], list[float]]
    acc: dict[tuple[str, int], list[float]]
    xs: tuple[int, ...]
    methods: list[str]
    description: str
    seconds: float
    splits: int

    def table(self) -> str:
        head = "| method | " + " | ".join(f"X = {x}: ρ | X = {x}: pair acc." for x in self.xs) + " |"
        lines = [head, "|---|" + "---|---|" * len(self.xs)]
        for m in self.methods:
            cells = []
            for x in self.xs:
                r, a = self.rho.get((m, x), []), self.acc.get((m, x), [])
                cells += [
                    f"{np.mean(r):.3f} ± {np.std(r):.3f}" if r else "–",
                    f"{np.mean(a):.1%}" if a else "–",
                ]
            name = f"**{m}**" if m == "piaa (full)" else m
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def plot(self, path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(10, 4.5))
        width = 0.8 / len(self.xs)
        pos = np.arange(len(self.methods))
        for j, x in enumerate(self.xs):
            means = [np.mean(self.rho.get((m, x), [np.nan])) for m in self.methods]
            stds = [np.std(self.rho.get((m, x), [np.nan])) for m in self.methods]
            ax.bar(pos + j * width, means, width, yerr=stds, capsize=3, label=f"X = {x}")
        ax.set_xticks(pos + width * (len(self.xs) - 1) / 2, self.methods, rotation=30, ha="right")
        ax.set_ylabel("Spearman ρ (mean ± std over albums)")
        ax.axhline(0, color="black", lw=0.5)
        ax.legend()
        ax.set_title(self.description, fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


def run(
    world: EvalWorld,
    *,
    methods: Sequence[str] | None = None,
    xs: Sequence[int] = (10, 100),
    splits: int = 10,
    pairs: int = 100,
    config: TrainConfig | None = None,
    seed: int = 0,
    progress: bool = True,
) -> BenchResult:
    t0 = time.perf_counter()
    cfg = config or TrainConfig(seed=seed)
    methods = list(methods or METHODS)
    unknown = [m for m in methods if m not in METHODS and m != "oracle"]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    has_truth = all(a.truth is not None for a in world.albums)
    rows = methods + (["oracle (noise-free taste)"] if has_truth else [])
    rho: dict[tuple[str, int], list[float]] = {}
    acc: dict[tuple[str, int], list[float]] = {}
    jobs = [(a, x) for a in world.albums for x in xs if x < len(a.photos) - 1]
    bar = tqdm(total=len(jobs) * splits, desc="bench", unit="split", disable=not progress)
    for album, x in jobs:
        per: dict[str, list[tuple[float, float]]] = {m: [] for m in rows}
        rng = np.random.default_rng(
            [seed, x, int.from_bytes(album.user.encode()[:8].ljust(8, b"\0"), "little")]
        )
        for _ in range(splits):
            split = make_split(world, album, x, rng, cfg, pairs)
            for m in methods:
                pred = METHODS[m](split)
                per[m].append((spearman(pred, split.test_scores), pairwise_accuracy(pred, split.test_scores)))
            if has_truth:
                pos = {int(p): k for k, p in enumerate(album.photos)}
                t = album.truth[[pos[int(p)] for p in split.test]]
                per[rows[-1]].append(
                    (spearman(t, split.test_scores), pairwise_accuracy(t, split.test_scores))
                )
            bar.update()
        for m, vals in per.items():
            rho.setdefault((m, x), []).append(float(np.mean([v[0] for v in vals])))
            acc.setdefault((m, x), []).append(float(np.mean([v[1] for v in vals])))
    bar.close()
    return BenchResult(rho, acc, tuple(xs), rows, world.description, time.perf_counter() - t0, splits)
