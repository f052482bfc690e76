"""Explain a profile: which named attributes a person weighs more or less than the crowd.

The person's judged pairs are fitted as a logistic (Bradley-Terry) model on standardized named axes of
the judged photos: ``P(a preferred to b) = sigmoid(w . (x_a - x_b))``, with

* ``crowd``: the generic model's score (the model the profile was personalized from, e.g. nima-ava);
* the five pixel attributes piaa measures (:data:`piaa.models.attributes.PIXEL_ATTRIBUTES`);
* the attributes predicted by attribute heads, only when the caller passes heads
  (:class:`piaa.models.attributes.AttributeHeads`, trained by the user from a reference they have: no
  PARA-trained head ships with piaa, PARA's labels being research and non-commercial only).

Each axis is z-scored over the judged photos, so a weight is log-odds per standard deviation of
difference. Because the crowd score is one of the axes, an attribute's weight is what the person weighs
it *beyond what the crowd score already gives it*: positive, more than the crowd; negative, less.

Only what the fit supports is shown: an axis is shown when its weight has the same sign in every one of
``folds`` fits on the cross-validation folds' training pairs (seeded) *and* its Wald z (weight over the
standard error from the penalized Hessian) is at least :data:`MIN_Z`. Sign stability alone is lax with
overlapping training folds (they share 75 % of their pairs): a pure-noise axis beside a simulated taste
passed it in 114 of 200 seeds, both tests in 6 (docs/guide/personalize.md). Hidden axes say why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from piaa.errors import ExplainError
from piaa.settings import QUIET, RunSettings

if TYPE_CHECKING:
    from piaa.models.attributes import AttributeHeads
    from piaa.models.profile import Profile

__all__ = ["MIN_Z", "AxisWeight", "Explanation", "ExplainError", "explain_profile", "fit_explanation"]

MIN_Z = 1.96
"""An axis is shown only if |weight| / standard error reaches this (about 95 % two-sided)."""
PENALTY = 1.0
"""L2 penalty on the weights (a standard-normal prior on log-odds per SD): keeps a fit on separable
pairs finite."""
EXAMPLES = 3
"""Photos shown at each end of an axis."""


@dataclass
class AxisWeight:
    """One named axis: its weight (log-odds per SD; the crowd axis is the person's agreement with the
    crowd), the weight fitted in each fold, its standard error, whether it is shown and, if not, why;
    ``high``/``low``: the judged photos (album-relative names) with the highest and lowest values."""

    name: str
    weight: float
    stderr: float
    fold_weights: list[float]
    shown: bool
    reason: str = ""
    high: list[str] = field(default_factory=list)
    low: list[str] = field(default_factory=list)

    @property
    def z(self) -> float:
        return self.weight / self.stderr if self.stderr > 0 else 0.0

    def describe(self) -> str:
        """'more than the crowd' / 'less than the crowd' / 'agrees with the crowd' ..."""
        if self.name == "crowd":
            return "follows the crowd's score" if self.weight > 0 else "goes against the crowd's score"
        return "weighs it more than the crowd" if self.weight > 0 else "weighs it less than the crowd"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weight": round(self.weight, 4),
            "stderr": round(self.stderr, 4),
            "z": round(self.z, 3),
            "fold_weights": [round(w, 4) for w in self.fold_weights],
            "shown": self.shown,
            "reason": self.reason,
            "describe": self.describe(),
            "high": self.high,
            "low": self.low,
        }


@dataclass
class Explanation:
    """What a profile learnt, on named axes. ``accuracy_crowd``: the fraction of the judged pairs the
    crowd score alone orders as the person did (ties count half; 0.5 without a crowd axis);
    ``accuracy_cv``: the same for the fitted model, each pair predicted by the fold fit that did not see
    it."""

    axes: list[AxisWeight]
    pairs: int
    photos: int
    folds: int
    seed: int
    accuracy_crowd: float
    accuracy_cv: float
    profile: str = ""
    album: str = ""
    generic: str = ""
    heads: str = ""
    skipped_pairs: int = 0

    @property
    def shown(self) -> list[AxisWeight]:
        return [a for a in self.axes if a.shown]

    @property
    def hidden(self) -> list[AxisWeight]:
        return [a for a in self.axes if not a.shown]

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "album": self.album,
            "generic": self.generic,
            "heads": self.heads,
            "pairs": self.pairs,
            "skipped_pairs": self.skipped_pairs,
            "photos": self.photos,
            "folds": self.folds,
            "seed": self.seed,
            "min_z": MIN_Z,
            "accuracy_crowd": round(self.accuracy_crowd, 4),
            "accuracy_cv": round(self.accuracy_cv, 4),
            "axes": [a.to_dict() for a in self.axes],
        }


# ------------------------------------------------------------------------------------------ the fit


def _fit(d: np.ndarray, lam: float = PENALTY) -> tuple[np.ndarray, np.ndarray]:
    """Weights (A,) minimizing sum softplus(-d . w) + lam/2 |w|² over difference rows ``d`` (P, A), and
    their standard errors from the inverse Hessian at the optimum (Newton's method: the loss is
    strictly convex)."""
    a = d.shape[1]
    w = np.zeros(a)
    for _ in range(100):
        m = d @ w
        p = 1.0 / (1.0 + np.exp(np.clip(m, -50, 50)))  # sigmoid(-m): the gradient's weight
        grad = -(d * p[:, None]).sum(0) + lam * w
        hess = (d * (p * (1 - p))[:, None]).T @ d + lam * np.eye(a)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    m = d @ w
    p = 1.0 / (1.0 + np.exp(np.clip(m, -50, 50)))
    hess = (d * (p * (1 - p))[:, None]).T @ d + lam * np.eye(a)
    return w, np.sqrt(np.clip(np.diag(np.linalg.inv(hess)), 0, None))


def _ordered(diff: np.ndarray) -> np.ndarray:
    """1 where the preferred photo scores higher, 0.5 on a tie, 0 otherwise."""
    return np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))


def fit_explanation(
    values: Mapping[str, np.ndarray],
    pairs: np.ndarray,
    names: Sequence[str] | None = None,
    *,
    folds: int = 5,
    seed: int = 0,
) -> Explanation:
    """Fit and test the named axes. ``values``: axis name -> (N,) raw value per photo, the crowd's score
    under ``"crowd"`` (first, when present); ``pairs``: (P, 2) rows of (preferred, other) photo indices;
    ``names``: (N,) photo names for the examples. ``folds`` folds over the pairs, shuffled with ``seed``
    (fewer when there are fewer than 2 pairs a fold). Raises :class:`ExplainError` for fewer than 4
    pairs or no axis."""
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    if len(pairs) < 4:
        raise ExplainError(f"{len(pairs)} judged pairs: at least 4 are needed to explain a taste")
    axis_names = list(values)
    if not axis_names:
        raise ExplainError("no axis to explain the taste on")
    raw = np.stack([np.asarray(values[n], np.float64) for n in axis_names], axis=1)  # (N, A)
    n = len(raw)
    names = list(names) if names is not None else [str(i) for i in range(n)]
    used = np.unique(pairs)
    sd = raw[used].std(0)
    varies = sd > 1e-9 * np.maximum(1.0, np.abs(raw[used]).mean(0))
    z = np.where(varies, (raw - raw[used].mean(0)) / np.where(varies, sd, 1.0), 0.0)
    cols = np.flatnonzero(varies)
    d = z[pairs[:, 0]][:, cols] - z[pairs[:, 1]][:, cols]

    k = max(2, min(folds, len(pairs) // 2))
    order = np.random.default_rng(seed).permutation(len(pairs))
    fold_of = np.empty(len(pairs), np.int64)
    fold_of[order] = np.arange(len(pairs)) % k
    fold_w = np.zeros((k, len(cols)))
    held = np.zeros(len(pairs))
    for f in range(k):
        train = fold_of != f
        fold_w[f] = _fit(d[train])[0] if len(cols) else fold_w[f]
        held[~train] = d[~train] @ fold_w[f]
    w, se = _fit(d) if len(cols) else (np.zeros(0), np.zeros(0))
    crowd_diff = raw[pairs[:, 0], 0] - raw[pairs[:, 1], 0] if axis_names[0] == "crowd" else held * 0

    axes = []
    col_of = {c: j for j, c in enumerate(cols)}
    for i, name in enumerate(axis_names):
        ranked = [names[j] for j in used[np.argsort(-raw[used, i], kind="stable")]]
        m = min(EXAMPLES, len(ranked) // 2)
        high, low = ranked[:m], ranked[::-1][:m]
        if i not in col_of:
            axes.append(AxisWeight(name, 0.0, 0.0, [0.0] * k, False, "does not vary among the judged photos"))
            continue
        j = col_of[i]
        fw = fold_w[:, j]
        same = bool(np.all(np.sign(fw) == np.sign(w[j])) and w[j] != 0)
        zval = abs(w[j]) / se[j] if se[j] > 0 else 0.0
        if not same:
            pos = int((fw > 0).sum())
            reason = f"its sign changes across the folds ({pos} of {k} positive)"
        elif zval < MIN_Z:
            reason = f"too uncertain (|z| = {zval:.2f} < {MIN_Z})"
        else:
            reason = ""
        axes.append(AxisWeight(name, float(w[j]), float(se[j]), fw.tolist(), not reason, reason, high, low))
    return Explanation(
        axes=axes,
        pairs=len(pairs),
        photos=len(used),
        folds=k,
        seed=seed,
        accuracy_crowd=float(_ordered(crowd_diff).mean()),
        accuracy_cv=float(_ordered(held).mean()),
    )


# --------------------------------------------------------------------------------- from a profile


def _generic_of(profile: Profile) -> tuple[Profile, str]:
    """The crowd model: the generic head the profile carries, or the built-in model it was made from."""
    from piaa.models.profile import list_pretrained, load_profile

    data = profile.config.data
    origin = str(data.get("generic") or data.get("reference") or "")
    carried = profile.generic()
    if carried is not None:
        return carried, origin or "reference"
    if origin in list_pretrained():
        return load_profile(origin), origin
    where = profile.path or "the profile"
    raise ExplainError(
        f"{where}: carries no generic model to compare with (saved by an older piaa, or with a fine-tuned "
        "backbone); personalize it again"
    )


def explain_profile(
    profile: Profile,
    *,
    album: str | Path | None = None,
    prefs: str | Path | None = None,
    heads: AttributeHeads | None = None,
    folds: int = 5,
    seed: int = 0,
    settings: RunSettings = QUIET,
) -> Explanation:
    """Explain ``profile`` on its judged photos. ``album``: where the photos are (default: the album the
    profile was trained on, from its config); ``prefs``: a preference CSV or store to read the pairs from
    (default: the stated pairs the profile saved; contradictions resolved, latest wins); ``heads``:
    attribute heads on the profile's backbone, adding their predicted attributes as axes. Costs one
    feature pass over the judged photos (100 photos: 3 s end to end on a 2-core machine,
    docs/guide/personalize.md). Raises :class:`ExplainError` (no judgements, missing album or photos,
    heads for another backbone); an unreadable or missing photo only drops its pairs (counted in
    ``skipped_pairs``)."""
    from piaa.data.images import FailureLog
    from piaa.evaluation.simulate import photo_attributes
    from piaa.models.attributes import PIXEL_ATTRIBUTES, pooled_features
    from piaa.preferences import load_statements, resolve
    from piaa.preferences.rules import normalize_name

    where = profile.path or "the profile"
    data = profile.config.data
    album = Path(album) if album is not None else (Path(data["album"]) if data.get("album") else None)
    if album is None:
        raise ExplainError(f"{where}: does not say which album it was trained on; give the album")
    if not album.is_dir():
        raise ExplainError(f"{album}: album folder not found (give the album the profile was trained on)")
    if prefs is not None:
        pairs = resolve(load_statements(prefs, album))[0]
        if not pairs:
            raise ExplainError(f"{prefs}: holds no judgements: nothing to explain")
    else:
        pairs = [(normalize_name(a, album), normalize_name(b, album)) for a, b in profile.pairs]
        if not pairs:
            raise ExplainError(f"{where}: holds no judgements (a generic profile): nothing to explain")
    if heads is not None and tuple(heads.backbones) != (profile.backbone.name,):
        raise ExplainError(
            f"the attribute heads read {' + '.join(heads.backbones)} features; this profile's backbone is "
            f"{profile.backbone.name}"
        )
    names = sorted({n for p in pairs for n in p})
    present = [n for n in names if (album / n).is_file()]
    if not present:
        raise ExplainError(
            f"{album}: none of the {len(names)} judged photos is there (for example {names[0]!r})"
        )
    generic, origin = _generic_of(profile)

    failures = FailureLog()
    crowd: dict[str, float] = {}
    pixels: dict[str, np.ndarray] = {}
    predicted: dict[str, np.ndarray] = {}
    files = [album / n for n in present]
    for batch in profile.extractor(settings).files(files, failures=failures, desc="explaining"):
        scores, _ = generic.score_features(batch.features)
        feats = pooled_features(batch.features) if heads is not None else None
        preds = heads.predict_array(feats) if heads is not None and feats is not None else None
        for row, i in enumerate(batch.indices):
            crowd[present[i]] = float(scores[row])
            if preds is not None:
                predicted[present[i]] = preds[row]
    from piaa.data.images import ImageError, load_image

    for n in list(crowd):
        try:
            pixels[n] = photo_attributes(load_image(album / n))
        except ImageError:
            del crowd[n]
    kept = [n for n in present if n in crowd]
    index = {n: i for i, n in enumerate(kept)}
    rows = [(index[a], index[b]) for a, b in pairs if a in index and b in index]
    if not rows:
        raise ExplainError(f"{album}: the judged photos are missing or unreadable: nothing to explain")
    values: dict[str, np.ndarray] = {"crowd": np.array([crowd[n] for n in kept])}
    px = np.stack([pixels[n] for n in kept])
    values.update({name: px[:, j] for j, name in enumerate(PIXEL_ATTRIBUTES)})
    if heads is not None:
        pr = np.stack([predicted[n] for n in kept])
        values.update({name: pr[:, j] for j, name in enumerate(heads.names) if name not in values})
    exp = fit_explanation(values, np.array(rows), kept, folds=folds, seed=seed)
    exp.profile = str(profile.path or "")
    exp.album = str(album)
    exp.generic = origin
    exp.heads = (heads.source or "attribute heads") if heads is not None else ""
    exp.skipped_pairs = len(pairs) - len(rows)
    return exp


# ------------------------------------------------------------------------------------------- output


def format_table(exp: Explanation) -> list[str]:
    """Plain lines: the shown axes strongest first, then the hidden ones and why."""
    lines = [
        f"{exp.pairs} judged pairs over {exp.photos} photos; crowd model: {exp.generic or '?'}; "
        f"{exp.folds}-fold cross-validation (seed {exp.seed})",
        f"the crowd's score alone orders {exp.accuracy_crowd:.0%} of your pairs as you did; "
        f"these axes, held out, {exp.accuracy_cv:.0%}",
    ]
    for a in sorted(exp.shown, key=lambda a: -abs(a.weight)):
        lines.append(f"  {a.name:<22} {a.weight:+.2f} ± {a.stderr:.2f}  {a.describe()}")
    if not exp.shown:
        lines.append("  nothing the fit supports yet: judge more pairs")
    for a in exp.hidden:
        lines.append(f"  (hidden) {a.name}: {a.reason}")
    return lines


def _svg_chart(axes: list[AxisWeight]) -> str:
    """A horizontal bar chart (inline SVG) of the shown axes' weights with ±1 SE whiskers."""
    from html import escape

    if not axes:
        return ""
    span = max(max(abs(a.weight) + a.stderr for a in axes), 1e-6)
    width, label, row = 560, 170, 28
    half = (width - label - 20) / 2
    mid = label + 10 + half
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{row * len(axes) + 30}" '
        f'role="img" aria-label="weights">',
        f'<line x1="{mid}" y1="0" x2="{mid}" y2="{row * len(axes)}" stroke="#888"/>',
    ]
    for i, a in enumerate(axes):
        y = i * row + 4
        x = mid + min(0.0, a.weight) / span * half
        colour = "#2b7bb9" if a.weight > 0 else "#c4572a"
        parts.append(
            f'<text x="{label}" y="{y + 15}" text-anchor="end" font-size="13">{escape(a.name)}</text>'
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{abs(a.weight) / span * half:.1f}" height="{row - 10}" '
            f'fill="{colour}"/>'
        )
        lo, hi = mid + (a.weight - a.stderr) / span * half, mid + (a.weight + a.stderr) / span * half
        cy = y + (row - 10) / 2
        parts.append(f'<line x1="{lo:.1f}" y1="{cy}" x2="{hi:.1f}" y2="{cy}" stroke="#222"/>')
    parts.append(
        f'<text x="{mid}" y="{row * len(axes) + 20}" text-anchor="middle" font-size="11">'
        "less than the crowd ← log-odds per SD → more than the crowd</text></svg>"
    )
    return "".join(parts)


