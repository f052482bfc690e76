"""Simulated people, for the demo and the benchmarks: where no real personal ratings exist, a seeded
world of raters whose taste is known exactly lets every result be read against what is achievable.

A taste scores a photo from interpretable attributes measured on its pixels (brightness,
colourfulness, contrast, sharpness, warmth) and, for the benchmark's persons, its content (kinds of
subject: clusters of a backbone's embeddings). The crowd shares a "generic" taste; each person mixes
it with weights of their own.

Two crowds: :class:`World`'s is simulated from the same kind of pixel and content features piaa learns
from (so a model of those features can in principle recover it exactly); :func:`para_persons`' is real,
PARA's per-image crowd means, which no simulated feature explains (the PARA world of
:func:`piaa.evaluation.worlds.para_world`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

ATTRIBUTES = ("brightness", "colourfulness", "contrast", "sharpness", "warmth")
_SIDE = 160  # attributes are measured on a small copy: fast, and what a glance at a photo sees


def photo_attributes(img: Image.Image | np.ndarray) -> np.ndarray:
    """The five :data:`ATTRIBUTES` of one photo, each roughly in [0, 1]."""
    im = img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img, np.uint8))
    im = im.convert("RGB")
    im.thumbnail((_SIDE, _SIDE), Image.Resampling.BILINEAR)
    a = np.asarray(im, np.float32) / 255.0
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    lum = 0.299 * r + 0.587 * g + 0.114 * b
    # Hasler & Suesstrunk (2003) colourfulness, scaled to about [0, 1]
    rg, yb = r - g, 0.5 * (r + g) - b
    colourfulness = (np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())) / 0.6
    lap = lum[1:-1, 1:-1] * 4 - lum[:-2, 1:-1] - lum[2:, 1:-1] - lum[1:-1, :-2] - lum[1:-1, 2:]
    sharpness = np.sqrt(lap.var()) / 0.15
    warmth = 0.5 + (r.mean() - b.mean())
    return np.array([lum.mean(), colourfulness, lum.std() / 0.3, sharpness, warmth], dtype=np.float32)


def haze(img: Image.Image | np.ndarray) -> float:
    """How hazy a photo looks, about [0, 1]: the mean dark channel (He et al., CVPR 2009: the minimum
    over colour channels and a 7 x 7 patch) of a small copy. Haze-free outdoor photos have dark
    channels near 0; haze lifts them toward the airlight. Not one of :data:`ATTRIBUTES` (existing
    tastes keep five weights); the retouching benchmark's "likes clear photos" person reads it."""
    from scipy.ndimage import minimum_filter

    im = img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img, np.uint8))
    im = im.convert("RGB")
    im.thumbnail((_SIDE, _SIDE), Image.Resampling.BILINEAR)
    a = np.asarray(im, np.float32) / 255.0
    return float(minimum_filter(a.min(axis=2), size=7, mode="nearest").mean())


@dataclass
class Taste:
    """utility(photo) = w · standardized attributes, judged with noise. (Tastes over content too are
    :class:`SimulatedPerson`.)"""

    weights: np.ndarray  # one per attribute
    noise: float = 0.0
    center: np.ndarray = field(default_factory=lambda: np.array([0.5, 0.35, 0.6, 0.5, 0.5], np.float32))
    scale: np.ndarray = field(default_factory=lambda: np.array([0.15, 0.2, 0.2, 0.3, 0.08], np.float32))

    def utility(self, attributes: np.ndarray) -> np.ndarray:
        """Noise-free appeal of each photo (rows of ``attributes``)."""
        return ((np.atleast_2d(attributes) - self.center) / self.scale) @ self.weights

    def prefers(self, u_a: float, u_b: float, rng: np.random.Generator) -> bool:
        """A judgement with rating noise: does the person pick ``a`` over ``b``?"""
        return bool(u_a + rng.normal(0, self.noise) > u_b + rng.normal(0, self.noise))


def crowd_taste() -> Taste:
    """The generic appeal the crowd shares: well exposed, crisp, contrasty, moderately colourful."""
    return Taste(weights=np.array([0.0, 0.4, 0.6, 0.9, 0.0], np.float32))


def crowd_histograms(
    appeal: np.ndarray, rng: np.random.Generator, raters: int = 200, spread: float = 1.6
) -> np.ndarray:
    """AVA-style 10-bin vote counts: each rater scores 5.5 + spread * appeal (standardized) plus a
    rater bias and noise, rounded and clipped to 1..10."""
    z = (appeal - appeal.mean()) / (appeal.std() + 1e-9)
    bias = rng.normal(0, 0.6, size=(1, raters))
    votes = 5.5 + spread * z[:, None] + bias + rng.normal(0, 1.2, size=(len(z), raters))
    votes = np.clip(np.rint(votes), 1, 10).astype(int)
    return np.stack([np.bincount(v - 1, minlength=10) for v in votes])


def judge_pairs(
    taste: Taste, utilities: np.ndarray, pairs: Sequence[tuple[int, int]], rng: np.random.Generator
) -> list[tuple[int, int]]:
    """Turn index pairs into (preferred, other) as the simulated person would click."""
    out = []
    for a, b in pairs:
        out.append((a, b) if taste.prefers(utilities[a], utilities[b], rng) else (b, a))
    return out


def random_user(rng: np.random.Generator, personal: float = 1.0, noise: float = 0.3) -> Taste:
    """A person: the crowd's taste plus personal weights on the attributes (``personal`` sets how far
    from the crowd), judging with some noise."""
    w = crowd_taste().weights + personal * rng.normal(0, 1, len(ATTRIBUTES)).astype(np.float32)
    return Taste(weights=w.astype(np.float32), noise=noise)


# ------------------------------------------------------------------------------- simulated world


