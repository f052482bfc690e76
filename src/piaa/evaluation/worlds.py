"""The worlds a benchmark runs in: rated albums plus a crowd-labelled reference, features precomputed.

A world is either simulated (:func:`simulated_world`: seeded persons rate photos of any folder, so the
noise-free taste is known; :func:`para_world`: seeded persons over PARA's photos whose generic appeal
is PARA's real crowd mean and whose reference carries the real crowd labels) or real
(:func:`dataset_world`: a benchmark's albums from :mod:`piaa.data.datasets` and a reference built with
feature maps, AVA in the paper). Feature maps of
every photo are computed once with the frozen backbone, so each split of the protocol costs only heads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from piaa.backbones import Backbone, FeatureMaps, create_backbone
from piaa.data.datasets import RatedAlbum
from piaa.data.images import FailureLog, iter_image_files
from piaa.data.labels import mean_score
from piaa.errors import UnknownNameError, UsageError, file_error
from piaa.features.extract import FeatureExtractor
from piaa.features.index import NeighborIndex, normalize
from piaa.settings import DEFAULTS, RunSettings

__all__ = [
    "EvalWorld",
    "PooledAlbum",
    "WORLDS",
    "dataset_world",
    "extract_all",
    "extract_cached",
    "other_backbone",
    "other_pooled_loader",
    "para_world",
    "simulated_world",
]

WORLDS = ("photos", "para", "para-human")
"""The simulated worlds: persons over any photo folder, over PARA's photos and real crowd labels, or over
PARA's real attribute ratings and emotion votes (:mod:`piaa.evaluation.world_human`)."""


@dataclass(eq=False)
class PooledAlbum(RatedAlbum):
    """A :class:`~piaa.data.datasets.RatedAlbum` whose photos are also rows of its world's feature pool.

    The protocol splits albums by pool row (``photos[i]`` is the row of ``images[i]``) because features
    are computed once for all albums; ``truth`` is the noise-free utility, known for simulated persons
    only. Raises ``ValueError`` when the lengths differ.
    """

    photos: np.ndarray  # (N,) int, rows of the world's photo pool
    truth: np.ndarray | None = field(default=None, repr=False)  # (N,) or None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.photos = np.asarray(self.photos)
        if len(self.photos) != len(self.images):
            raise ValueError(
                f"album {self.user!r}: {len(self.images)} images but {len(self.photos)} pool rows"
            )


