"""piaa — personalized image aesthetic assessment.

Data flows one way: images (``piaa.data``) -> features (``piaa.backbones``, ``piaa.features``) -> an
aesthetic model (``piaa.models``) -> scores on 1-10, higher is better. ``create_scorer`` is the one way
in, like ``pyiqa.create_metric``; the command line mirrors the Python API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from piaa.version import __version__

if TYPE_CHECKING:
    from piaa.backbones import create_backbone, get_backbone_config, list_backbones
    from piaa.features.reference import Reference, build_reference
    from piaa.models.personalize import personalize
    from piaa.models.profile import Profile, load_profile
    from piaa.models.scorer import Scorer, create_scorer, list_scorers
    from piaa.models.train import TrainConfig
    from piaa.retouch import RetouchSettings, retouch_image
    from piaa.settings import RunSettings

# The public names are imported on first use (PEP 562), so that ``import piaa`` and commands that need
# no network (``piaa --help``, a neighbour query from a cached ONNX graph) do not pay for torch.
_LAZY = {
    "create_backbone": "piaa.backbones",
    "get_backbone_config": "piaa.backbones",
    "list_backbones": "piaa.backbones",
    "Reference": "piaa.features.reference",
    "build_reference": "piaa.features.reference",
    "personalize": "piaa.models.personalize",
    "Profile": "piaa.models.profile",
    "load_profile": "piaa.models.profile",
    "Scorer": "piaa.models.scorer",
    "create_scorer": "piaa.models.scorer",
    "list_scorers": "piaa.models.scorer",
    "TrainConfig": "piaa.models.train",
    "RunSettings": "piaa.settings",
    "RetouchSettings": "piaa.retouch",
    "retouch_image": "piaa.retouch",
}


def __getattr__(name: str) -> Any:
    if name == "retouch":  # the sub-package, imported on first use like the names below
        return importlib.import_module("piaa.retouch")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "retouch"})


__all__ = [
    "Profile",
    "Reference",
    "RetouchSettings",
    "RunSettings",
    "Scorer",
    "TrainConfig",
    "__version__",
    "build_reference",
    "create_backbone",
    "create_scorer",
    "get_backbone_config",
    "list_backbones",
    "list_scorers",
    "load_profile",
    "personalize",
    "retouch_image",
]
