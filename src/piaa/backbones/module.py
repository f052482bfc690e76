"""The :class:`Backbone` base class: an ``nn.Module``, so importing it imports torch (``base.py`` does
not; ``from piaa.backbones.base import Backbone`` and ``from piaa.backbones import Backbone`` load this
module on first use)."""

from __future__ import annotations

import torch
from torch import nn

from piaa.backbones.base import BackboneInfo, FeatureMaps, Preprocess


class Backbone(nn.Module):
    """An ImageNet network cut so that it yields :class:`FeatureMaps`; always frozen and in eval mode
    unless a caller asks otherwise (full fine-tuning)."""

    info: BackboneInfo

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def preprocess(self) -> Preprocess:
        return self.info.preprocess

    def forward(self, x: torch.Tensor) -> FeatureMaps:  # pragma: no cover - abstract
        raise NotImplementedError
