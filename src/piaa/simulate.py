"""Simulated people, for the demo and the benchmarks: where no real personal ratings exist, a seeded
world of raters whose taste is known exactly lets every result be read against what is achievable.

A taste scores a photo from interpretable attributes measured on its pixels (brightness,
colourfulness, contrast, sharpness, warmth) plus, optionally, its content (a direction in a backbone's
embedding space). The crowd shares a "generic" taste; each person mixes it with weights of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

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


EDITS = ("original", "dark", "bright", "muted", "vivid", "flat", "punchy", "soft", "warm", "cool")


def photometric_variant(img: Image.Image, edit: str) -> Image.Image:
    """One of :data:`EDITS`: the retouches a person's taste is most often about."""
    img = img.convert("RGB")
    if edit == "original":
        return img.copy()
    if edit in ("dark", "bright"):
        return ImageEnhance.Brightness(img).enhance(0.55 if edit == "dark" else 1.45)
    if edit in ("muted", "vivid"):
        return ImageEnhance.Color(img).enhance(0.25 if edit == "muted" else 1.9)
    if edit in ("flat", "punchy"):
        return ImageEnhance.Contrast(img).enhance(0.5 if edit == "flat" else 1.5)
    if edit == "soft":
        return img.filter(ImageFilter.GaussianBlur(radius=max(img.size) / 180))
    if edit in ("warm", "cool"):
        a = np.asarray(img, np.float32)
        shift = np.array([18, 4, -18] if edit == "warm" else [-18, 0, 18], np.float32)
        return Image.fromarray(np.clip(a + shift, 0, 255).astype(np.uint8))
    raise ValueError(f"unknown edit {edit!r}; choose one of {', '.join(EDITS)}")


@dataclass
class Taste:
    """utility(photo) = w · standardized attributes (+ content direction · embedding) + noise."""

    weights: np.ndarray  # one per attribute
    content: np.ndarray | None = None  # a unit vector in embedding space
    content_weight: float = 0.0
    noise: float = 0.0
    center: np.ndarray = field(default_factory=lambda: np.array([0.5, 0.35, 0.6, 0.5, 0.5], np.float32))
    scale: np.ndarray = field(default_factory=lambda: np.array([0.15, 0.2, 0.2, 0.3, 0.08], np.float32))

    def utility(self, attributes: np.ndarray, embeddings: np.ndarray | None = None) -> np.ndarray:
        """Noise-free appeal of each photo (rows of ``attributes``)."""
        z = (np.atleast_2d(attributes) - self.center) / self.scale
        u = z @ self.weights
        if self.content is not None and embeddings is not None and self.content_weight:
            e = np.atleast_2d(embeddings)
            e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
            c = e @ self.content
            u = u + self.content_weight * (c - c.mean()) / (c.std() + 1e-9)
        return u

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
