"""Personalized retouching (the paper's section 4.6): global exposure, colour and dehaze edits whose
parameters maximise a person's aesthetic score, L_aesthetic(x) = 10 − f(x).

    from piaa.retouch import retouch
    out = retouch(piaa.load_profile("me"), "photo.jpg")          # PIL image, full resolution
"""

from __future__ import annotations

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
