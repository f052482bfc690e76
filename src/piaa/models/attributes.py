"""Attribute heads: named aesthetic attributes predicted from piaa's pooled features (a "taste space").

A crowd-labelled reference that carries per-photo attribute ratings (PARA's crowd means of quality,
composition, colour, depth of field, content, light, content preference and willingness to share:
Yang et al., "Personalized Image Aesthetics Assessment with Rich Attributes", CVPR 2022) trains one
ridge regression per attribute on the frozen backbone's pooled features (scikit-learn's ``RidgeCV``,
its penalty chosen per attribute by efficient leave-one-out cross-validation). Beside them sit the five
pixel attributes piaa measures directly (:data:`piaa.evaluation.simulate.ATTRIBUTES`: brightness,
colourfulness, contrast, sharpness, warmth), so a person's taste can be fitted, and later explained, in
a space whose axes have names.

Licences: PARA's labels are for research and non-commercial use only, so no PARA-trained head ships
with piaa. Heads are trained at run time from a labelled reference the user has; the labels' licence,
as the user states it, travels in the saved file's metadata.

Saved as one ``.safetensors`` file (tensors ``mean``, ``scale``, ``coef``, ``intercept``) whose header
metadata ``piaa`` is JSON: format, attribute names, backbone(s), feature layout, penalties, the labels'
source and licence, and the piaa version.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from piaa.errors import AttributeHeadsError, UsageError, file_error

if TYPE_CHECKING:
    from PIL import Image

    from piaa.backbones import FeatureMaps

__all__ = [
    "FORMAT",
    "PARA_ATTRIBUTES",
    "PIXEL_ATTRIBUTES",
    "AttributeHeadsError",
    "AttributeHeads",
    "AttributeTable",
    "TASTE_LAMBDAS",
    "deep_residual",
    "fit_taste",
    "pixel_attributes",
    "pooled_features",
    "read_attribute_table",
    "subject_axes",
    "taste_space",
]

FORMAT = "piaa-attribute-heads-1"
PARA_ATTRIBUTES = (
    "quality",
    "composition",
    "colour",
    "depth_of_field",
    "content",
    "light",
    "content_preference",
    "willingness_to_share",
)
"""PARA's aesthetic attributes, as named in ``attributes.csv`` (without the ``_mean`` suffix)."""

PIXEL_ATTRIBUTES = ("brightness", "colourfulness", "contrast", "sharpness", "warmth")
"""Measured on the pixels (:func:`piaa.evaluation.simulate.photo_attributes`), not predicted."""

_ALPHAS = tuple(float(a) for a in np.logspace(-1, 5, 13))


def pooled_features(maps: FeatureMaps) -> np.ndarray:
    """What the heads read of a photo: (B, C1 + C3 + S) float32, the spatial mean of the mid-level map
    Z1, the pooled last map Z3 and the low-level channel statistics
    (:func:`piaa.backbones.base.channel_stats`), side by side. efficientnet-lite0: 112 + 1280 + 224 =
    1616 columns; nima-mobilenet: 512 + 1024 + 960 = 2496. Read 256 photos at a time, so a whole world's
    float16 maps are never held in float32 at once."""
    out = []
    for i in range(0, max(len(maps.z1), 1), 256):
        z1 = maps.z1[i : i + 256].float().mean(dim=(2, 3))
        z3 = maps.z3[i : i + 256].float().flatten(1)
        stats = maps.stats[i : i + 256].float()
        out.append(np.concatenate([z1.numpy(), z3.numpy(), stats.numpy()], axis=1).astype(np.float32))
    return np.concatenate(out)


def pixel_attributes(images: Sequence[Image.Image | np.ndarray | str | PathLike[str]]) -> np.ndarray:
    """(N, 5) :data:`PIXEL_ATTRIBUTES` as z-scores on piaa's fixed centre and scale
    (:func:`piaa.evaluation.simulate.standardize_attributes`), from images or paths (opened with Pillow;
    an unreadable path raises ``ImageError`` naming it)."""
    from piaa.data.images import load_image
    from piaa.evaluation.simulate import photo_attributes, standardize_attributes

    rows = []
    for im in images:
        rows.append(photo_attributes(load_image(im) if isinstance(im, str | PathLike) else im))
    if not rows:
        return np.zeros((0, len(PIXEL_ATTRIBUTES)), np.float32)
    return standardize_attributes(np.stack(rows)).astype(np.float32)


