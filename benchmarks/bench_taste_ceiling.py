"""How far piaa's features can carry a para-human person's taste, with far more than 100 pairs tell.

Issue 20 asks personal ≥ generic + 0.10 ρ at X = 100 on every world. On ``para-human`` no method meets
it. This asks whether any learner could, on these features: for each of the world's 8 persons it
draws 100 test photos from the world's pool (rated 1-5 at the noisy utility's 10/30/70/90 % quantiles,
as the world rates albums) and fits, on ``n`` other pool photos, a linear model to their *noisy
utility itself* — the continuous value the person's ratings are cut from, far more than ``n`` photos'
pairwise preferences say — as an offset on a crowd model plus a ridge regression on the pooled
features (penalty by leave-one-out CV on the fitting photos only). The crowd model ("generic" below)
is a ridge from the same features to the crowd mean, fitted on the world's reference half: a generic
model of the same family; with ``--piaa-generic`` also piaa's own generic model (its head on
efficientnet-lite0, EMD on the reference half's real crowd histograms), the start piaa's
personalization has. Nothing here is tuned on the test photos; every figure is the mean over 8
persons x ``--draws`` draws.

A check that the learner is able: the same fit on the world's true inputs (crowd mean, the five
residual attributes, the eight emotion shares) from ``n`` photos.

    python benchmarks/bench_taste_ceiling.py --feature-cache /tmp/tceil/cache \\
        --piaa-generic efficientnet-lite0,both
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import Provenance  # noqa: E402

ALPHAS = np.logspace(0, 6, 13)


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0)) / np.maximum(x.std(0), 1e-9)


def _offset_ridge(g: np.ndarray, x: np.ndarray, y: np.ndarray):  # noqa: ANN202 - a predictor
    """``y ≈ a·g + b + ridge(x)``: ``a, b`` by least squares, the ridge on what they leave."""
    from sklearn.linear_model import RidgeCV

    design = np.c_[g, np.ones_like(g)]
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    ridge = RidgeCV(alphas=ALPHAS).fit(x, y - design @ coef)
    return lambda g2, x2: np.c_[g2, np.ones_like(g2)] @ coef + ridge.predict(x2)


def _pair_ranker(g: np.ndarray, x: np.ndarray, ratings: np.ndarray, pairs: int, rng: np.random.Generator):  # noqa: ANN202
    """The protocol's input instead: ``pairs`` random pairs of unequal rating among the fitting photos, a
    logistic ranker on the pairs' differences of ``[g, x]`` (``g`` scaled up so its weight is all but
    unpenalized: the crowd model as the starting point), penalty by 5-fold CV (log-loss) over the pairs."""
    from sklearn.linear_model import LogisticRegressionCV

    a, b = np.triu_indices(len(ratings), 1)
    unequal = ratings[a] != ratings[b]
    a, b = a[unequal], b[unequal]
    take = rng.permutation(len(a))[:pairs]
    a, b = a[take], b[take]
    win = np.where(ratings[a] > ratings[b], 1.0, -1.0)
    design = np.c_[30 * g, x]
    d = (design[a] - design[b]) * win[:, None]
    fit = LogisticRegressionCV(
        Cs=np.logspace(-4, 1, 11), cv=5, fit_intercept=False, max_iter=2000, scoring="neg_log_loss"
    )
    with warnings.catch_warnings():  # scikit-learn 1.9's notice that its fitted attributes will change
        warnings.simplefilter("ignore", FutureWarning)
        fit.fit(np.r_[d, -d], np.r_[np.ones(len(d)), np.zeros(len(d))])
    return lambda g2, x2: np.c_[30 * g2, x2] @ fit.coef_[0]


def _piaa_generic(taste, ref: np.ndarray, run) -> np.ndarray:  # noqa: ANN001 - HumanTaste, RunSettings
    """piaa's own generic model (the head, EMD on the real crowd histograms) trained on the whole
    reference half with the protocol's settings: mean scores (1-10) of every photo of the world."""
    import torch

    from piaa.models.train import TrainConfig, cached_source, fit_generic, new_head

    channels = tuple(int(t.shape[1]) for t in taste.maps[:3])
    cfg = TrainConfig()
    head = new_head(channels, cfg, int(taste.maps.stats.shape[1]))
    src = cached_source(taste.maps)
    rows = torch.from_numpy(ref)
    fit_generic(head, lambda i: src(rows[i]), torch.from_numpy(taste.dists[ref]).float(), cfg, run=run)
    head.eval()
    with torch.no_grad():
        n = len(taste.files)
        out = [head.score(src(torch.arange(i, min(i + 256, n)))) for i in range(0, n, 256)]
    return torch.cat(out).numpy().astype(np.float64)


