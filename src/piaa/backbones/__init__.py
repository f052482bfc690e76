"""The backbone registry: ``create_backbone(name, weights=...)``, ``list_backbones()`` and
``get_backbone_config(name)`` (timm's ``get_pretrained_cfg``: what a backbone needs and gives, readable
without building the network).

``weights`` is ``"imagenet"`` (the default: the pretrained weights the backbone ships or fetches; for
``nima-mobilenet`` these are AVA aesthetic weights, also called ``"ava"``), ``None`` (random, reproducible
initialisation; for tests) or a path to a state-dict file (``nima-mobilenet`` also reads idealo's
original Keras ``.hdf5``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from piaa.backbones.base import (
    BackboneConfig,
    BackboneError,
    BackboneInfo,
    FeatureMaps,
    Preprocess,
    cache_dir,
)
from piaa.registry import Registry

if TYPE_CHECKING:
    from piaa.backbones.module import Backbone

DEFAULT_BACKBONE = "efficientnet-lite0"


@dataclass(frozen=True)
class _Entry:
    factory: Callable[[str | None], Backbone]
    config: BackboneConfig

    @property
    def summary(self) -> str:
        return self.config.summary

    @property
    def offline(self) -> bool:
        return self.config.offline


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


_LITE = Preprocess(size=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
_ENTRIES: dict[str, _Entry] = {
    "efficientnet-lite0": _Entry(
        _lite("efficientnet-lite0"),
        BackboneConfig(
            "efficientnet-lite0", _LITE, (112, 1280, 1280), 1280, 224,
            "EfficientNet-Lite0, 224 px (default)", "Apache-2.0", True,
        ),
    ),
    "efficientnet-lite2": _Entry(
        _lite("efficientnet-lite2"),
        BackboneConfig(
            "efficientnet-lite2", dataclasses.replace(_LITE, size=260), (120, 1280, 1280), 1280, 240,
            "EfficientNet-Lite2, 260 px", "Apache-2.0", True,
        ),
    ),
    "nima-mobilenet": _Entry(
        _nima,
        BackboneConfig(
            "nima-mobilenet", dataclasses.replace(_LITE, interpolation="nearest", draft=False),
            (512, 1024, 1024), 1024, 960,
            "NIMA MobileNet v1 trained on AVA aesthetics (idealo's weights), 224 px", "Apache-2.0", True,
            "https://github.com/idealo/image-quality-assessment/raw/master/models/MobileNet/"
            "weights_mobilenet_aesthetic_0.07.hdf5",
        ),
    ),
    "vgg16": _Entry(
        _vgg16,
        BackboneConfig(
            "vgg16", Preprocess(size=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
            (512, 512, 512), 512, 896, "VGG16 as in the paper, 224 px (weights from torchvision)",
            "BSD-3-Clause (torchvision weights)", False,
            "https://download.pytorch.org/models/vgg16-397923af.pth",
        ),
    ),
}  # fmt: skip


BACKBONES: Registry[_Entry] = Registry("backbone", error=BackboneError)
"""The backbones by name; each entry's metadata is readable without building the network."""
for _name, _entry in _ENTRIES.items():
    BACKBONES.register(_name, _entry, offline=_entry.offline)


def _pair_entry(first: str, second: str) -> _Entry:
    """The registry entry of :class:`~piaa.backbones.pair.BackbonePair` (first, second): its config
    derived from the parts' (channels and statistics added, the first part's embedding and input).
    Raises ``BackboneError`` when the parts normalise their input differently."""
    a, b = BACKBONES.get(first).config, BACKBONES.get(second).config
    pa, pb = a.preprocess, b.preprocess
    if (pa.size, pa.mean, pa.std) != (pb.size, pb.mean, pb.std):
        raise BackboneError(f"{first} and {second} take differently normalised inputs; they cannot share one")
    name = f"{first}+{second}"

    def make(weights: str | None) -> Backbone:
        from piaa.backbones.pair import BackbonePair

        return BackbonePair(first, second, weights)

    config = BackboneConfig(
        name, pa,
        tuple(x + y for x, y in zip(a.channels, b.channels, strict=True)),  # type: ignore[arg-type]
        a.embed_dim, a.stats_dim + b.stats_dim,
        f"{first} and {second} together: maps concatenated along channels, {first}'s embedding "
        f"for neighbours, {pa.size} px (two network passes per photo)",
        a.license if a.license == b.license else f"{a.license} ({first}), {b.license} ({second})",
        a.offline and b.offline,
    )  # fmt: skip
    return _Entry(make, config)


_pair = _pair_entry("efficientnet-lite0", "nima-mobilenet")
BACKBONES.register(_pair.config.name, _pair, offline=_pair.offline)


def list_backbones(*, offline: bool | None = None) -> list[str]:
    """Registered backbone names; ``offline=True``: only those whose weights ship with piaa."""
    return BACKBONES.names() if offline is None else BACKBONES.names(offline=offline)


def describe_backbones() -> dict[str, str]:
    """One line per backbone, for ``piaa backbones``."""
    return {
        name: e.summary + ("" if e.offline else " — needs its weights file or a download")
        for name, e in BACKBONES.items()
    }


def get_backbone_config(name: str) -> BackboneConfig:
    """Metadata of a registered backbone, without building it. Raises ``BackboneError`` if unknown."""
    return BACKBONES.get(name).config


def create_backbone(name: str = DEFAULT_BACKBONE, weights: str | Path | None = "imagenet") -> Backbone:
    """Build a frozen backbone in eval mode; it carries its preprocessing in ``.preprocess``."""
    get_backbone_config(name)
    if weights is not None and weights not in ("imagenet", "default"):
        weights = str(weights)
    elif weights == "default":
        weights = "imagenet"
    return BACKBONES.get(name).factory(weights)


def __getattr__(name: str) -> Any:
    """``Backbone`` (an ``nn.Module``) is imported on first use: the rest of this package loads without
    torch, which is what lets a neighbour query run from a cached ONNX graph in a fraction of a second."""
    if name == "Backbone":
        from piaa.backbones.module import Backbone

        return Backbone
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_BACKBONE",
    "Backbone",
    "BackboneConfig",
    "BackboneError",
    "BackboneInfo",
    "FeatureMaps",
    "Preprocess",
    "cache_dir",
    "create_backbone",
    "describe_backbones",
    "get_backbone_config",
    "list_backbones",
]