@dataclass(frozen=True)
class AttributeTable:
    """Per-photo attribute ratings: ``images`` (N,) as written in the file, ``values`` (N, A) float64."""

    images: list[str]
    names: tuple[str, ...]
    values: np.ndarray

    def rows(self, images: Sequence[str]) -> np.ndarray:
        """(len(images), A) values of ``images`` in that order; raises ``KeyError`` naming a missing one."""
        pos = {im: i for i, im in enumerate(self.images)}
        missing = [im for im in images if im not in pos]
        if missing:
            raise KeyError(f"{len(missing)} images have no attribute row, e.g. {missing[0]!r}")
        return self.values[[pos[im] for im in images]]


def read_attribute_table(path: str | PathLike[str]) -> AttributeTable:
    """A CSV of per-photo attribute ratings: an ``image`` column, then one numeric column per attribute
    (a ``_mean`` suffix is dropped: PARA's ``attributes.csv`` gives :data:`PARA_ATTRIBUTES`). Raises
    :class:`AttributeHeadsError` naming the file and line for a missing file, a header without ``image`` or
    attributes, a short row, a non-numeric or non-finite value, or a repeated image."""
    p = Path(path)
    if not p.is_file():
        raise file_error(AttributeHeadsError, p, "attribute table not found")
    try:
        with p.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header or header[0].strip().lower() != "image" or len(header) < 2:
                raise file_error(AttributeHeadsError, p, "expected a header 'image,<attribute>,...'", 1)
            names = tuple(h.strip().removesuffix("_mean") for h in header[1:])
            images: list[str] = []
            values: list[list[float]] = []
            seen: set[str] = set()
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise file_error(
                        AttributeHeadsError, p, f"{len(row)} fields, expected {len(header)}", line
                    )
                try:
                    vals = [float(v) for v in row[1:]]
                except ValueError:
                    raise file_error(AttributeHeadsError, p, "a value is not a number", line) from None
                if not all(np.isfinite(vals)):
                    raise file_error(AttributeHeadsError, p, "a value is not finite", line)
                if row[0] in seen:
                    raise file_error(AttributeHeadsError, p, f"image {row[0]!r} appears twice", line)
                seen.add(row[0])
                images.append(row[0])
                values.append(vals)
    except (UnicodeDecodeError, csv.Error) as e:
        raise file_error(AttributeHeadsError, p, f"not a readable CSV ({e})") from None
    if not images:
        raise file_error(AttributeHeadsError, p, "no rows")
    return AttributeTable(images, names, np.asarray(values, np.float64))


