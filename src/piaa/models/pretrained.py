"""Profiles that ship with piaa and need no reference corpus and no preferences.

``nima-ava``: the generic AVA aesthetic score of NIMA (Talebi & Milanfar 2018; idealo's MobileNet
trained on AVA, shipped in ``piaa/backbones/weights``). It is written as piaa's own head, so it can be
fine-tuned on a person's pairs like any generic model (``piaa personalize --generic nima-ava``): NIMA's
classifier reads the global average of the last map, which is exactly the head's pooled Z2 without
attention; the head's weights for pooled Z1 and for the low-level statistics start at zero, so before
any fine-tuning its scores are NIMA's own (``tests/test_pretrained.py``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from piaa.backbones import create_backbone
from piaa.models.head import AestheticHead, HeadConfig
from piaa.models.profile import Profile
from piaa.registry import Registry

PRETRAINED: Registry = Registry("built-in profile")
"""Profiles that ship with piaa, by name -> builder (``piaa.load_profile(name)``)."""
register_pretrained = PRETRAINED.register


def nima_ava(*, backbone_weights: str | Path | None = None) -> Profile:
    """NIMA's AVA model as a profile: scores on 1-10, higher is better. Raises ``BackboneError`` for
    unusable ``backbone_weights`` (default: the shipped AVA weights)."""
    backbone = create_backbone("nima-mobilenet", backbone_weights or "ava")
    c1, c2, _ = backbone.info.channels
    head = AestheticHead(
        HeadConfig(channels=backbone.info.channels, attention=False, stats=backbone.info.stats_dim)
    )
    with torch.no_grad():
        head.fc.weight.zero_()
        head.fc.weight[:, c1 : c1 + c2] = backbone.dense_1.weight
        head.fc.bias.copy_(backbone.dense_1.bias)
    config = {
        "name": "nima-ava",
        "description": "NIMA MobileNet trained on AVA (idealo, Apache-2.0): the crowd's generic score",
    }
    return Profile(head, backbone, config)


PRETRAINED.register("nima-ava", nima_ava, licence="Apache-2.0", reference=False)