def _ratings(noisy: np.ndarray) -> np.ndarray:
    return 1 + np.searchsorted(np.quantile(noisy, [0.1, 0.3, 0.7, 0.9]), noisy)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=Path("../shared/data/para"))
    ap.add_argument("--feature-cache", type=Path, default=None)
    ap.add_argument("--persons", type=int, default=8)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--ns", default="100,400,1600", help="fitting photos, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--piaa-generic",
        default="",
        help="also start from piaa's own generic model (its head on efficientnet-lite0, EMD on the "
        "reference half) with these feature sets, comma-separated (e.g. efficientnet-lite0,both)",
    )
    args = ap.parse_args()
    prov = Provenance()

    from scipy.stats import spearmanr
    from sklearn.linear_model import RidgeCV

    from piaa.evaluation.world_human import human_persons, load_human_taste
    from piaa.evaluation.worlds import other_backbone
    from piaa.models.attributes import pooled_features
    from piaa.settings import RunSettings

    run = RunSettings.from_env()
    taste = load_human_taste(args.photos, cache_dir=args.feature_cache, run=run)
    other = load_human_taste(
        args.photos, backbone=other_backbone("efficientnet-lite0"), cache_dir=args.feature_cache, run=run
    )
    assert other.rows == taste.rows, "the two backbones read different photos"
    ref, pool, _ = taste.split(args.seed)
    lite, nima = _z(pooled_features(taste.maps)), _z(pooled_features(other.maps))
    feature_sets = {"efficientnet-lite0": lite, "nima-mobilenet": nima, "both": np.hstack([lite, nima])}
    truth = np.c_[taste.crowd, taste.human, taste.mood]
    ns = [int(n) for n in args.ns.split(",")]

    generic = {
        name: RidgeCV(alphas=ALPHAS).fit(x[ref], taste.crowd[ref]).predict(x)
        for name, x in feature_sets.items()
    }
    starts = {name: (name, generic[name], "crowd ridge") for name in feature_sets}
    if args.piaa_generic:
        piaa_scores = _piaa_generic(taste, ref, run)
        for name in args.piaa_generic.split(","):
            starts[f"{name} + piaa's generic model"] = (name, piaa_scores, "piaa's head")
    rows: dict[str, list[float]] = {}
    rng = np.random.default_rng([args.seed, 21])
    for k, person in enumerate(human_persons(args.persons, args.seed)):
        u = person.utility(taste.human[pool], taste.mood[pool], taste.crowd[pool])
        for draw in range(args.draws):
            noisy = u + rng.normal(0, person.noise, len(u))
            order = rng.permutation(len(pool))
            test, rest = order[:100], order[100:]
            rated = _ratings(noisy[test])

            def rho(pred: np.ndarray, rated: np.ndarray = rated) -> float:
                return float(spearmanr(pred, rated)[0])

            rows.setdefault("oracle (noise-free utility)", []).append(rho(u[test]))
            for j, (name, (features, start, kind)) in enumerate(starts.items()):
                x, g = feature_sets[features], start[pool]
                rows.setdefault(f"{name}: generic ({kind})", []).append(rho(g[test]))
                fitting = rest[:100]
                pairs_rng = np.random.default_rng([args.seed, 22, k, draw, j])  # the same whatever else runs
                ranker = _pair_ranker(g[fitting], x[pool][fitting], _ratings(noisy[fitting]), 100, pairs_rng)
                rows.setdefault(f"{name}: 100 pairs among 100 photos", []).append(
                    rho(ranker(g[test], x[pool][test]))
                )
                for n in ns:
                    fit = _offset_ridge(g[rest[:n]], x[pool][rest[:n]], noisy[rest[:n]])
                    rows.setdefault(f"{name}: n = {n}", []).append(rho(fit(g[test], x[pool][test])))
            for n in ns:
                t = truth[pool]
                coef, *_ = np.linalg.lstsq(np.c_[t[rest[:n]], np.ones(n)], noisy[rest[:n]], rcond=None)
                rows.setdefault(f"true inputs: n = {n}", []).append(rho(np.c_[t[test], np.ones(100)] @ coef))
        print(f"person {k} done", file=sys.stderr, flush=True)

    per = args.persons
    lines = [
        f"para-human persons x {args.draws} draws (100 test photos each); learners fitted to the noisy "
        "utility of n other pool photos",
        "",
        "| model | ρ (mean over persons ± s.e.) | − its generic |",
        "|---|---|---|",
    ]
    for name, vals in rows.items():
        v = np.array(vals).reshape(per, args.draws).mean(1)  # per person
        base = name.split(":")[0]
        gen = next((v for key, v in rows.items() if key.startswith(f"{base}: generic (")), None)
        if gen is not None and ": generic (" not in name:
            d = v - np.array(gen).reshape(per, args.draws).mean(1)
            diff = f"{d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(per):.3f}"
        else:
            diff = ""
        lines.append(f"| {name} | {v.mean():.3f} ± {v.std(ddof=1) / np.sqrt(per):.3f} | {diff} |")
    print(prov.header() + "\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
