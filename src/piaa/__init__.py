"""piaa — personalized image aesthetic assessment.

Data flows one way: images -> features (a backbone) -> an aesthetic model -> scores on 1-10, higher is
better. See the README for the command line; the Python API mirrors it.
"""

from __future__ import annotations

from piaa.backbones import create_backbone, list_backbones
from piaa.features.reference import Reference, build_reference
from piaa.models.personalize import personalize
from piaa.models.profile import Profile, load_profile
from piaa.models.train import TrainConfig
from piaa.version import __version__

__all__ = [
    "Profile",
    "Reference",
    "TrainConfig",
    "__version__",
    "build_reference",
    "create_backbone",
    "list_backbones",
    "load_profile",
    "personalize",
]
