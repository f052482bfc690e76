"""What the active sampler's linear model sees of a photo: style (Z1 statistics) and content (embedding).

The pooled embedding alone barely sees exposure, colour or contrast (what people's taste is often
about), so each photo is described by the channel means and standard deviations of the mid-level map
Z1 ("style") and by the embedding ("content"), each PCA-whitened, content down-weighted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from piaa.data.images import FailureLog
from piaa.errors import UsageError
from piaa.settings import QUIET

if TYPE_CHECKING:  # torch stays out of the import of piaa.sampling
    from piaa.backbones import Backbone, FeatureMaps

__all__ = [
    "CONTENT_DIMS",
    "CONTENT_WEIGHT",
    "STYLE_DIMS",
    "album_features",
    "design_matrix",
    "photo_descriptors",
]

STYLE_DIMS = 32
CONTENT_DIMS = 16
CONTENT_WEIGHT = 0.5


def photo_descriptors(maps: FeatureMaps) -> tuple[np.ndarray, np.ndarray]:
    """(style, content) rows for a batch of B photos: Z1 channel means and stds ``(B, 2*C1)``, and the
    L2-normalised embedding ``(B, D)``, float32."""
    z1 = maps.z1.float().numpy()
    style = np.concatenate([z1.mean(axis=(2, 3)), z1.std(axis=(2, 3))], axis=1)
    emb = maps.embedding.float().numpy()
    content = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return style.astype(np.float32), content.astype(np.float32)


def _whiten(block: np.ndarray, dims: int) -> np.ndarray:
    """Centre, project on the top principal components, scale each to unit variance."""
    x = block.astype(np.float64) - block.mean(axis=0)
    _, sv, vt = np.linalg.svd(x, full_matrices=False)
    keep = min(dims, int((sv > 1e-6 * max(sv[0], 1e-12)).sum()))  # a small album has fewer real axes
    z = x @ vt[:keep].T
    return z / np.maximum(z.std(axis=0), 1e-12)


def design_matrix(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The linear model's input ``(N, <= STYLE_DIMS + CONTENT_DIMS)``: whitened style and down-weighted
    whitened content, side by side (fewer columns when the album has fewer real axes)."""
    return np.hstack([_whiten(style, STYLE_DIMS), CONTENT_WEIGHT * _whiten(content, CONTENT_DIMS)])


def album_features(
    paths: Sequence[str | Path],
    backbone: Backbone,
    *,
    failures: FailureLog | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Design-matrix rows for ``paths`` (one backbone pass). Unreadable photos get the mean row, so rows
    stay aligned with ``paths``; they then look average to the model rather than breaking it (and are
    listed in ``failures``). Raises ``ValueError`` if no photo is readable."""
    from piaa.features.extract import FeatureExtractor

    extractor = FeatureExtractor(backbone, QUIET)  # its own progress: the callback
    style: list[np.ndarray | None] = [None] * len(paths)
    content: list[np.ndarray | None] = [None] * len(paths)
    done = 0
    for batch in extractor.files(list(paths), failures=failures):
        s, c = photo_descriptors(batch.features)
        for j, i in enumerate(batch.indices):
            style[i], content[i] = s[j], c[j]
        done = max(done, max(batch.indices, default=-1) + 1)
        if progress is not None:
            progress(done, len(paths))
    ok = [i for i, s in enumerate(style) if s is not None]
    if not ok:
        raise UsageError("no readable photos to compute features from")
    s_arr = np.stack([style[i] for i in ok])
    c_arr = np.stack([content[i] for i in ok])
    full_s = np.tile(s_arr.mean(axis=0), (len(paths), 1))
    full_c = np.tile(c_arr.mean(axis=0), (len(paths), 1))
    full_s[ok], full_c[ok] = s_arr, c_arr
    return design_matrix(full_s, full_c)
