"""One way in, like ``pyiqa.create_metric``: ``create_scorer(name_or_profile)`` returns a callable scorer.

A scorer knows its ``score_range`` (1, 10) and that higher is better (``lower_better = False``); it is
callable on a path, a folder, a PIL image, a numpy array or a tensor of sRGB pixels in [0, 1]. With
``as_loss=True`` a tensor call keeps the autograd graph down to the pixels, so the paper's aesthetic
loss 10 - f(x) (section 4.6) is ``10 - scorer(x)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from piaa.backbones import Preprocess
from piaa.models.head import AestheticModel
from piaa.models.profile import Profile, ScoreResult, list_pretrained, load_profile
from piaa.settings import RunSettings

ImageLike = str | os.PathLike[str] | Image.Image | np.ndarray | torch.Tensor


class Scorer:
    """A profile as a metric. ``scorer(x)``:

    - a tensor (3 x H x W or N x 3 x H x W, sRGB in [0, 1]) -> a tensor of N scores; with
      ``as_loss=True`` differentiable (torch's resize: within ~0.1 of the file route), otherwise through
      the file route's exact resize, without a graph;
    - one image file, PIL image or H x W x 3 array (uint8, or float in [0, 1]) -> a float;
    - a folder (walked recursively) or a list of any of these -> a list of :class:`ScoreResult`.

    Scores are on 1-10, higher is better. Unreadable files raise ``ImageError`` (one line naming the file).
    """

    score_range: tuple[float, float] = (1.0, 10.0)
    lower_better: bool = False

    def __init__(
        self, profile: Profile, *, as_loss: bool = False, settings: RunSettings | None = None
    ) -> None:
        self.profile = profile
        self.as_loss = as_loss
        self.settings = settings if settings is not None else RunSettings(progress=False)
        self._model: AestheticModel | None = None

    @property
    def preprocess(self) -> Preprocess:
        """The backbone's input pipeline (size, normalisation, resize policy)."""
        return self.profile.backbone.preprocess

    @property
    def name(self) -> str:
        return str(self.profile.path or self.profile.config.name or "profile")

    def model(self) -> AestheticModel:
        """The differentiable pixels -> distribution network (eager PyTorch, frozen weights)."""
        if self._model is None:
            self._model = AestheticModel(self.profile.backbone, self.profile.head).eval()
            self._model.requires_grad_(False)
        return self._model

    def __call__(self, x: ImageLike | Sequence[ImageLike]) -> Any:
        if isinstance(x, torch.Tensor):
            if self.as_loss:
                return self.model().score(x)
            # without a graph, pixels take the file route's exact (Pillow) resize: same photo, same score
            batch = x[None] if x.ndim == 3 else x
            if batch.ndim != 4 or batch.shape[1] != 3:
                raise ValueError(f"expected N x 3 x H x W pixels in [0, 1], got shape {tuple(x.shape)}")
            arrays = (batch.detach().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
            return torch.tensor([r.score for r in self.profile.score(list(arrays), settings=self.settings)])
        if isinstance(x, (list, tuple)):
            return self.profile.score(list(x), settings=self.settings)
        if isinstance(x, (str, os.PathLike)) and Path(x).is_dir():
            return self.profile.score(x, settings=self.settings)
        return self.profile.score([x], settings=self.settings)[0].score

    def __repr__(self) -> str:
        return f"Scorer({self.name!r}, score_range={self.score_range}, lower_better={self.lower_better})"


def list_scorers() -> list[str]:
    """The scorers that need no profile folder (``nima-ava``: the AVA-trained generic model)."""
    return list_pretrained()


def create_scorer(
    name_or_path: str | os.PathLike[str], *, as_loss: bool = False, settings: RunSettings | None = None
) -> Scorer:
    """A :class:`Scorer` for a built-in name (:func:`list_scorers`) or a profile folder. ``settings``:
    how it runs (default: resolved here, once, from the environment, without progress bars).

    Raises ``ProfileError`` (one line) for a missing, partial or incompatible profile."""
    run = settings if settings is not None else RunSettings.from_env(progress=False)
    return Scorer(load_profile(name_or_path), as_loss=as_loss, settings=run)


__all__ = ["ImageLike", "ScoreResult", "Scorer", "create_scorer", "list_scorers"]
