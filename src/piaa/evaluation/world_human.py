"""The third simulated world, ``para-human``: persons whose taste is made of PARA's *human* ratings.

Built differently from both other worlds (:func:`piaa.evaluation.worlds.simulated_world`: a simulated
crowd over pixel statistics and the learning backbone's clusters; :func:`~piaa.evaluation.worlds.para_world`:
PARA's real crowd mean plus pixel statistics and the *other* backbone's clusters). Here no part of a
person's taste is computed from pixels or by any network:

- the **crowd** appeal is PARA's real per-image crowd mean (``labels.csv``), as in the PARA world, and the
  reference half carries it as its labels;
- the **attribute** part weighs PARA's real crowd ratings of composition, colour, depth of field, light
  and content (``attributes.csv``), each made independent of the crowd mean first (the residual of a
  least-squares line on ``aesthetic_mean``, then z-scored): "this photo's light is better than its overall
  appeal suggests" is what a person may care about;
- the **mood** part (in the role of the other worlds' kinds of subject) weighs the shares of PARA's
  real emotion votes (amusement, awe, contentment, disgust, excitement, fear, neutral, sadness).

Each person (:func:`human_persons`, seeded on ``[seed, 20]``) is a
:class:`~piaa.evaluation.simulate.SimulatedPerson` with the PARA world's scales: attribute weights
N(0, 1), mood weights N(0, 1), mood weight 0.3-1.0, generic share 0.2-0.6, own weight on the crowd
N(0, 0.5), noise 0.35; albums of ``album_size`` pool photos rated 1-5 at the noisy utility's 10/30/70/90 %
quantiles (doubled), like REAL-CUR. The construction was fixed (and committed with its tests) before
anything was measured on it.

The world also carries the reference photos' real attribute ratings (all eight of PARA's attributes)
and every pool photo's pixel attributes, for methods that fit a taste in a named space. Beware: such a
method reads predictions of the very ratings these persons weigh, so this world favours it by
construction; it is one world among three, not the judge.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from piaa.backbones import Backbone, FeatureMaps, create_backbone
from piaa.data.labels import mean_score
from piaa.errors import file_error
from piaa.evaluation.simulate import SimulatedPerson
from piaa.features.index import normalize
from piaa.settings import DEFAULTS, RunSettings

__all__ = ["EMOTIONS", "HUMAN_ATTRIBUTES", "HumanTaste", "human_persons", "human_world", "load_human_taste"]

HUMAN_ATTRIBUTES = ("composition", "colour", "depth_of_field", "light", "content")
"""The attribute ratings a person of this world weighs (PARA crowd means, crowd appeal taken out)."""

EMOTIONS = (
    "amusement",
    "awe",
    "contentment",
    "disgust",
    "excitement",
    "fear",
    "neutral",
    "sadness",
)
"""PARA's emotion vote columns (``emotion_<name>`` in ``labels.csv``)."""


def human_persons(persons: int, seed: int = 0) -> list[SimulatedPerson]:
    """The world's seeded persons (see the module docstring for the distributions)."""
    rng = np.random.default_rng([seed, 20])
    people = []
    for _ in range(persons):
        w = rng.normal(0, 1, len(HUMAN_ATTRIBUTES))
        m = rng.normal(0, 1, len(EMOTIONS))
        mood, share, crowd_w = rng.uniform(0.3, 1.0), rng.uniform(0.2, 0.6), rng.normal(0, 0.5)
        people.append(SimulatedPerson(w, m, float(mood), float(share), 0.35, float(crowd_w)))
    return people