def write_report(exp: Explanation, out: Path) -> Path:
    """Write ``out/index.html`` (chart, table, thumbnails of the photos at both ends of each shown axis
    under ``out/thumbs/``) and ``out/explanation.json``, each atomically; returns the HTML's path."""
    import json
    from html import escape

    from PIL import Image

    from piaa.data.images import ImageError, load_image
    from piaa.io import atomic_open, atomic_write_text

    album = Path(exp.album)
    out.mkdir(parents=True, exist_ok=True)
    (out / "thumbs").mkdir(exist_ok=True)
    thumbs: dict[str, str] = {}

    def thumb(name: str) -> str:
        if name not in thumbs:
            rel = f"thumbs/{len(thumbs)}.jpg"
            try:
                im = load_image(album / name).convert("RGB")
                im.thumbnail((160, 160), Image.Resampling.LANCZOS)
                with atomic_open(out / rel) as f:
                    im.save(f, "JPEG", quality=85)
            except (ImageError, OSError):
                rel = ""
            thumbs[name] = rel
        return thumbs[name]

    def strip(photos: list[str]) -> str:
        cells = []
        for n in photos:
            src = thumb(n)
            img = f'<img src="{escape(src)}" alt="{escape(n)}">' if src else escape(n)
            cells.append(f"<figure>{img}<figcaption>{escape(n)}</figcaption></figure>")
        return "".join(cells)

    shown = sorted(exp.shown, key=lambda a: -abs(a.weight))
    rows = "".join(
        f"<tr><td>{escape(a.name)}</td><td>{a.weight:+.2f} ± {a.stderr:.2f}</td>"
        f"<td>{escape(a.describe())}</td></tr>"
        for a in shown
    )
    hidden = "".join(f"<li>{escape(a.name)}: {escape(a.reason)}</li>" for a in exp.hidden)
    ends = "".join(
        f"<section><h3>{escape(a.name)}</h3><p>highest</p><div class=strip>{strip(a.high)}</div>"
        f"<p>lowest</p><div class=strip>{strip(a.low)}</div></section>"
        for a in shown
    )
    head = escape(format_table(exp)[0]) + "<br>" + escape(format_table(exp)[1])
    html = (
        "<!doctype html><html><head><meta charset=utf-8><title>piaa: what the profile learnt</title><style>"
        "body{font-family:sans-serif;max-width:900px;margin:2em auto}td{padding:2px 10px}"
        ".strip{display:flex;gap:8px}figure{margin:0;font-size:11px;max-width:160px;overflow-wrap:anywhere}"
        "</style></head><body>"
        f"<h1>What {escape(exp.profile or 'the profile')} learnt</h1><p>{head}</p>"
        f"{_svg_chart(shown) or '<p>Nothing the fit supports yet: judge more pairs.</p>'}"
        f"<table>{rows}</table>"
        f"{f'<h2>Hidden (the fit does not support them)</h2><ul>{hidden}</ul>' if hidden else ''}"
        f"<h2>Photos at both ends</h2>{ends}</body></html>"
    )
    atomic_write_text(out / "explanation.json", json.dumps(exp.to_dict(), indent=2))
    atomic_write_text(out / "index.html", html)
    return out / "index.html"
