"""How well piaa's pooled features predict PARA's aesthetic attributes, per backbone and with both.

    nice python benchmarks/bench_attributes.py [--para ../shared/data/para] [--cache /tmp/piaa-taste/cache]

A fixed seeded split of the shared PARA photos (default 4,000 to fit, the other 1,000 held out) trains
:class:`piaa.models.attributes.AttributeHeads` (ridge, penalty by leave-one-out CV on the fitting part
only) on the pooled features of efficientnet-lite0, of nima-mobilenet, and of both concatenated, and
prints held-out R² and Spearman's rho (SRCC) for each of PARA's eight attributes and the crowd's
aesthetic mean; a head on the five pixel attributes alone is the floor. Then the cost of the second
backbone: images/s of one pass of each backbone and of both, over the same photos in the same run
(``uptime`` printed beside). Feature maps are cached (``piaa.evaluation.worlds.extract_cached``; the
PARA and para-human worlds reuse them), as are the pixel attributes. PARA's labels are research and
non-commercial only: they are read from ``--para`` and never copied.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import numpy as np

from piaa.backbones import create_backbone
from piaa.data.labels import mean_score, read_labels
from piaa.evaluation.worlds import extract_cached
from piaa.features.extract import FeatureExtractor
from piaa.models.attributes import AttributeHeads, pixel_attributes, pooled_features, read_attribute_table
from piaa.settings import QUIET

BACKBONES = ("efficientnet-lite0", "nima-mobilenet")
LICENCE = "PARA (Yang et al., CVPR 2022): research and non-commercial use only"


def load(para: Path, cache: Path) -> tuple[list[str], dict[str, np.ndarray], np.ndarray, np.ndarray, tuple]:
    """(image names, pooled features per backbone, pixel attributes, targets (N, 9), target names)."""
    labels = read_labels(para / "labels.csv")
    table = read_attribute_table(para / "attributes.csv")
    files = [para / "images" / f for f in labels.files]
    feats, kept_all = {}, None
    for name in BACKBONES:
        kept, maps = extract_cached(files, create_backbone(name), cache)
        f = pooled_features(maps)
        feats[name] = dict(zip(kept, f, strict=True))
        kept_all = set(kept) if kept_all is None else kept_all & set(kept)
    have = set(table.images)
    rows = [i for i in sorted(kept_all or ()) if labels.files[i] in have]
    names = [labels.files[i] for i in rows]
    out = {n: np.stack([feats[n][i] for i in rows]) for n in BACKBONES}
    px_file = cache / f"pixels-{len(files)}.npz"
    if px_file.is_file():
        with np.load(px_file) as z:
            px_all = z["pixels"]
    else:
        px_all = pixel_attributes([str(f) for f in files])
        np.savez(px_file, pixels=px_all)
    crowd = (mean_score(labels.distributions.astype(np.float64)) - 1) * 4 / 9 + 1  # back onto 1-5
    targets = np.c_[table.rows(names), crowd[rows]]
    return names, out, px_all[rows], targets, (*table.names, "aesthetic (crowd score)")


def speed(files: list[Path]) -> dict[str, float]:
    """Seconds per photo of one full extraction pass of each backbone over ``files`` (warm-up excluded)."""
    out = {}
    for name in BACKBONES:
        fe = FeatureExtractor(create_backbone(name), QUIET)
        list(fe.files(files[:16]))  # warm-up: ONNX export/load, first decode
        t = time.perf_counter()
        n = sum(len(b.indices) for b in fe.files(files))
        out[name] = (time.perf_counter() - t) / n
    return out


def rankers(para: Path, cache: Path, persons: int, splits: int, seed: int) -> None:
    """The issue's claim: a plain linear ranker on the pooled features of one backbone or both,
    fitted to a person's pairs at X = 100, on the para-human world (the same persons and albums for
    every feature set: the world's construction does not depend on the backbone)."""
    from scipy.stats import spearmanr
    from sklearn.linear_model import LogisticRegression

    from piaa.evaluation.protocol import make_split
    from piaa.evaluation.world_human import human_world
    from piaa.models.train import TrainConfig

    worlds = {
        b: human_world(para, persons=persons, seed=seed, backbone=b, cache_dir=cache) for b in BACKBONES
    }
    pool = {b: pooled_features(w.photo_maps) for b, w in worlds.items()}
    pool["both"] = np.hstack([pool[b] for b in BACKBONES])
    pool = {k: (v - v.mean(0)) / np.maximum(v.std(0), 1e-6) for k, v in pool.items()}
    w0 = worlds[BACKBONES[0]]
    assert all(
        np.array_equal(a.scores, b.scores)
        for a, b in zip(w0.albums, worlds[BACKBONES[1]].albums, strict=True)
    )
    cfg = TrainConfig(seed=seed)
    rho: dict[str, list[float]] = {k: [] for k in pool}
    for album in w0.albums:
        rng = np.random.default_rng([seed, 100, int(album.user.removeprefix("person"))])
        per: dict[str, list[float]] = {k: [] for k in pool}
        for _ in range(splits):
            s = make_split(w0, album, 100, rng, cfg)
            for k, x in pool.items():
                d = x[s.pairs[:, 0]] - x[s.pairs[:, 1]]
                clf = LogisticRegression(C=1.0, fit_intercept=False, max_iter=2000)
                clf.fit(np.vstack([d, -d]), np.r_[np.ones(len(d)), np.zeros(len(d))])
                per[k].append(spearmanr(x[s.test] @ clf.coef_[0], s.test_scores).statistic)
        for k in pool:
            rho[k].append(float(np.mean(per[k])))
    how = "logistic, C = 1, no intercept; X = 100, the protocol's pairs; para-human world"
    print(f"\nLinear ranker on pooled features ({how}), {persons} persons x {splits} splits:")
    print("SRCC on the test photos, mean ± sd over persons\n")
    print("| features | SRCC |")
    print("|---|---|")
    for k, v in rho.items():
        print(f"| {k} | {np.mean(v):.3f} ± {np.std(v):.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--para", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/para")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/piaa-taste/cache"))
    ap.add_argument("--train", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed-photos", type=int, default=200)
    ap.add_argument("--rankers", action="store_true", help="only the linear-ranker comparison")
    ap.add_argument("--persons", type=int, default=8)
    ap.add_argument("--splits", type=int, default=2)
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    load_avg = lambda: " ".join(f"{x:.1f}" for x in os.getloadavg())  # noqa: E731
    if args.rankers:
        rankers(args.para, args.cache, args.persons, args.splits, args.seed)
        print(f"load {load_avg()}")
        return
    names, feats, px, y, tnames = load(args.para, args.cache)
    order = np.random.default_rng(args.seed).permutation(len(names))
    tr, te = order[: args.train], order[args.train :]
    split = f"{len(tr)} fit, {len(te)} held out (seed {args.seed})"
    print(f"{len(names)} PARA photos: {split}; load {load_avg()}")
    sets = {
        "pixel attributes (5)": (px, ("pixels",)),
        "efficientnet-lite0": (feats["efficientnet-lite0"], ("efficientnet-lite0",)),
        "nima-mobilenet": (feats["nima-mobilenet"], ("nima-mobilenet",)),
        "both": (np.hstack([feats[b] for b in BACKBONES]), BACKBONES),
    }
    scores = {}
    for label, (x, bbs) in sets.items():
        t = time.perf_counter()
        heads = AttributeHeads.fit(x[tr], y[tr], tnames, backbones=bbs, licence=LICENCE, source="shared PARA")
        scores[label] = heads.score(x[te], y[te])
        print(f"  fitted {label} ({x.shape[1]} features) in {time.perf_counter() - t:.1f} s", flush=True)
    cols = list(sets)
    print("\nHeld-out R² / SRCC per attribute\n")
    print("| attribute | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for n in tnames:
        cells = [f"{scores[c][n]['r2']:.3f} / {scores[c][n]['srcc']:.3f}" for c in cols]
        print(f"| {n} | " + " | ".join(cells) + " |")
    mean = [np.mean([scores[c][n]["r2"] for n in tnames[:-1]]) for c in cols]
    print("| mean R² of the 8 attributes | " + " | ".join(f"{m:.3f}" for m in mean) + " |")

    # What a person of the para-human world weighs: each attribute beyond the crowd score (the residual of
    # a line on the crowd's aesthetic mean, fitted on the fitting part only).
    crowd = np.c_[np.ones(len(y)), y[:, -1]]
    coef, *_ = np.linalg.lstsq(crowd[tr], y[tr, :-1], rcond=None)
    resid = y[:, :-1] - crowd @ coef
    res = {}
    for label, (x, bbs) in sets.items():
        heads = AttributeHeads.fit(x[tr], resid[tr], tnames[:-1], backbones=bbs, licence=LICENCE)
        res[label] = heads.score(x[te], resid[te])
    print("\nHeld-out R² / SRCC of each attribute beyond the crowd score (residual on aesthetic mean)\n")
    print("| attribute | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for n in tnames[:-1]:
        print(
            f"| {n} | " + " | ".join(f"{res[c][n]['r2']:.3f} / {res[c][n]['srcc']:.3f}" for c in cols) + " |"
        )

    files = [args.para / "images" / n for n in names[: args.speed_photos]]
    before = load_avg()
    sec = speed(files)
    both = sum(sec.values())
    loads = f"load before {before}, after {load_avg()}"
    print(f"\nExtraction speed over {len(files)} photos, one process ({loads})\n")
    print("| features | images/s | s per photo |")
    print("|---|---|---|")
    for name, s in sec.items():
        print(f"| {name} | {1 / s:.1f} | {s:.4f} |")
    print(f"| both (two passes) | {1 / both:.1f} | {both:.4f} |")
    ratio = both / sec["efficientnet-lite0"]
    print(f"\nboth / efficientnet-lite0 alone: {ratio:.2f}x the time")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