def _emotion_shares(path: Path, images: list[str]) -> np.ndarray:
    """(N, 8) share of each photo's emotion votes (uniform where a photo has none)."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = {r["image"]: r for r in csv.DictReader(f)}
    cols = [f"emotion_{e}" for e in EMOTIONS]
    missing = [c for c in cols if c not in next(iter(rows.values()), {})]
    if missing:
        raise file_error(
            ValueError, path, f"no {missing[0]} column (the para-human world reads PARA's emotions)"
        )
    counts = np.array([[float(rows[im][c]) for c in cols] for im in images])
    total = counts.sum(1, keepdims=True)
    return np.where(total > 0, counts / np.maximum(total, 1), 1.0 / len(cols))


def _residual_z(values: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """Each column minus its least-squares line on ``crowd``, z-scored."""
    a = np.c_[np.ones_like(crowd), crowd]
    coef, *_ = np.linalg.lstsq(a, values, rcond=None)
    r = values - a @ coef
    return (r - r.mean(0)) / (r.std(0) + 1e-9)


@dataclass
class HumanTaste:
    """What this world's tastes are made of, for every photo that is labelled, rated on every attribute
    and readable by the backbone (N of them, in ``labels.csv``'s order): ``files`` (N paths), ``maps``
    their features, ``dists`` (N, 10) crowd histograms, ``attributes`` (N, A) PARA's attribute means
    (``attribute_names``), ``crowd`` (N,) the crowd mean on 1-10, ``human`` (N, 5) the
    :data:`HUMAN_ATTRIBUTES` with the crowd taken out (z-scored), ``mood`` (N, 8) the emotion shares;
    ``every`` all the listed paths and ``rows`` each kept photo's place among them."""

    files: list[Path]
    maps: FeatureMaps
    dists: np.ndarray
    attributes: np.ndarray
    attribute_names: tuple[str, ...]
    crowd: np.ndarray
    human: np.ndarray
    mood: np.ndarray
    every: list[Path]
    rows: list[int]

    def split(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
        """The world's seeded halves: (reference rows, pool rows, the generator the albums continue)."""
        rng = np.random.default_rng([seed, 20, 1])
        order = rng.permutation(len(self.files))
        return np.sort(order[: len(self.files) // 2]), np.sort(order[len(self.files) // 2 :]), rng


def load_human_taste(
    root: str | Path,
    *,
    backbone: str | Backbone = "efficientnet-lite0",
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    run: RunSettings = DEFAULTS,
) -> HumanTaste:
    """:class:`HumanTaste` over ``root`` (``labels.csv``, ``attributes.csv``, ``images/``), features by
    ``backbone`` (a name or one already built; kept in ``cache_dir``). Raises ``ValueError`` naming the
    file with fewer than 40 usable photos or a missing column, ``LabelFormatError`` /
    ``AttributeHeadsError`` for malformed files."""
    from piaa.data.labels import read_labels
    from piaa.evaluation.worlds import _take, extract_cached
    from piaa.models.attributes import read_attribute_table

    root = Path(root)
    labels = read_labels(root / "labels.csv")
    table = read_attribute_table(root / "attributes.csv")
    n = len(labels) if limit is None else min(limit, len(labels))
    has = set(table.images)
    keep = [i for i in range(n) if labels.files[i] in has]
    files = [root / "images" / labels.files[i] for i in range(n)]
    bb = create_backbone(backbone) if isinstance(backbone, str) else backbone
    kept, maps = extract_cached(files, bb, cache_dir, run)
    pos = {k: i for i, k in enumerate(kept)}
    both = [i for i in keep if i in pos]
    if len(both) < 40:
        raise file_error(
            ValueError, root, f"need at least 40 usable photos for a benchmark, found {len(both)}"
        )
    names = [labels.files[i] for i in both]
    dists = labels.distributions[both]
    attributes = table.rows(names)
    crowd = mean_score(dists.astype(np.float64))  # real crowd means, on 1-10
    col = {a: j for j, a in enumerate(table.names)}
    missing = [a for a in HUMAN_ATTRIBUTES if a not in col]
    if missing:
        raise file_error(ValueError, root / "attributes.csv", f"no {missing[0]} column")
    return HumanTaste(
        files=[files[i] for i in both],
        maps=_take(maps, np.array([pos[i] for i in both])),
        dists=dists,
        attributes=attributes,
        attribute_names=tuple(table.names),
        crowd=crowd,
        human=_residual_z(attributes[:, [col[a] for a in HUMAN_ATTRIBUTES]], crowd),
        mood=_emotion_shares(root / "labels.csv", names),
        every=files,
        rows=both,
    )


def human_world(
    root: str | Path,
    *,
    persons: int = 8,
    album_size: int = 200,
    seed: int = 0,
    backbone: str = "efficientnet-lite0",
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    run: RunSettings = DEFAULTS,
):  # -> EvalWorld (imported late: worlds imports this module)
    """The ``para-human`` world over ``root`` (the layout of ``../shared/data/para``: ``labels.csv``,
    ``attributes.csv``, ``images/``); ``limit`` keeps the first N labelled photos, ``cache_dir`` keeps the
    extracted features between runs (shared with the PARA world's cache). Half the photos (seeded) are
    the reference with their real crowd labels and attribute ratings, the other half the pool. Raises
    ``ValueError`` naming the file with fewer than 40 usable photos or a missing column,
    ``LabelFormatError`` / ``AttributeHeadsError`` for malformed label or attribute files."""
    from PIL import Image

    from piaa.evaluation.simulate import photo_attributes, standardize_attributes
    from piaa.evaluation.worlds import _pooled_world, other_pooled_loader

    bb = create_backbone(backbone)
    t = load_human_taste(root, backbone=bb, limit=limit, cache_dir=cache_dir, run=run)
    it = tqdm(t.files, desc="attributes", unit="img", disable=not run.progress)
    pixels = standardize_attributes(np.stack([photo_attributes(Image.open(f)) for f in it]))
    emb = normalize(t.maps.embedding.float().numpy())
    ref_idx, pool_idx, rng = t.split(seed)
    size = min(album_size, len(pool_idx))
    return _pooled_world(
        bb, t.files, t.maps, emb, t.dists, ref_idx, pool_idx, rng, size,
        human_persons(persons, seed),
        lambda person, idx: person.rate(t.human[idx], t.mood[idx], t.crowd[idx], rng),
        description=f"para-human world: {len(ref_idx)} reference photos with real crowd labels, {persons} "
        f"simulated persons with {size}-photo albums weighing PARA's real attribute ratings and emotion "
        f"votes ({Path(root)}, seed {seed})",
        ref_attributes=t.attributes[ref_idx].astype(np.float32),
        attribute_names=t.attribute_names,
        photo_pixels=pixels[pool_idx].astype(np.float32),
        other_pooled=other_pooled_loader(t.every, t.rows, ref_idx, pool_idx, backbone, cache_dir, run),
    )  # fmt: skip
