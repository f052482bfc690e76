"""A differentiable personal score: pixels -> score on 1-10, in eager PyTorch, for retouching losses.

The scoring path of :class:`piaa.profile.Profile` prepares pixels with Pillow and numpy and runs the
backbone in ONNX Runtime: fast, but not differentiable. The paper's retouching loss (section 4.6),
L_aesthetic(x) = 10 − f(x), needs the gradient of f with respect to the pixels, so this module redoes
the backbone's :class:`~piaa.backbones.base.Preprocess` in torch: resize the whole image to
``size`` x ``size`` ("squash", antialiased, the backbone's interpolation), then normalise. Pillow's
resize filter differs slightly from torch's antialiased one, so scores agree with ``Profile.score`` to a
few hundredths, not exactly (``tests/test_retouch.py``).

The resized pixels are rounded to 8 bits in the forward pass, with the identity as gradient
("straight-through", Bengio et al. 2013): the backbone's early-layer statistics, which the head reads,
respond to the fine-grained noise of 8-bit quantization, and every image the head was trained on (and
every saved result) is 8-bit. Measured on a steep test head: without rounding the scores differ from
``Profile.score`` by up to 0.19, with it by up to 0.04.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from piaa.backbones.base import Backbone, Preprocess
from piaa.model import AestheticHead


class PixelScorer(nn.Module):
    """``scorer(x)``: sRGB pixels (N x 3 x H x W, float in [0, 1], any H and W) -> personal scores (N,)
    on 1-10, differentiable with respect to ``x``.

    The backbone and head are frozen and in eval mode (no dropout); gradients flow to the pixels only.
    The head is copied so freezing it does not change the profile's own module. Raises ValueError for
    a tensor that is not N x 3 x H x W."""

    def __init__(self, backbone: Backbone, head: AestheticHead) -> None:
        super().__init__()
        pre: Preprocess = backbone.preprocess
        if pre.resize != "squash":
            raise ValueError(f"pixel scoring supports resize='squash' only, not {pre.resize!r}")
        self.size = pre.size
        self.mode = pre.interpolation
        self.backbone = backbone.eval().requires_grad_(False)
        self.head = copy.deepcopy(head).eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(pre.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(pre.std, dtype=torch.float32).view(1, 3, 1, 1))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] pixels -> the backbone's normalised size x size input (the torch twin of Preprocess)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an N x 3 x H x W tensor, got shape {tuple(x.shape)}")
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(
                x, size=(self.size, self.size), mode=self.mode, antialias=True, align_corners=False
            )
            x = x.clamp(0.0, 1.0)  # bicubic overshoots; Pillow's uint8 result is clipped too
        x = x + (torch.round(x * 255.0) / 255.0 - x).detach()  # 8-bit, straight-through gradient
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head.score(self.backbone(self.prepare(x)))

    def train(self, mode: bool = True) -> PixelScorer:  # always eval: a loss must not see dropout
        return super().train(False)


def pixel_scorer(profile: Any) -> PixelScorer:
    """The differentiable scorer of a :class:`~piaa.profile.Profile` (anything with ``.backbone`` and
    ``.head``). Use ``10 - scorer(x)`` as the paper's aesthetic loss."""
    return PixelScorer(profile.backbone, profile.head)


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
