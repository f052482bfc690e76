"""The backbone registry: ``create_backbone(name, weights=...)`` and ``list_backbones()``.

``weights`` is ``"imagenet"`` (the default: the pretrained weights the backbone ships or fetches; for
``nima-mobilenet`` these are AVA aesthetic weights, also called ``"ava"``), ``None`` (random, reproducible
initialisation; for tests) or a path to a state-dict file (``nima-mobilenet`` also reads idealo's
original Keras ``.hdf5``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from piaa.backbones.base import (
    Backbone,
    BackboneError,
    BackboneInfo,
    FeatureMaps,
    Preprocess,
    cache_dir,
)

DEFAULT_BACKBONE = "efficientnet-lite0"


@dataclass(frozen=True)
class _Entry:
    factory: Callable[[str | None], Backbone]
    summary: str
    offline: bool  # pretrained weights available without a network


def _lite(name: str) -> Callable[[str | None], Backbone]:
    def make(weights: str | None) -> Backbone:
        from piaa.backbones.efficientnet import EfficientNetLite

        return EfficientNetLite(name, weights)

    return make


def _nima(weights: str | None) -> Backbone:
    from piaa.backbones.nima import NimaMobileNet

    return NimaMobileNet(weights)


def _vgg16(weights: str | None) -> Backbone:
    from piaa.backbones.vgg import VGG16

    return VGG16(weights)


_REGISTRY: dict[str, _Entry] = {
    "efficientnet-lite0": _Entry(_lite("efficientnet-lite0"), "EfficientNet-Lite0, 224 px (default)", True),
    "efficientnet-lite2": _Entry(_lite("efficientnet-lite2"), "EfficientNet-Lite2, 260 px", True),
    "nima-mobilenet": _Entry(
        _nima, "NIMA MobileNet v1 trained on AVA aesthetics (idealo's weights), 224 px", True
    ),
    "vgg16": _Entry(_vgg16, "VGG16 as in the paper, 224 px (weights from torchvision)", False),
}


def list_backbones() -> list[str]:
    return list(_REGISTRY)


def describe_backbones() -> dict[str, str]:
    """One line per backbone, for ``piaa backbones``."""
    return {
        name: e.summary + ("" if e.offline else " — needs its weights file or a download")
        for name, e in _REGISTRY.items()
    }


def create_backbone(name: str = DEFAULT_BACKBONE, weights: str | Path | None = "imagenet") -> Backbone:
    """Build a frozen backbone in eval mode; it carries its preprocessing in ``.preprocess``."""
    if name not in _REGISTRY:
        raise BackboneError(f"unknown backbone {name!r}; choose one of: {', '.join(_REGISTRY)}")
    if weights is not None and weights not in ("imagenet", "default"):
        weights = str(weights)
    elif weights == "default":
        weights = "imagenet"
    return _REGISTRY[name].factory(weights)


__all__ = [
    "DEFAULT_BACKBONE",
    "Backbone",
    "BackboneError",
    "BackboneInfo",
    "FeatureMaps",
    "Preprocess",
    "cache_dir",
    "create_backbone",
    "describe_backbones",
    "list_backbones",
]