@dataclass
class SimulatedPerson:
    """One rater: weights on the attributes and on kinds of subject (content clusters)."""

    weights: np.ndarray  # one per attribute
    topics: np.ndarray  # one per content cluster
    content_weight: float
    generic_share: float  # how much of the crowd's taste this person shares, in [0, 1]
    noise: float
    crowd_weight: float = 0.0  # the personal part's own weight on the crowd appeal (PARA world)

    def utility(self, attrs_z: np.ndarray, topic_mix: np.ndarray, crowd: np.ndarray) -> np.ndarray:
        """Noise-free appeal (standardized): ``generic_share`` of the crowd's, the rest personal."""
        personal = _z(attrs_z @ self.weights) + self.content_weight * _z(topic_mix @ self.topics)
        if self.crowd_weight:
            personal = personal + self.crowd_weight * _z(crowd)
        return self.generic_share * _z(crowd) + (1 - self.generic_share) * _z(personal)

    def rate(
        self, attrs_z: np.ndarray, topic_mix: np.ndarray, crowd: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """(noise-free utility, ratings on 1-5 like REAL-CUR) of an album: the noisy utility cut at its
        10/30/70/90 % quantiles."""
        u = self.utility(attrs_z, topic_mix, crowd)
        noisy = u + rng.normal(0, self.noise, len(u))
        cuts = np.quantile(noisy, [0.1, 0.3, 0.7, 0.9])
        return u, 1 + np.searchsorted(cuts, noisy)


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-9)


def content_topics(emb: np.ndarray, k: int = 12, seed: int = 0) -> np.ndarray:
    """Soft membership of each photo in ``k`` kinds of subject: k-means clusters of the (normalised)
    embeddings, softmax over cosine similarity to the centroids. "Likes dogs, not food" becomes a
    weight per cluster."""
    import faiss

    km = faiss.Kmeans(emb.shape[1], k, niter=25, seed=seed, spherical=True, verbose=False)
    km.train(np.ascontiguousarray(emb, dtype=np.float32))
    sims = emb @ km.centroids.T
    e = np.exp((sims - sims.max(1, keepdims=True)) / 0.05)
    return e / e.sum(1, keepdims=True)


@dataclass
class World:
    """Seeded people over a set of photos: a crowd (the AVA role) and persons with albums."""

    crowd_weights: np.ndarray
    crowd_topics: np.ndarray
    persons: list[SimulatedPerson]

    @classmethod
    def create(cls, topics: int, persons: int, seed: int = 0) -> World:
        rng = np.random.default_rng(seed)
        crowd_w = crowd_taste().weights.astype(np.float64)
        crowd_t = rng.normal(0, 0.5, topics)
        people = []
        for _ in range(persons):
            w = 0.5 * crowd_w + rng.normal(0, 1, len(ATTRIBUTES))
            t = 0.3 * crowd_t + rng.normal(0, 1, topics)
            people.append(
                SimulatedPerson(w, t, float(rng.uniform(0.3, 1.0)), float(rng.uniform(0.2, 0.6)), noise=0.35)
            )
        return cls(crowd_w, crowd_t, people)

    def crowd_utility(self, attrs_z: np.ndarray, topic_mix: np.ndarray) -> np.ndarray:
        return _z(attrs_z @ self.crowd_weights) + 0.5 * _z(topic_mix @ self.crowd_topics)

    def crowd_histograms(
        self, attrs_z: np.ndarray, topic_mix: np.ndarray, rng: np.random.Generator, raters: int = 100
    ) -> np.ndarray:
        """10-bin vote counts from many raters, each the crowd's taste plus a deviation of their own
        (on the attributes), a personal offset and per-vote noise."""
        base = self.crowd_utility(attrs_z, topic_mix)
        votes = np.empty((len(base), raters), dtype=int)
        for r in range(raters):
            u = _z(base + 0.5 * _z(attrs_z @ rng.normal(0, 0.5, len(ATTRIBUTES))))
            offset = rng.normal(0.0, 0.5)
            votes[:, r] = np.clip(np.rint(5.5 + 1.6 * u + offset + rng.normal(0, 1.0, len(u))), 1, 10)
        return np.stack([np.bincount(v - 1, minlength=10) for v in votes])

    def ratings(
        self, person: SimulatedPerson, attrs_z: np.ndarray, topic_mix: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """(noise-free utility, ratings on 1-5 like REAL-CUR) of an album (:meth:`SimulatedPerson.rate`
        with this world's crowd)."""
        return person.rate(attrs_z, topic_mix, self.crowd_utility(attrs_z, topic_mix), rng)


def para_persons(topics: int, persons: int, seed: int = 0) -> list[SimulatedPerson]:
    """Persons for a world whose crowd appeal is real (PARA's crowd means): seeded, like :class:`World`'s
    in scale (content weight 0.3-1.0, generic share 0.2-0.6, noise 0.35), with personal weights on the
    attributes and content drawn around zero (no simulated crowd taste to lean towards) and a weight of
    their own on the crowd appeal, N(0, 0.5): the personal part may follow the crowd or go against it."""
    rng = np.random.default_rng([seed, 7])
    people = []
    for _ in range(persons):
        w = rng.normal(0, 1, len(ATTRIBUTES))
        t = rng.normal(0, 1, topics)
        content, share, crowd_w = rng.uniform(0.3, 1.0), rng.uniform(0.2, 0.6), rng.normal(0, 0.5)
        people.append(SimulatedPerson(w, t, float(content), float(share), 0.35, float(crowd_w)))
    return people


def standardize_attributes(attrs: np.ndarray) -> np.ndarray:
    """Attributes as z-scores with the fixed centre/scale of :class:`Taste` (comparable across sets)."""
    t = crowd_taste()
    return (attrs - t.center) / t.scale