def _r2(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 1.0 - ((pred - y) ** 2).sum(0) / np.maximum(((y - y.mean(0)) ** 2).sum(0), 1e-12)


@dataclass
class AttributeHeads:
    """One linear head per attribute over standardised pooled features.

    ``predict(x)[name] = ((x - mean) / scale) @ coef[:, j] + intercept[j]`` for feature rows ``x``
    (N, D) laid out as :func:`pooled_features` of each backbone in ``backbones``, concatenated in that
    order; predictions are on the labels' own scale (PARA: 1-5).
    """

    names: tuple[str, ...]
    backbones: tuple[str, ...]
    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)
    coef: np.ndarray  # (D, A)
    intercept: np.ndarray  # (A,)
    alphas: np.ndarray  # (A,) ridge penalty chosen for each attribute
    licence: str
    source: str = ""

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        targets: np.ndarray,
        names: Sequence[str],
        *,
        backbones: Sequence[str],
        licence: str,
        source: str = "",
        alphas: Sequence[float] = _ALPHAS,
    ) -> AttributeHeads:
        """Ridge heads for ``targets`` (N, A) from ``features`` (N, D), each attribute's penalty chosen
        from ``alphas`` by leave-one-out cross-validation (``sklearn.linear_model.RidgeCV``).
        ``licence`` is the labels' licence as the user states it (kept in the metadata). Raises
        ``ValueError`` for mismatched shapes, fewer than 10 rows or non-finite values."""
        from sklearn.linear_model import RidgeCV

        x = np.asarray(features, np.float64)
        y = np.asarray(targets, np.float64)
        y = y[:, None] if y.ndim == 1 else y
        if x.ndim != 2 or len(x) != len(y) or y.shape[1] != len(names):
            raise ValueError(
                f"features {x.shape}, targets {y.shape} and {len(names)} names do not fit together"
            )
        if len(x) < 10:
            raise UsageError(f"need at least 10 labelled photos to fit attribute heads, got {len(x)}")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise UsageError("features and targets must be finite")
        mean, scale = x.mean(0), x.std(0)
        scale = np.where(scale > 1e-8, scale, 1.0)
        ridge = RidgeCV(alphas=list(alphas), alpha_per_target=True).fit((x - mean) / scale, y)
        return cls(
            names=tuple(names),
            backbones=tuple(backbones),
            mean=mean.astype(np.float32),
            scale=scale.astype(np.float32),
            coef=np.asarray(ridge.coef_, np.float64).reshape(y.shape[1], -1).T.astype(np.float32),
            intercept=np.atleast_1d(np.asarray(ridge.intercept_, np.float32)),
            alphas=np.atleast_1d(np.asarray(ridge.alpha_, np.float32)) * np.ones(y.shape[1], np.float32),
            licence=licence,
            source=source,
        )

    def predict_array(self, features: np.ndarray) -> np.ndarray:
        """(N, A) predictions, columns in :attr:`names` order. Raises :class:`AttributeHeadsError` when the
        feature width is not the heads' D."""
        x = np.asarray(features, np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.mean):
            raise AttributeHeadsError(
                f"features have {x.shape[-1]} columns; these heads read {len(self.mean)} "
                f"({' + '.join(self.backbones)})"
            )
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def predict(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Named columns: attribute -> (N,) predictions (see :meth:`predict_array`)."""
        out = self.predict_array(features)
        return {n: out[:, j] for j, n in enumerate(self.names)}

    def score(self, features: np.ndarray, targets: np.ndarray) -> dict[str, dict[str, float]]:
        """Held-out quality per attribute: ``{name: {"r2": R², "srcc": Spearman's rho}}``."""
        from scipy.stats import spearmanr

        pred = self.predict_array(features).astype(np.float64)
        y = np.asarray(targets, np.float64).reshape(len(pred), -1)
        r2 = _r2(pred, y)
        return {
            n: {"r2": float(r2[j]), "srcc": float(spearmanr(pred[:, j], y[:, j]).statistic)}
            for j, n in enumerate(self.names)
        }

    def metadata(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "names": list(self.names),
            "backbones": list(self.backbones),
            "features": "pooled_features per backbone, concatenated: z1 mean, z3, channel stats",
            "alphas": [float(a) for a in self.alphas],
            "labels_licence": self.licence,
            "labels_source": self.source,
        }

    def save(self, path: str | PathLike[str]) -> None:
        """Write one ``.safetensors`` file atomically (:func:`piaa.io.atomic_write_bytes`)."""
        from safetensors.numpy import save

        from piaa.io import atomic_write_bytes
        from piaa.version import __version__

        meta = {**self.metadata(), "piaa_version": __version__}
        tensors = {"mean": self.mean, "scale": self.scale, "coef": self.coef, "intercept": self.intercept}
        atomic_write_bytes(path, save(tensors, metadata={"piaa": json.dumps(meta)}))

    @classmethod
    def load(cls, path: str | PathLike[str]) -> AttributeHeads:
        """Read :meth:`save`'s file. Raises :class:`AttributeHeadsError` naming the file when it is missing,
        not safetensors, not attribute heads, or inconsistent."""
        from safetensors import SafetensorError, safe_open

        p = Path(path)
        if not p.is_file():
            raise file_error(AttributeHeadsError, p, "attribute heads not found")
        try:
            with safe_open(str(p), framework="np") as f:
                header = f.metadata() or {}
                arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
        except (SafetensorError, OSError, ValueError) as e:
            raise file_error(AttributeHeadsError, p, f"not a safetensors file ({e})") from None
        try:
            meta = json.loads(header["piaa"])
            if meta.get("format") != FORMAT:
                raise UsageError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
            heads = cls(
                names=tuple(meta["names"]),
                backbones=tuple(meta["backbones"]),
                mean=arrays["mean"],
                scale=arrays["scale"],
                coef=arrays["coef"],
                intercept=arrays["intercept"],
                alphas=np.asarray(meta["alphas"], np.float32),
                licence=str(meta["labels_licence"]),
                source=str(meta.get("labels_source", "")),
            )
        except (KeyError, ValueError, TypeError) as e:
            raise file_error(AttributeHeadsError, p, f"not piaa attribute heads ({e})") from None
        d, a = len(heads.mean), len(heads.names)
        if heads.scale.shape != (d,) or heads.coef.shape != (d, a) or heads.intercept.shape != (a,):
            raise file_error(AttributeHeadsError, p, "tensor shapes do not match the attribute names")
        return heads


def taste_space(
    heads: AttributeHeads, features: np.ndarray, pixels: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The named axes of a photo set: the heads' predicted attributes, then (when ``pixels``, (N, 5) from
    :func:`pixel_attributes`, is given) the :data:`PIXEL_ATTRIBUTES`. Raises :class:`AttributeHeadsError`
    when the row counts differ."""
    out = heads.predict(features)
    if pixels is not None:
        if len(pixels) != len(features):
            raise AttributeHeadsError(f"{len(features)} feature rows but {len(pixels)} pixel-attribute rows")
        out.update({n: np.asarray(pixels)[:, j] for j, n in enumerate(PIXEL_ATTRIBUTES)})
    return out


def subject_axes(ref_emb: np.ndarray, emb: np.ndarray, k: int = 8, seed: int = 0) -> np.ndarray:
    """(N, k) kinds of subject of ``emb`` (N, D): each photo's cosine similarity to the centroids of ``k``
    k-means clusters (scikit-learn, ``random_state=seed``, 4 restarts) of the reference's L2-normalised
    embeddings ``ref_emb`` (R, D). Learnt from the reference, not from the person's photos, so the
    axes are the same for everyone and cost no pairs; cosine similarity rather than a softmax of it,
    so no temperature has to be chosen and a photo between two kinds stays between them. Raises
    ``ValueError`` with fewer reference photos than ``k``."""
    from sklearn.cluster import KMeans

    from piaa.features.index import normalize

    ref = normalize(np.asarray(ref_emb, np.float32))
    if len(ref) < k:
        raise ValueError(f"need at least {k} reference photos for {k} kinds of subject, got {len(ref)}")
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(ref.astype(np.float64))
    centroids = normalize(km.cluster_centers_.astype(np.float32))
    return normalize(np.asarray(emb, np.float32)) @ centroids.T


def deep_residual(ref_features: np.ndarray, features: np.ndarray, dims: int = 16) -> np.ndarray:
    """(N, dims) the first ``dims`` principal components of ``features`` (N, D), fitted on the
    reference's ``ref_features`` (R, D), each column standardised over the reference first (pooled
    features mix map means and channel statistics of very different scales). Deterministic
    (``random_state=0``). A few directions of the deep features the named axes may miss, for a taste
    to lean on a little. Raises ``ValueError`` when D or R is smaller than ``dims``."""
    from sklearn.decomposition import PCA

    ref = np.asarray(ref_features, np.float64)
    if min(ref.shape) < dims:
        raise ValueError(f"need at least {dims} reference photos and columns, got {ref.shape}")
    mean, scale = ref.mean(0), ref.std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    pca = PCA(n_components=dims, random_state=0).fit((ref - mean) / scale)
    return pca.transform((np.asarray(features, np.float64) - mean) / scale)


# ------------------------------------------------------------------------------------- a person's taste

TASTE_LAMBDAS = (10.0, 1.0, 0.1, 0.01)
"""L2 pulls toward the generic model of :func:`fit_taste`'s candidates, strongest first."""


def _fit_linear_ranker(
    z: np.ndarray, rows: np.ndarray, prior: np.ndarray, lam: float, penalty: np.ndarray | None = None
) -> np.ndarray:
    """argmin_w mean softplus(-(z_a - z_b) . w) + lam * Σ_k penalty_k (w_k - prior_k)² over ordered pairs
    ``rows``; ``penalty`` (K,) weighs each column's pull (None: all ones, the same result bit for bit)."""
    from scipy.optimize import minimize

    d = z[rows[:, 0]] - z[rows[:, 1]]
    pen = np.ones(z.shape[1]) if penalty is None else np.asarray(penalty, np.float64)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        m = d @ w
        sig = 0.5 * (1 - np.tanh(0.5 * m))  # sigmoid(-m), stable
        value = np.logaddexp(0.0, -m).mean() + lam * (pen * (w - prior) ** 2).sum()
        return float(value), -(d * sig[:, None]).mean(0) + 2 * lam * pen * (w - prior)

    return minimize(loss, prior.copy(), jac=True, method="L-BFGS-B").x


def fit_taste(
    z: np.ndarray, pairs: np.ndarray, stated: int, seed: int = 0, penalty: np.ndarray | None = None
) -> tuple[np.ndarray, str]:
    """A person's taste as weights on the named axes ``z`` (N, K), column 0 the generic model's score.

    The prior is the generic model (weight 1 on column 0, 0 elsewhere); each candidate fits a logistic
    ranking loss on ``pairs`` (P, 2 rows of ``z``, preferred first: the ``stated`` pairs, then those
    inferred from them) with an L2 pull of strength ``lam`` in :data:`TASTE_LAMBDAS` toward the prior.
    The candidate is chosen as :func:`piaa.models.selection.fit_personal` chooses (cross-validation over
    the judged photos, a sign test against the generic model before moving), with its rule that fits are
    candidates only from ``selection.MIN_FIT_PHOTOS`` (20) judged photos on: every candidate here is a
    fit, so fewer judged photos, or fewer than ``selection.MIN_STATED`` stated pairs, keep the prior
    (without that rule, at X = 10 it moved below the generic model on two worlds of three,
    ``docs/benchmarks/attributes.md``). Returns ``(weights (K,), choice)``: scores are
    ``z @ weights``; ``choice`` is ``"generic"`` or ``"fit <lam>"``. ``z`` columns should be
    standardized, so the pull treats every axis alike; ``penalty`` (K,) multiplies each column's pull
    (None: all ones), so some columns (a residual on deep features) can move only a little. Raises
    ``ValueError`` when ``penalty`` is not K positive numbers."""
    import torch

    from piaa.models.selection import GENERIC, MAX_FOLDS, MIN_FIT_PHOTOS, MIN_STATED, _choose, _training_pairs

    z = np.asarray(z, np.float64)
    prior = np.zeros(z.shape[1])
    prior[0] = 1.0
    if penalty is not None:
        penalty = np.asarray(penalty, np.float64)
        if penalty.shape != prior.shape or not (penalty > 0).all():
            raise ValueError(f"penalty must be {len(prior)} positive numbers, got shape {penalty.shape}")
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    if stated < MIN_STATED:
        return prior, GENERIC
    st = torch.from_numpy(pairs[:stated])
    photos = torch.unique(st)
    if len(photos) < MIN_FIT_PHOTOS:  # fit_personal's rule: too few photos to judge a fit by
        return prior, GENERIC
    folds = min(MAX_FOLDS, len(photos))
    fold_of = torch.empty(int(pairs.max()) + 1, dtype=torch.long)
    perm = torch.randperm(len(photos), generator=torch.Generator().manual_seed(seed + 2))
    fold_of[photos[perm]] = torch.arange(len(photos)) % folds
    names = [GENERIC, *(f"fit {lam:g}" for lam in TASTE_LAMBDAS)]
    right: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for f in range(folds):
        touches = (fold_of[st] == f).any(dim=1)
        held, kept = st[touches], st[~touches]
        if len(held) == 0 or len(kept) == 0:
            continue
        train = _training_pairs(kept, held).numpy()
        h = held.numpy()
        for name in names:
            lam = 0.0 if name == GENERIC else float(name.split()[1])
            w = prior if name == GENERIC else _fit_linear_ranker(z, train, prior, lam, penalty)
            s = z @ w
            a, b = s[h[:, 0]], s[h[:, 1]]
            right[name].append(torch.from_numpy((a > b) + 0.5 * (a == b)).float())
    best, _ = _choose({n: torch.cat(v) if v else torch.zeros(0) for n, v in right.items()})
    if best == GENERIC:
        return prior, GENERIC
    return _fit_linear_ranker(z, pairs, prior, float(best.split()[1]), penalty), best
