"""Random vs active pair choice on simulated people: how well does a model trained on N clicks rank the
photos the person never saw?

An album of real photos (default 200 from ../shared/data/photos) is embedded once. Each simulated person
(``piaa.evaluation.simulate.random_user``: the crowd's taste plus personal weights, judging with noise) clicks
through pairs drawn from 150 of the photos, by ``RandomSampler`` (the paper) or ``ActiveSampler``
(expected information gain, the default; and, for comparison, plain "closest scores"). After 10, 25, 50
and 100 clicks, the cheap linear model of ``piaa.sampling.active`` (the same for both
strategies) is fitted to the stated plus transitively inferred pairs and its scores on the 50 held-out
photos are compared with the person's noise-free utility (Spearman rho). Prints a Markdown table.

    python benchmarks/bench_active.py [--people 40] [--photos 200] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _provenance import Provenance
from piaa.backbones import create_backbone
from piaa.data.images import iter_image_files, load_image
from piaa.evaluation.metrics import spearman
from piaa.evaluation.simulate import photo_attributes, random_user
from piaa.sampling import ActiveSampler, RandomSampler, album_features, fit_ranker

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"
CHECKPOINTS = (10, 25, 50, 100)
HELD_OUT = 50


STRATEGIES: dict[str, dict[str, str]] = {
    "random (the paper; `--strategy random`)": {},
    "active, information gain (`--strategy active`)": {"criterion": "information"},
    "active variant: closest scores only": {"criterion": "uncertainty"},
}


def simulate(
    options: dict[str, str], x: np.ndarray, attrs: np.ndarray, names: list[str], person: int
) -> dict[int, float]:
    """One person's session: Spearman rho on held-out photos at each checkpoint."""
    rng = np.random.default_rng(person)
    taste = random_user(rng)
    utility = taste.utility(attrs)
    order = rng.permutation(len(names))
    pool, held = order[HELD_OUT:], order[:HELD_OUT]
    items = [names[i] for i in pool]
    index = {n: i for i, n in enumerate(names)}
    sampler: RandomSampler | ActiveSampler
    if options:
        sampler = ActiveSampler(items, x[pool], seed=person, **options)
    else:
        sampler = RandomSampler(items, seed=person)
    judge = np.random.default_rng(10_000 + person)  # the person's rating noise
    stated: list[tuple[str, str]] = []
    out: dict[int, float] = {}
    for click in range(1, max(CHECKPOINTS) + 1):
        pair = sampler.next()
        assert pair is not None
        a, b = pair
        stated.append(pair if taste.prefers(utility[index[a]], utility[index[b]], judge) else (b, a))
        if isinstance(sampler, ActiveSampler):
            sampler.update(stated)
        if click in CHECKPOINTS:
            model = fit_ranker(x, stated, index)
            out[click] = spearman(model.scores(x[held]), utility[held])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=40)
    ap.add_argument("--photos", type=int, default=200)
    ap.add_argument("--folder", type=Path, default=PHOTOS)
    ap.add_argument("--markdown", type=Path, help="also write the table, with its provenance, to this file")
    args = ap.parse_args()
    prov = Provenance()

    files = sorted(iter_image_files([args.folder]))
    pick = np.random.default_rng(0).choice(len(files), args.photos, replace=False)
    files = [files[i] for i in sorted(pick)]
    names = [f.name for f in files]
    t0 = time.perf_counter()
    x = album_features(files, create_backbone())
    attrs = np.stack([photo_attributes(load_image(f, draft_size=(320, 320))) for f in files])
    t_embed = time.perf_counter() - t0

    results: dict[str, list[dict[int, float]]] = {name: [] for name in STRATEGIES}
    t1 = time.perf_counter()
    for person in range(args.people):
        for name, options in STRATEGIES.items():
            results[name].append(simulate(options, x, attrs, names, person))
    t_sim = time.perf_counter() - t1

    lines = [
        f"{args.photos} photos ({args.photos - HELD_OUT} to pick pairs from, {HELD_OUT} held out), "
        f"{args.people} simulated people; features {t_embed:.0f} s, sessions {t_sim:.0f} s\n",
        "| pair choice | " + " | ".join(f"{c} clicks" for c in CHECKPOINTS) + " |",
        "|---|" + "---|" * len(CHECKPOINTS),
    ]
    for strategy, runs in results.items():
        cells = []
        for c in CHECKPOINTS:
            v = np.array([r[c] for r in runs])
            cells.append(f"{v.mean():.2f} ± {v.std(ddof=1) / np.sqrt(len(v)):.2f}")
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    lines.append(
        "\nSpearman rho (mean ± standard error over people) of the linear model vs the true utility."
    )
    print("\n".join(lines))
    prov.write(args.markdown, "\n".join(lines))


if __name__ == "__main__":
    main()
