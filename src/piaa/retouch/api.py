"""The public face of retouching (the paper's section 4.6): one photo or a folder, retouched toward a
person's taste. The layers below run one way: :mod:`.ops` (the edit operators) and :mod:`.full`
(applying them at full resolution) at the bottom, :mod:`.core` (the loss 10 − f(x), finding the
parameters, :class:`RetouchSettings`), :mod:`.cache` (learned predictors saved with a profile),
:mod:`.batch` (folders, outputs, reports), and this module on top.

    from piaa.retouch import RetouchSettings, retouch_image
    res = retouch_image("me", "photo.jpg", RetouchSettings(ops=("exposure", "colour"), strength=0.8))
    res.image.save("out.jpg"); print(res.params, res.score_before, res.score_after)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from piaa.retouch.batch import prepare_predictors, retouch_files
from piaa.retouch.core import (
    MIN_ALBUM,
    ParamPredictor,
    RetouchResult,
    RetouchSettings,
    album_thumbnails,
    apply_retouch,
    train_predictor,
)
from piaa.retouch.scoring import PixelScorer, pixel_scorer
from piaa.settings import RunSettings, torch_threads

__all__ = ["RetouchResult", "RetouchSettings", "retouch_files", "retouch_image"]


def retouch_image(
    profile: Any,
    image: str | Path | Image.Image,
    settings: RetouchSettings | None = None,
    *,
    predictor: ParamPredictor | None = None,
    album: Sequence[str | Path | Image.Image] | None = None,
    scorer: PixelScorer | None = None,
    run: RunSettings | None = None,
) -> RetouchResult:
    """Retouch ``image`` (a path or PIL image) toward the taste of ``profile`` (a
    :class:`~piaa.models.profile.Profile`, a profile folder, a built-in name such as ``"nima-ava"``, or
    None with ``scorer=``): the paper's section 4.6 with global operators.

    Returns a :class:`~piaa.retouch.core.RetouchResult`: ``.image`` (sRGB PIL, the input's upright
    size), ``.params`` (by operator, in their units: EV, curve, saturation, ...), ``.score_before`` and
    ``.score_after`` (1-10, on the backbone-sized thumbnail), ``.method`` (which ran).

    ``settings.method`` ``"auto"`` (the default) uses a learned predictor: ``predictor=`` when given,
    else one trained on ``album=`` photos (at least :data:`~piaa.retouch.core.MIN_ALBUM`; not saved),
    else the one saved with the profile for these ops (:mod:`piaa.retouch.cache`), training and saving
    it once on the profile's album when there is none; with nothing to train on, per-photo
    optimisation. ``"learned"`` insists on a predictor.

    Raises :class:`~piaa.errors.UsageError` for bad settings,
    :class:`~piaa.errors.ProfileError` for an unusable profile and :class:`~piaa.errors.ImageError`
    for an unreadable file (one line each). ``run``: how (default :meth:`RunSettings.resolve`);
    torch's thread count is held at ``run.torch_threads`` throughout."""
    settings = settings or RetouchSettings()
    with torch_threads(RunSettings.resolve(run).torch_threads):
        return _retouch_image(profile, image, settings, predictor, album, scorer)


def _retouch_image(
    profile: Any,
    image: str | Path | Image.Image,
    settings: RetouchSettings,
    predictor: ParamPredictor | None,
    album: Sequence[str | Path | Image.Image] | None,
    scorer: PixelScorer | None,
) -> RetouchResult:
    if isinstance(profile, (str, os.PathLike)):
        from piaa.models.profile import load_profile

        profile = load_profile(profile)
    scorer = scorer or pixel_scorer(profile)
    method = settings.method
    if method != "optimize" and predictor is None:
        if album:  # the caller's photos: trained here, kept by the caller (predictor=) if it likes
            if method == "learned" or len(album) >= MIN_ALBUM:
                pre = scorer.preprocess
                thumbs = album_thumbnails(album, pre.size, interpolation=pre.interpolation)
                predictor = train_predictor(scorer, thumbs, settings.op_list)
        elif profile is not None:  # the one saved with the profile, else trained once on its album
            method, found = prepare_predictors(profile, {"personal": scorer}, settings.ops, method)
            predictor = found["personal"]
    if method == "auto" and predictor is None:
        method = "optimize"
    return apply_retouch(scorer, image, dataclasses.replace(settings, method=method), predictor)