@dataclass
class EvalWorld:
    """Everything a benchmark needs, with features precomputed.

    R reference photos (crowd-labelled) and P pool photos (the albums' photos); embeddings are
    L2-normalised rows, ``ref_dists`` (R, 10) crowd score histograms summing to 1.
    """

    ref_maps: FeatureMaps
    ref_dists: np.ndarray  # (R, 10)
    ref_emb: np.ndarray  # (R, D), L2-normalised
    photo_maps: FeatureMaps
    photo_emb: np.ndarray  # (P, D), L2-normalised
    albums: list[PooledAlbum]
    channels: tuple[int, int, int]
    description: str = ""
    ref_attributes: np.ndarray | None = None  # (R, A) crowd attribute ratings of the reference, if known
    attribute_names: tuple[str, ...] = ()  # (A,) their names
    photo_pixels: np.ndarray | None = None  # (P, 5) standardized pixel attributes of the pool photos
    # () -> ((R, D2), (P, D2)) float32 pooled features (piaa.models.attributes.pooled_features) of the
    # same photos seen by the other backbone (other_backbone), computed on first call; None: not known
    other_pooled: Callable[[], tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._index = NeighborIndex(self.ref_emb)

    def neighbors(self, photos: np.ndarray, k: int) -> np.ndarray:
        """Reference rows: the union of the ``k`` nearest reference photos of each pool row in ``photos``."""
        return self._index.union(self.photo_emb[photos], k)


def extract_all(
    paths: Sequence[Path], backbone: Backbone, run: RunSettings = DEFAULTS
) -> tuple[list[int], FeatureMaps]:
    """Feature maps (float16) of every readable photo, once: (positions in ``paths`` kept, their maps).

    Raises ``ValueError`` when no photo is readable.
    """
    fe = FeatureExtractor(backbone, run)
    kept, maps = fe.collect(list(paths), failures=FailureLog(), desc="features")
    if maps is None:
        raise UsageError("no readable photos")
    return kept, maps


def extract_cached(
    paths: Sequence[Path],
    backbone: Backbone,
    cache_dir: str | Path | None = None,
    run: RunSettings = DEFAULTS,
) -> tuple[list[int], FeatureMaps]:
    """:func:`extract_all`, kept in ``cache_dir`` (an ``.npz`` named by a hash of the backbone, its
    weights and the paths) so a rerun loads instead of extracting. No ``cache_dir``: no cache."""
    if cache_dir is None:
        return extract_all(paths, backbone, run)
    import hashlib

    key = hashlib.sha1(
        "\n".join([backbone.info.name, backbone.info.weights_hash, *map(str, paths)]).encode()
    ).hexdigest()[:16]
    file = Path(cache_dir) / f"maps-{backbone.info.name}-{len(paths)}-{key}.npz"
    if file.is_file():
        with np.load(file) as z:
            maps = FeatureMaps(*(torch.from_numpy(z[n]) for n in FeatureMaps._fields))
            return z["kept"].tolist(), maps
    kept, maps = extract_all(paths, backbone, run)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp.npz")
    arrays = {n: t.numpy() for n, t in zip(FeatureMaps._fields, maps, strict=True)}
    np.savez(tmp, kept=np.asarray(kept), **arrays)
    tmp.replace(file)
    return kept, maps


def other_backbone(backbone: str) -> str:
    """The network that clusters content when ``backbone`` is the one piaa learns with: never the same."""
    return "efficientnet-lite0" if backbone == "nima-mobilenet" else "nima-mobilenet"


def _take(f: FeatureMaps, idx: np.ndarray) -> FeatureMaps:
    t = torch.from_numpy(idx)
    return FeatureMaps(*(x[t] for x in f))


def other_pooled_loader(
    paths: Sequence[Path],
    rows: Sequence[int],
    ref_idx: np.ndarray,
    pool_idx: np.ndarray,
    backbone: str,
    cache_dir: str | Path | None = None,
    run: RunSettings = DEFAULTS,
) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    """:attr:`EvalWorld.other_pooled` for a world whose i-th photo is ``paths[rows[i]]``: on first call,
    extracts :func:`other_backbone` over ``paths`` (kept in ``cache_dir``: the whole list, so worlds over
    the same folder share the file) and returns the pooled features of the reference (``ref_idx``) and
    pool (``pool_idx``) rows; later calls return the same arrays. Raises ``ValueError`` naming a photo the
    other backbone could not read."""
    memo: list[tuple[np.ndarray, np.ndarray]] = []

    def load() -> tuple[np.ndarray, np.ndarray]:
        if not memo:
            from piaa.models.attributes import pooled_features

            other = other_backbone(backbone)
            kept, maps = extract_cached(paths, create_backbone(other), cache_dir, run)
            pos = {k: i for i, k in enumerate(kept)}
            lost = [r for r in rows if r not in pos]
            if lost:
                raise file_error(ValueError, paths[lost[0]], f"unreadable by {other}")
            f = pooled_features(_take(maps, np.array([pos[r] for r in rows])))
            memo.append((f[ref_idx], f[pool_idx]))
        return memo[0]

    return load


def simulated_world(
    photos: str | Path,
    *,
    persons: int = 8,
    album_size: int = 200,
    seed: int = 0,
    backbone: str = "efficientnet-lite0",
    run: RunSettings = DEFAULTS,
    kind: str = "photos",
    **para: object,
) -> EvalWorld:
    """Simulated persons on any photo folder (:mod:`piaa.evaluation.simulate`), seeded.

    Half the photos are the reference (crowd histograms from 100 simulated raters), the other half the
    pool the persons' albums are drawn from (REAL-CUR-like: ``album_size`` photos rated 1-5, doubled).
    ``kind="para"``: ``photos`` is PARA's folder and the world is :func:`para_world` (``para`` holds its
    extra keywords). Raises ``ValueError`` with fewer than 40 readable photos or an unknown ``kind``.
    """
    from PIL import Image

    if kind not in WORLDS:
        raise UnknownNameError(f"unknown world {kind!r}: choose one of {', '.join(WORLDS)}")
    if kind == "para-human":
        from piaa.evaluation.world_human import human_world

        return human_world(
            photos, persons=persons, album_size=album_size, seed=seed, backbone=backbone, run=run,
            **para,  # type: ignore[arg-type]
        )  # fmt: skip
    if kind == "para":
        return para_world(
            photos, persons=persons, album_size=album_size, seed=seed, backbone=backbone, run=run,
            **para,  # type: ignore[arg-type]
        )  # fmt: skip
    if para:
        raise TypeError(f"unexpected arguments for the photos world: {', '.join(para)}")

    from piaa.evaluation.simulate import World, content_topics, photo_attributes, standardize_attributes

    files = list(iter_image_files([photos]))
    bb = create_backbone(backbone)
    kept, maps = extract_all(files, bb, run)
    files = [files[i] for i in kept]
    if len(files) < 40:
        raise file_error(
            ValueError, photos, f"need at least 40 readable photos for a benchmark, found {len(files)}"
        )
    it = tqdm(files, desc="attributes", unit="img", disable=not run.progress)
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
        images = [files[i] for i in idx]
        albums.append(PooledAlbum(f"person{p + 1}", images, 2.0 * ratings, photos=local, truth=truth))

    return EvalWorld(
        ref_maps=_take(maps, ref_idx),
        ref_dists=(counts / counts.sum(1, keepdims=True)).astype(np.float32),
        ref_emb=emb[ref_idx],
        photo_maps=_take(maps, pool_idx),
        photo_emb=emb[pool_idx],
        albums=albums,
        channels=tuple(bb.info.channels),
        description=f"{len(ref_idx)} reference photos, {persons} simulated persons with {size}-photo albums "
        f"from {photos} (seed {seed})",
        photo_pixels=attrs[pool_idx].astype(np.float32),
    )


def para_world(
    root: str | Path,
    *,
    persons: int = 8,
    album_size: int = 200,
    seed: int = 0,
    backbone: str = "efficientnet-lite0",
    content_backbone: str | None = None,
    topics: int = 12,
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    run: RunSettings = DEFAULTS,
) -> EvalWorld:
    """Simulated persons over PARA's photos, with a real crowd.

    ``root`` holds ``labels.csv`` (PARA's per-image crowd means, :mod:`piaa.data.labels.para`) and the
    photos under ``images/`` (the layout of ``../shared/data/para``); ``limit`` keeps the first N
    labelled photos. Half the photos (seeded) are the reference, labelled with their **real** crowd
    means (1-5 mapped onto 1-10 and spread over the two nearest bins), the other half the pool. Each
    person's noise-free taste (:func:`piaa.evaluation.simulate.para_persons`) mixes the photo's real
    crowd mean (a share of 0.2-0.6) with a personal part: weights on the five pixel attributes, on
    ``topics`` kinds of subject (k-means clusters of the embedding of ``content_backbone``, by default
    the other one of efficientnet-lite0 / nima-mobilenet, so the content piaa must pick up is not its
    own backbone's geometry) and on the crowd appeal itself. They rate ``album_size`` pool photos 1-5
    with noise (doubled), like REAL-CUR. ``cache_dir`` keeps the extracted features between runs.
    Raises ``ValueError`` with fewer than 40 readable photos, ``LabelFormatError`` for bad labels.
    """
    from PIL import Image

    from piaa.data.labels import read_labels
    from piaa.evaluation.simulate import (
        content_topics,
        para_persons,
        photo_attributes,
        standardize_attributes,
    )

    root = Path(root)
    labels = read_labels(root / "labels.csv")
    n = len(labels) if limit is None else min(limit, len(labels))
    files = [root / "images" / f for f in labels.files[:n]]
    dists = labels.distributions[:n]
    bb = create_backbone(backbone)
    kept, maps = extract_cached(files, bb, cache_dir, run)
    content = content_backbone or other_backbone(backbone)
    if content == backbone:
        raise UsageError(f"content_backbone must differ from the evaluated backbone {backbone!r}")
    kept_c, cmaps = extract_cached(files, create_backbone(content), cache_dir, run)
    both = sorted(set(kept) & set(kept_c))
    pos, pos_c = {k: i for i, k in enumerate(kept)}, {k: i for i, k in enumerate(kept_c)}
    maps = _take(maps, np.array([pos[k] for k in both]))
    content_emb = normalize(cmaps.embedding.float().numpy()[[pos_c[k] for k in both]])
    if content == other_backbone(backbone):  # the second backbone's pooled features, while in memory
        from piaa.models.attributes import pooled_features

        second = pooled_features(_take(cmaps, np.array([pos_c[k] for k in both])))
    del cmaps
    files, dists = [files[k] for k in both], dists[both]
    if len(files) < 40:
        found = f"need at least 40 readable photos for a benchmark, found {len(files)}"
        raise file_error(ValueError, root, found)
    it = tqdm(files, desc="attributes", unit="img", disable=not run.progress)
    attrs = standardize_attributes(np.stack([photo_attributes(Image.open(f)) for f in it]))
    crowd = mean_score(dists.astype(np.float64))  # real crowd means, on 1-10
    emb = normalize(maps.embedding.float().numpy())
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    ref_idx, pool_idx = np.sort(order[: len(files) // 2]), np.sort(order[len(files) // 2 :])
    mix = content_topics(content_emb, k=topics, seed=seed)
    size = min(album_size, len(pool_idx))
    second_pooled = None
    if content == other_backbone(backbone):
        second_pooled = lambda: (second[ref_idx], second[pool_idx])  # noqa: E731
    return _pooled_world(
        bb, files, maps, emb, dists, ref_idx, pool_idx, rng, size,
        para_persons(mix.shape[1], persons, seed),
        lambda person, idx: person.rate(attrs[idx], mix[idx], crowd[idx], rng),
        description=f"PARA world: {len(ref_idx)} reference photos with real crowd labels, {persons} "
        f"simulated persons with {size}-photo albums over the real crowd mean, content from {content} "
        f"({root}, seed {seed})",
        photo_pixels=attrs[pool_idx].astype(np.float32),
        other_pooled=second_pooled,
        **_reference_attributes(root, [labels.files[k] for k in both], ref_idx),
    )  # fmt: skip


def _pooled_world(
    bb: Backbone,
    files: list[Path],
    maps: FeatureMaps,
    emb: np.ndarray,
    dists: np.ndarray,
    ref_idx: np.ndarray,
    pool_idx: np.ndarray,
    rng: np.random.Generator,
    size: int,
    people: Iterable[Any],
    rate: Callable[[Any, np.ndarray], tuple[np.ndarray, np.ndarray]],
    description: str,
    **extra: Any,
) -> EvalWorld:
    """What every world over a real photo pool shares: one ``size``-photo album per person drawn from the
    pool (``rate(person, pool indices) -> (truth, ratings on 1-5)``, doubled onto 1-10), and the
    reference/pool halves as an :class:`EvalWorld`."""
    albums = []
    for p, person in enumerate(people):
        local = np.sort(rng.choice(len(pool_idx), size, replace=False))
        idx = pool_idx[local]
        truth, ratings = rate(person, idx)
        albums.append(
            PooledAlbum(f"person{p + 1}", [files[i] for i in idx], 2.0 * ratings, photos=local, truth=truth)
        )
    return EvalWorld(
        ref_maps=_take(maps, ref_idx),
        ref_dists=dists[ref_idx].astype(np.float32),
        ref_emb=emb[ref_idx],
        photo_maps=_take(maps, pool_idx),
        photo_emb=emb[pool_idx],
        albums=albums,
        channels=tuple(bb.info.channels),
        description=description,
        **extra,
    )


def _reference_attributes(root: Path, names: list[str], ref_idx: np.ndarray) -> dict:
    """The reference's crowd attribute ratings where ``root`` has an ``attributes.csv`` covering them."""
    from piaa.models.attributes import read_attribute_table

    if not (root / "attributes.csv").is_file():
        return {}
    table = read_attribute_table(root / "attributes.csv")
    try:
        rows = table.rows([names[i] for i in ref_idx])
    except KeyError:
        return {}
    return {"ref_attributes": rows.astype(np.float32), "attribute_names": table.names}


def dataset_world(
    reference: str | Path,
    albums: Sequence[RatedAlbum],
    *,
    run: RunSettings = DEFAULTS,
    description: str = "",
) -> EvalWorld:
    """A benchmark on real ratings: ``albums`` from :mod:`piaa.data.datasets`, neighbours and generic
    training from a reference built with feature maps (``piaa reference build``, AVA for the paper).

    Unreadable photos are dropped; albums left with fewer than 12 photos are skipped. Raises
    ``ValueError`` when the reference was built without maps, and whatever opening it raises.
    """
    from piaa.features.reference import Reference

    ref = Reference.open(reference)
    if not ref.has_maps:
        raise file_error(
            ValueError, reference, "built with --no-maps; the benchmark needs the stored feature maps"
        )
    paths = [p for a in albums for p in a.images]
    kept, maps = extract_all(paths, ref.create_backbone(), run)  # checked against the reference
    pos = {k: i for i, k in enumerate(kept)}
    out, start = [], 0
    for a in albums:
        good = [j for j in range(len(a.images)) if start + j in pos]
        idx = [pos[start + j] for j in good]
        start += len(a.images)
        if len(idx) >= 12:
            scores = np.asarray(a.scores, float)[good]
            out.append(PooledAlbum(a.user, [a.images[j] for j in good], scores, photos=np.array(idx)))
    return EvalWorld(
        ref_maps=ref.maps(np.arange(len(ref))),
        ref_dists=ref.distributions,
        ref_emb=ref.embeddings,
        photo_maps=maps,
        photo_emb=normalize(maps.embedding.numpy()),
        albums=out,
        channels=tuple(ref.meta.backbone_info["channels"]),
        description=description or f"{len(out)} albums, reference {reference}",
    )
