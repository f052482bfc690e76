"""The differentiable personal score that retouching optimises, and tensor <-> image helpers.

The paper's retouching loss (section 4.6), L_aesthetic(x) = 10 - f(x), needs the gradient of f with
respect to the pixels: :func:`pixel_scorer` is the profile as a scorer with ``as_loss=True``
(:class:`piaa.models.scorer.Scorer`, whose pixel path is
:meth:`piaa.backbones.base.Preprocess.tensor`: torch resize, 8-bit rounding with a straight-through
gradient, normalisation). Scores agree with ``Profile.score`` to a few hundredths
(``tests/test_retouch.py``).
"""

from __future__ import annotations

from typing import Any

import torch

from piaa.models.scorer import Scorer

PixelScorer = Scorer


def pixel_scorer(profile: Any) -> Scorer:
    """``scorer(x)``: sRGB pixels (N x 3 x H x W in [0, 1], any size) -> scores (N,) on 1-10,
    differentiable with respect to ``x``; backbone and head frozen, in eval mode. Use
    ``10 - scorer(x)`` as the paper's aesthetic loss."""
    return Scorer(profile, as_loss=True)


def to_tensor(img: Any) -> torch.Tensor:
    """An RGB PIL image or H x W x 3 uint8 array -> 1 x 3 x H x W float tensor in [0, 1]."""
    import numpy as np

    a = np.array(img, dtype=np.uint8)  # a writable copy
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an RGB image, got an array of shape {a.shape}")
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_pil(x: torch.Tensor) -> Any:
    """1 x 3 x H x W (or 3 x H x W) tensor in [0, 1] -> RGB PIL image (rounded to 8 bits)."""
    from PIL import Image

    if x.dim() == 4:
        x = x[0]
    a = x.detach().clamp(0, 1).mul(255.0).add_(0.5).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(a, "RGB")
