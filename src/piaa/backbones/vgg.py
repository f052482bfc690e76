"""VGG16 (Simonyan & Zisserman), the paper's backbone.

Built here layer for layer like torchvision's ``vgg16`` so that torchvision's ImageNet state dict
(``features.N.weight``...) loads as is, without needing torchvision itself. Taps, as in the paper's
Fig. 4: Z1 = conv4_3 (after ReLU), Z2 = conv5_3 (after ReLU), Z3 = pool5; the embedding is pool5
averaged over space (512-d).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from piaa.backbones import get_backbone_config
from piaa.backbones.base import (
    Backbone,
    BackboneError,
    BackboneInfo,
    FeatureMaps,
    channel_stats,
    download_weights,
    file_hash,
    load_state_dict_file,
    seeded,
)

WEIGHTS_URL = get_backbone_config("vgg16").weights_url
_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
_Z1, _Z2, _Z3 = 22, 29, 30  # indices in ``features`` after which conv4_3, conv5_3 and pool5 come out
_LOW = (3, 8, 15)  # relu1_2, relu2_2, relu3_3: the low-level statistics (``FeatureMaps.stats``)


def _features() -> nn.Sequential:
    layers: list[nn.Module] = []
    c = 3
    for v in _CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            c = int(v)
    return nn.Sequential(*layers)


def fetch_imagenet_weights() -> Path:
    """torchvision's file from torch's hub cache, downloading it there if it is not there yet."""
    return download_weights("vgg16", WEIGHTS_URL)


class VGG16(Backbone):
    def __init__(self, weights: str | None = "imagenet") -> None:
        super().__init__()
        with seeded(weights is None):
            self.features = _features()
        if weights is None:
            w_label, w_hash = "random", "random"
        else:
            path = fetch_imagenet_weights() if weights == "imagenet" else Path(weights)
            sd = load_state_dict_file(path)
            feats = {k[len("features.") :]: v for k, v in sd.items() if k.startswith("features.")}
            try:
                self.features.load_state_dict(feats)
            except RuntimeError as e:
                first = str(e).strip().splitlines()[0]
                raise BackboneError(f"{path}: not a torchvision vgg16 state dict ({first})") from None
            w_label, w_hash = weights, file_hash(path)
        self.info = BackboneInfo(
            get_backbone_config("vgg16"),  # ImageNet mean and std; sizes checked in test_backbones.py
            weights=str(w_label),
            weights_hash=w_hash,
            description="VGG16, ImageNet-1k (torchvision weights), taps: conv4_3 / conv5_3 / pool5",
        )
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> FeatureMaps:
        z1 = z2 = x
        low = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _LOW:
                low.append(x)
            elif i == _Z1:
                z1 = x
            elif i == _Z2:
                z2 = x
        return FeatureMaps(z1, z2, x, x.mean(dim=(2, 3)), channel_stats(*low))
