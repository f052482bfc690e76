"""piaa — personalized image aesthetic assessment.

Data flows one way: images -> features (a backbone) -> an aesthetic model -> scores on 1-10, higher is
better. See the README for the command line; the Python API mirrors it.
"""

from __future__ import annotations

__version__ = "0.1.0"

from piaa.backbones import create_backbone, list_backbones  # noqa: E402
from piaa.personalize import personalize  # noqa: E402
from piaa.profile import Profile, load_profile  # noqa: E402
from piaa.reference import Reference, build_reference  # noqa: E402
from piaa.train import TrainConfig  # noqa: E402

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
