"""Personalized retouching (the paper's section 4.6): global exposure, colour and dehaze edits whose
parameters maximise a person's aesthetic score, L_aesthetic(x) = 10 − f(x).

    import piaa
    out = piaa.retouch("me", "photo.jpg", ops=("exposure", "colour"))   # PIL image, full resolution
    from piaa.retouch import retouch                                    # the same function

The module itself is callable (``piaa.retouch(...)`` is :func:`retouch`), as the issue's API asks,
while ``piaa.retouch.<name>`` still reaches everything below.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from piaa.retouch.core import (
    DEFAULT_METHOD,
    DEFAULT_OPS,
    METHODS,
    ParamPredictor,
    RetouchResult,
    find_params,
    optimize_params,
    retouch,
    retouch_image,
    train_predictor,
)
from piaa.retouch.ops import OPS, apply_ops, get_ops
from piaa.retouch.scoring import PixelScorer, pixel_scorer

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_OPS",
    "METHODS",
    "OPS",
    "ParamPredictor",
    "PixelScorer",
    "RetouchResult",
    "apply_ops",
    "find_params",
    "get_ops",
    "optimize_params",
    "pixel_scorer",
    "retouch",
    "retouch_image",
    "train_predictor",
]


class _CallableModule(types.ModuleType):
    """``piaa.retouch(profile, image, ops=...)`` calls :func:`~piaa.retouch.core.retouch`."""

    def __call__(self, profile: Any, image: Any, *args: Any, **kwargs: Any) -> Any:
        return retouch(profile, image, *args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
