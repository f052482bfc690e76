"""Table-1 runs of personal methods against their generic model, with the issue-20 targets per world.

``piaa evaluate`` prints Table 1 (mean ± std over albums). Issue 20's targets need more: for every
personal method, the mean of (personal − generic) ρ over albums with its standard error, and how many
albums fall more than 0.02 below their generic model, each album's difference with its standard error
over the splits. This runs the same protocol on the same world as ``piaa evaluate`` (same seeds, same
numbers) and writes the table, those figures and every per-split value (JSON) to ``--out``::

    python benchmarks/bench_taste.py --world para-human --photos ../shared/data/para --splits 2 \
        --feature-cache /tmp/cache --methods "piaa (full),w/o rankings (generic),taste space" --out DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import Provenance  # noqa: E402

GENERIC = "w/o rankings (generic)"
HARM = 0.02  # the "no album more than 0.02 below its generic model"


def targets(per_split: dict[str, dict[int, list[list[float]]]], generic: str = GENERIC) -> str:
    """Markdown lines: per personal method and X, personal − generic ρ (mean over albums ± its standard
    error), albums more than :data:`HARM` below generic (each: difference ± its standard error over the
    splits) and the worst album. ``per_split[method][x]`` is one list of per-split ρ per album."""
    lines = []
    for m, by_x in per_split.items():
        if m == generic or m not in per_split or generic not in per_split:
            continue
        for x, albums in by_x.items():
            g = per_split[generic].get(x)
            if not g:
                continue
            d = [np.asarray(p) - np.asarray(q) for p, q in zip(albums, g, strict=True)]
            mean = np.array([v.mean() for v in d])
            se_mean = mean.std(ddof=1) / np.sqrt(len(mean)) if len(mean) > 1 else float("nan")
            below = [(k, v.mean(), v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan"))
                     for k, v in enumerate(d) if v.mean() < -HARM]  # fmt: skip
            bad = ", ".join(f"album {k}: {v:+.3f} ± {se:.3f}" for k, v, se in below) or "none"
            lines.append(
                f"- {m}, X = {x}: personal − generic ρ {mean.mean():+.3f} ± {se_mean:.3f} (mean over "
                f"{len(mean)} albums ± standard error); worst album {mean.min():+.3f}; albums more than "
                f"{HARM} below generic: {len(below)} ({bad}; ± standard error over the splits)"
            )
    return "\n".join(lines)


def linear_ranker():  # noqa: ANN201 - a Method
    """A diagnostic method, not piaa's (``--methods "linear ranker (generic + pooled)"``): a logistic
    ranker on the pairs' differences of [the generic model's score, the pooled features
    (:func:`piaa.models.attributes.pooled_features`)], columns standardized over the pool and the score
    scaled up 30 times so that its weight is all but unpenalized (the generic model is where it starts),
    penalty by 5-fold cross-validation (log-loss) over the pairs. Below ``fit_personal``'s 20 judged
    photos it is the generic model. How far a plain linear fit on what the head reads goes."""
    import warnings

    from sklearn.linear_model import LogisticRegressionCV

    from piaa.models.attributes import pooled_features

    pooled: dict[int, np.ndarray] = {}  # per world (its pool's maps), computed once

    def method(s):  # noqa: ANN001, ANN202 - a Split
        world = s.world
        g = s.head_scores(s.generic(), np.arange(len(world.photo_emb))).astype(np.float64)
        if len(np.unique(s.pairs[: s.stated])) < s.cfg.min_fit_photos:
            return g[s.test]
        key = id(world.photo_maps)
        if key not in pooled:
            x = pooled_features(world.photo_maps).astype(np.float64)
            pooled[key] = (x - x.mean(0)) / np.maximum(x.std(0), 1e-9)
        design = np.c_[30 * (g - g.mean()) / max(g.std(), 1e-9), pooled[key]]
        d = design[s.pairs[:, 0]] - design[s.pairs[:, 1]]
        fit = LogisticRegressionCV(
            Cs=np.logspace(-4, 1, 11), cv=5, fit_intercept=False, max_iter=2000, scoring="neg_log_loss"
        )
        with warnings.catch_warnings():  # scikit-learn 1.9's notice that its fitted attributes will change
            warnings.simplefilter("ignore", FutureWarning)
            fit.fit(np.r_[d, -d], np.r_[np.ones(len(d)), np.zeros(len(d))])
        return design[s.test] @ fit.coef_[0]

    return method


DIAGNOSTICS = {"linear ranker (generic + pooled)": linear_ranker}
"""Methods this benchmark adds to the registry for its run only (diagnostics, not piaa's methods)."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", default="photos", help="photos, para or para-human")
    ap.add_argument("--photos", type=Path, default=None)
    ap.add_argument("--backbone", default="efficientnet-lite0")
    ap.add_argument("--persons", type=int, default=8)
    ap.add_argument("--splits", type=int, default=2)
    ap.add_argument(
        "--methods",
        default=f"piaa (full),{GENERIC},taste space",
        help=f"registered methods, or this benchmark's diagnostics: {', '.join(DIAGNOSTICS)}",
    )
    ap.add_argument("--feature-cache", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--xs", default="10,100", help="training photos per album, comma-separated")
    ap.add_argument("--out", type=Path, required=True, help="folder for results.md and results.json")
    args = ap.parse_args()
    prov = Provenance()

    from piaa.evaluation import methods as registry
    from piaa.evaluation import protocol
    from piaa.evaluation.metrics import spearman

    photos = args.photos or Path("../shared/data/photos" if args.world == "photos" else "../shared/data/para")
    extra = {"cache_dir": args.feature_cache} if args.world in ("para", "para-human") else {}
    world = protocol.simulated_world(
        photos, persons=args.persons, seed=args.seed, backbone=args.backbone, kind=args.world, **extra
    )
    chosen = [m.strip() for m in args.methods.split(",")]
    # Every call's rho, in the protocol's order (album, X, split, method), to rebuild per-split values.
    calls: dict[str, list[tuple[int, float]]] = {m: [] for m in chosen}

    def recorder(name: str):
        inner = DIAGNOSTICS[name]() if name in DIAGNOSTICS else registry.EVALUATION_METHODS.get(name)

        def run(s):  # noqa: ANN001, ANN202 - a Split
            pred = inner(s)
            calls[name].append((len(s.train), spearman(pred, s.test_scores)))
            return pred

        return run

    saved = registry.EVALUATION_METHODS.items()
    for m in chosen:
        registry.EVALUATION_METHODS.register(m, recorder(m))
    try:
        xs = tuple(int(x) for x in args.xs.split(","))
        result = protocol.run(world, methods=chosen, xs=xs, splits=args.splits, seed=args.seed)
    finally:
        for m, method in saved:
            registry.EVALUATION_METHODS.register(m, method)
    jobs = [(a, x) for a in world.albums for x in result.xs if x < len(a.photos) - 1]
    per_split: dict[str, dict[int, list[list[float]]]] = {}
    for m, vals in calls.items():
        for j, (_, x) in enumerate(jobs):
            chunk = vals[j * args.splits : (j + 1) * args.splits]
            assert all(n == x for n, _ in chunk), "calls out of the protocol's order"
            per_split.setdefault(m, {}).setdefault(x, []).append([r for _, r in chunk])
    notes = targets(per_split)
    text = (
        f"{world.description}; {args.splits} splits; {result.seconds / 60:.1f} min\n\n"
        f"{result.table()}\n\n{notes}\n"
    )
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    prov.write(args.out / "results.md", text)
    from piaa.io import atomic_write_text

    atomic_write_text(
        args.out / "results.json",
        json.dumps(
            {
                "description": world.description,
                "splits": args.splits,
                "seconds": result.seconds,
                "rho_per_split": per_split,
            },
            indent=1,
        ),  # fmt: skip
    )


if __name__ == "__main__":
    main()
