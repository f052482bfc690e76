"""Personalized retouching (the paper's section 4.6): global exposure, colour and dehaze edits whose
parameters maximise a person's aesthetic score, L_aesthetic(x) = 10 − f(x).

    from piaa.retouch import RetouchSettings, retouch_image
    res = retouch_image("me", "photo.jpg", RetouchSettings(ops=("exposure", "colour")))
    res.image                                    # PIL image, full resolution; res.params, res.score_after

Layers, lowest first (each imports only those below it, ``tests/test_retouch_layers.py``):
:mod:`.ops` (the operators), :mod:`.scoring` (the person's model on pixels), :mod:`.full` (full
resolution), :mod:`.core` (the loss, finding parameters, :class:`RetouchSettings`), :mod:`.cache`
(learned predictors saved with a profile), :mod:`.batch` (folders, outputs, reports), :mod:`.api` (the
public functions).
"""

from __future__ import annotations

from piaa.retouch.api import retouch_files, retouch_image
from piaa.retouch.core import (
    DEFAULT_METHOD,
    DEFAULT_OPS,
    METHODS,
    ParamPredictor,
    RetouchResult,
    RetouchSettings,
    apply_retouch,
    find_params,
    optimize_params,
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
    "RetouchSettings",
    "apply_ops",
    "apply_retouch",
    "find_params",
    "get_ops",
    "optimize_params",
    "pixel_scorer",
    "retouch_files",
    "retouch_image",
    "train_predictor",
]
