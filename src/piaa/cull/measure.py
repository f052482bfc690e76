"""One decode per photo gives everything culling needs: the network's input pixels and the technical
measurements behind the flags (sharpness, clipped shares, a pixel digest for exact duplicates, a
thumbnail).

Measurements are taken on the photo scaled to a fixed long side, so that frames of different sizes
compare. Sharpness is the variance of the 4-neighbour Laplacian of the luma (Pech-Pacheco et al., ICPR
2000, the usual "variance of Laplacian" focus measure) at :data:`SHARPNESS_SIZE` pixels, divided by the
luma's variance so that a darker frame of a burst is not taken for a blurred one; of the variants tried
on a tuning shoot (``docs/guide/cull.md``) it separated blurred frames best (AUC 0.99) and is cheap.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from piaa.backbones import Preprocess

ANALYSIS_SIZE = 384  # long side, pixels, of the image clipping and eyes are measured on
SHARPNESS_SIZE = 192  # long side, pixels, of the image sharpness is measured on
THUMB_SIZE = 200  # long side of the report's thumbnails
CLIP_HIGH, CLIP_LOW = 250, 5  # luma at or above / at or below counts as clipped (0-255)


@dataclass(frozen=True)
class Measures:
    """What the flags and the duplicate check are decided from (one photo)."""

    sharpness: float  # variance of the Laplacian over the variance of the luma, >= 0; larger is sharper
    highlights: float  # share of pixels with luma >= CLIP_HIGH, in [0, 1]
    shadows: float  # share of pixels with luma <= CLIP_LOW, in [0, 1]
    digest: str  # sha1 of the analysis image and the decoded size: equal pixels give equal digests
    tiny: np.ndarray  # 16 x 16 x 3 float32 thumbnail: a cheap first test for exact duplicates
    thumb: bytes | None = None  # JPEG bytes of a THUMB_SIZE thumbnail, when asked for
    eyes_closed: bool | None = None  # None: no face found, or no eye model


def luma(rgb: np.ndarray) -> np.ndarray:
    """H x W x 3 uint8 -> H x W float32 luma (Rec. 601 weights), 0-255."""
    return rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def sharpness(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of an H x W luma image (interior pixels) over the luma's
    variance (0 for a flat image): unchanged when the exposure scales the luma."""
    g = np.asarray(gray, np.float32)
    if min(g.shape) < 3 or g.var() < 1e-6:
        return 0.0
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    return float(lap.var() / g.var())


def analysis_image(img: Image.Image, size: int = ANALYSIS_SIZE) -> Image.Image:
    """``img`` scaled so its long side is ``size`` (up or down: every frame is measured at one scale)."""
    w, h = img.size
    scale = size / max(w, h)
    target = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img if target == img.size else img.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)


def measure(img: Image.Image, *, thumbnail: bool = False, eyes: object = None) -> Measures:
    """The measurements of one decoded (upright, sRGB, RGB) photo. ``eyes``: a callable
    ``(H x W x 3 uint8) -> bool | None`` (:mod:`piaa.cull.eyes`), or None for no eye check."""
    small = analysis_image(img)
    rgb = np.asarray(small, dtype=np.uint8)
    # of the analysis image, not the full one: hashing 24 MP took as long as decoding it
    digest = hashlib.sha1(f"{img.size}".encode() + rgb.tobytes()).hexdigest()
    y = luma(rgb)
    tiny = np.asarray(small.resize((16, 16), Image.Resampling.BOX), np.float32)
    thumb = None
    if thumbnail:
        t = img.copy()
        t.thumbnail((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        t.save(buf, format="JPEG", quality=82)
        thumb = buf.getvalue()
    closed = eyes(rgb) if callable(eyes) else None
    return Measures(
        sharpness=sharpness(luma(np.asarray(analysis_image(small, SHARPNESS_SIZE), dtype=np.uint8))),
        highlights=float((y >= CLIP_HIGH).mean()),
        shadows=float((y <= CLIP_LOW).mean()),
        digest=digest,
        tiny=tiny,
        thumb=thumb,
        eyes_closed=closed,
    )


def network_pixels(img: Image.Image, preprocess: Preprocess) -> np.ndarray:
    """The backbone's input (size x size x 3 uint8), exactly as ``piaa score`` makes it."""
    return preprocess.from_pil(img)


__all__ = [
    "ANALYSIS_SIZE",
    "SHARPNESS_SIZE",
    "CLIP_HIGH",
    "CLIP_LOW",
    "Measures",
    "analysis_image",
    "luma",
    "measure",
    "sharpness",
]
