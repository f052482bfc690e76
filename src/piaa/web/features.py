"""The album's features for the active pair sampler (:mod:`piaa.sampling.active`): computed once, in the
background, so the first pair is shown at once and the sampler is random until they are ready."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

FeatureFn = Callable[[list[Path], Callable[[int, int], None]], np.ndarray]


def default_features(paths: list[Path], progress: Callable[[int, int], None]) -> np.ndarray:
    """The linear model's features from piaa's default backbone, built here where the choice is made."""
    from piaa.backbones import create_backbone
    from piaa.sampling.features import album_features

    return album_features(paths, create_backbone(), progress=progress)


class Features:
    """The album's linear-model features, computed once, on first need (or at startup for ``active``)."""

    def __init__(self, paths: list[Path], fn: FeatureFn) -> None:
        self._paths, self._fn = paths, fn
        self._lock = threading.Lock()
        self._value: np.ndarray | None = None
        self.done = 0
        self.error: str | None = None

    @property
    def ready(self) -> bool:
        return self._value is not None

    def get(self, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        with self._lock:  # a second caller waits for the first computation instead of repeating it
            if self._value is None:

                def step(done: int, total: int) -> None:
                    self.done = done
                    if progress is not None:
                        progress(done, total)

                try:
                    self._value = self._fn(self._paths, step)
                except Exception as exc:
                    self.error = f"{type(exc).__name__}: {exc}"
                    raise
            return self._value
