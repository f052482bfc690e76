"""How often a linear ranker on piaa's features could pick the photographer's frame, if it were told the
photographer's order of every frame of every review burst: a ceiling for learning culling corrections.

Issue 18 asks that piaa's pick be the photographer's in ≥ 0.8 of bursts after 50 culling corrections
(``bench_cull_feedback.py``; 0.67-0.77 measured). This asks what the features allow at all. The shoot,
the split into review and test bursts and the simulated photographer are ``bench_cull_feedback.py``'s
(the same seed gives the same bursts and picks). Every pair of frames within a review burst, ordered
by the photographer's utility, trains a logistic ranker on the pairs' differences (standardized
columns; penalty by 5-fold CV over bursts, log-loss); a test burst's pick is its highest-ranked frame by
``piaa cull``'s rule (unflagged frames first). This is far more than 50 corrections say: every review
burst fully ordered. Nothing is fitted or tuned on the test bursts.

Rows: nima-ava's score alone (the generic model); the photographer's own utility put through the same
rule (what any scorer could reach at best: the rule puts a flagged frame last, and the photographer
sometimes keeps one); linear rankers on the score with each backbone's pooled features
(``piaa.models.attributes.pooled_features``: what piaa's heads read); for reference, linear rankers on
the generation parameters themselves (exposure change, its square, defocus, motion, noise), with the
exposure change as made and as any measurement on the frames could give it (its offset from the
burst's median); last, piaa's own personal model (``personalize`` from nima-ava, as "Update my
profile" trains it) on the same pairs.

    python benchmarks/bench_cull_ceiling.py --bursts 350 --test-share 0.45 --seed 0 --work /tmp/ceiling/s0
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _provenance import Provenance  # noqa: E402
from bench_cull_feedback import accuracy, make_trial, utility  # noqa: E402
from cull_bursts import DEFAULT_PHOTOS  # noqa: E402


def _ranker(x: np.ndarray, pairs: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Weights of a logistic ranker on ``x[pairs[:, 0]] - x[pairs[:, 1]]`` (first preferred), columns
    standardized, penalty by 5-fold CV grouped by burst (``groups``, one per pair)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import GroupKFold

    z = (x - x.mean(0)) / np.maximum(x.std(0), 1e-9)
    d = z[pairs[:, 0]] - z[pairs[:, 1]]
    xs, ys, gs = np.r_[d, -d], np.r_[np.ones(len(d)), np.zeros(len(d))], np.r_[groups, groups]
    folds = list(GroupKFold(n_splits=5).split(xs, ys, gs))
    fit = LogisticRegressionCV(
        Cs=np.logspace(-4, 2, 13), cv=folds, fit_intercept=False, max_iter=3000, scoring="neg_log_loss"
    )
    with warnings.catch_warnings():  # scikit-learn 1.9's notice that its fitted attributes will change
        warnings.simplefilter("ignore", FutureWarning)
        fit.fit(xs, ys)
    return z @ fit.coef_[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bursts", type=int, default=350)
    ap.add_argument("--test-share", type=float, default=0.45)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    ap.add_argument("--work", type=Path, default=Path("/tmp/piaa-cull-ceiling"))
    args = ap.parse_args()
    prov = Provenance()

    from piaa.backbones import create_backbone
    from piaa.cull import CullSettings, cull
    from piaa.features.extract import FeatureExtractor
    from piaa.models.attributes import pooled_features
    from piaa.settings import RunSettings

    trial = make_trial(args.work, args.photos, args.bursts, args.test_share, args.seed)
    shoot, run = trial.shoot, RunSettings.from_env()
    names = [p.name for p in shoot.files]
    row = {n: i for i, n in enumerate(names)}
    result = cull(shoot.files, "nima-ava", CullSettings(eyes=False), run=run)
    flagged = {r.path.name for r in result.rows if r.flags}
    score = np.array([{r.path.name: r.score for r in result.rows}[n] for n in names])

    pooled = {}
    for bb in ("nima-mobilenet", "efficientnet-lite0"):
        kept, maps = FeatureExtractor(create_backbone(bb), run).collect(shoot.files, desc=bb)
        assert kept == list(range(len(names))), f"{bb} could not read every frame"
        pooled[bb] = pooled_features(maps).astype(np.float64)
    frames = [shoot.frames[n] for n in names]
    ev = np.array([f.ev for f in frames])
    median = {b: float(np.median([shoot.frames[n].ev for n in ns])) for b, ns in trial.by_burst.items()}
    ev_rel = ev - np.array([median[f.burst] for f in frames])
    rest = np.array([[f.blur, f.motion, f.noise] for f in frames])

    pairs, groups = [], []
    for b in sorted(trial.review_ids):
        ns = trial.by_burst[b]
        for i, a in enumerate(ns):
            for c in ns[i + 1 :]:
                ua, uc = utility(shoot.frames[a], trial.pref_ev), utility(shoot.frames[c], trial.pref_ev)
                if ua != uc:
                    pairs.append((row[a], row[c]) if ua > uc else (row[c], row[a]))
                    groups.append(b)
    pairs_a, groups_a = np.array(pairs), np.array(groups)

    designs = {
        "nima-ava score + nima-mobilenet pooled features": np.c_[score, pooled["nima-mobilenet"]],
        "nima-ava score + efficientnet-lite0 pooled features": np.c_[score, pooled["efficientnet-lite0"]],
        "nima-ava score + both": np.c_[score, pooled["nima-mobilenet"], pooled["efficientnet-lite0"]],
        "generation parameters, exposure as made": np.c_[ev, ev**2, rest],
        "generation parameters, exposure from the burst's median": np.c_[ev_rel, ev_rel**2, rest],
    }
    n = len(trial.test_bursts)
    lines = [
        f"seed {args.seed}: {len(names)} frames, {len(trial.review_ids)} review / {n} test bursts, "
        f"pref_ev {trial.pref_ev:+.2f}; {len(pairs)} within-burst pairs from the review bursts",
        "",
        "| ranker | pick accuracy on the test bursts ± s.e. |",
        "|---|---|",
    ]

    def line(label: str, s: np.ndarray) -> str:
        p = accuracy(trial.test_bursts, dict(zip(names, s.tolist(), strict=True)), flagged, trial.best)
        return f"| {label} | {p:.3f} ± {(p * (1 - p) / n) ** 0.5:.3f} |"

    lines.append(line("nima-ava score alone (no fit)", score))
    truth = np.array([utility(shoot.frames[n], trial.pref_ev) for n in names])
    lines.append(line("the photographer's own utility (no fit): the rule's ceiling", truth))
    for label, x in designs.items():
        lines.append(line(label, _ranker(x, pairs_a, groups_a)))
        print(lines[-1], file=sys.stderr, flush=True)
    # piaa's own personal model told the same: every ordered within-burst pair of the review bursts
    from piaa.models.personalize import personalize
    from piaa.preferences import PreferenceStore

    store_path = args.work / "every-pair.sqlite"
    store_path.unlink(missing_ok=True)
    with PreferenceStore(store_path) as store:
        store.add_many([(names[a], names[c]) for a, c in pairs], source="cull")
    prof = personalize(
        None, shoot.folder, prefs=store_path, out=args.work / "every-pair", generic="nima-ava", settings=run
    )
    personal = prof.report.album_scores
    label = "piaa's personal model (from nima-ava) on every within-burst review pair"
    lines.append(line(label, np.array([personal[n] for n in names])))
    flags_of = {r.path.name: r.flags for r in result.rows}
    lost: dict[str, int] = {}
    for b in trial.test_bursts:
        theirs = trial.best[tuple(b)]
        if flags_of[theirs] and not all(flags_of[f] for f in b):
            for flag in flags_of[theirs]:
                lost[flag] = lost.get(flag, 0) + 1
    lines.append(
        "| the photographer's frame flagged, another frame of the burst not (test bursts, by flag) | "
        + (", ".join(f"{k} {v}" for k, v in sorted(lost.items())) or "none")
        + " |"
    )
    chance = sum(1 / len(b) for b in trial.test_bursts) / n
    lines.append(f"| chance | {chance:.3f} |")
    print(prov.header() + "\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
