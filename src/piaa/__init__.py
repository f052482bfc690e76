"""piaa — personalized image aesthetic assessment.

Data flows one way: images (``piaa.data``) -> features (``piaa.backbones``, ``piaa.features``) -> an
aesthetic model (``piaa.models``) -> scores on 1-10, higher is better. ``create_scorer`` is the one way
in, like ``pyiqa.create_metric``; the command line mirrors the Python API.
"""

from __future__ import annotations

from piaa.backbones import create_backbone, get_backbone_config, list_backbones
from piaa.features.reference import Reference, build_reference
from piaa.models.personalize import personalize
from piaa.models.profile import Profile, load_profile
from piaa.models.scorer import Scorer, create_scorer, list_scorers
from piaa.models.train import TrainConfig
from piaa.version import __version__

__all__ = [
    "Profile",
    "Reference",
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
]


def __getattr__(name: str) -> object:
    """``piaa.retouch(profile, image, ops=...)`` without importing the retouching code up front."""
    if name == "retouch":
        import piaa.retouch

        return piaa.retouch
    raise AttributeError(f"module 'piaa' has no attribute {name!r}")
