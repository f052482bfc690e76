"""Time to personalize and scoring throughput; with --sweep, the training settings compared.

    python benchmarks/bench_personalize.py [--photos ../shared/data/photos]
    python benchmarks/bench_personalize.py --sweep

Setting (issue 3): a reference of 500 photos with simulated crowd histograms (built once, not timed),
an album of 100 other photos, 100 pairs judged by a simulated person, K = 50. Scoring runs end to end
from JPEG files. The sweep trains with several learning rates / epoch counts and reports Spearman rho
against the simulated person's noise-free taste on 300 photos nobody judged, mean over 3 people.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from piaa.evaluate import spearman
from piaa.images import iter_image_files
from piaa.personalize import personalize
from piaa.reference import build_reference
from piaa.simulate import crowd_histograms, crowd_taste, judge_pairs, photo_attributes, random_user

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"


def setup(photos: Path, work: Path, n_ref: int = 500, n_album: int = 100, seed: int = 0) -> dict:
    files = list(iter_image_files([photos]))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(files))
    ref_files = [files[i] for i in order[:n_ref]]
    album_files = [files[i] for i in order[n_ref : n_ref + n_album]]
    test_files = [files[i] for i in order[n_ref + n_album : n_ref + n_album + 300]]
    attrs = {f: photo_attributes(Image.open(f)) for f in ref_files + album_files + test_files}
    labels = work / "crowd.csv"
    counts = crowd_histograms(crowd_taste().utility(np.stack([attrs[f] for f in ref_files])), rng)
    with open(labels, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image"] + [f"c{i}" for i in range(1, 11)])
        for f, c in zip(ref_files, counts, strict=True):
            w.writerow([f.name, *c])
    album = work / "album"
    album.mkdir(exist_ok=True)
    for f in album_files:
        if not (album / f.name).exists():
            (album / f.name).symlink_to(f.resolve())
    ref = work / "reference"
    t = time.perf_counter()
    build_reference(labels, photos, ref, progress=False)
    print(f"reference of {n_ref} photos built in {time.perf_counter() - t:.1f} s (one-off, not counted)")
    return {"ref": ref, "album": album, "album_files": album_files, "test_files": test_files, "attrs": attrs}


def write_prefs(path: Path, w: dict, user, rng: np.random.Generator, n_pairs: int = 100) -> None:
    files = w["album_files"]
    u = user.utility(np.stack([w["attrs"][f] for f in files]))
    idx = set()
    while len(idx) < n_pairs:
        a, b = sorted(rng.choice(len(files), 2, replace=False))
        idx.add((int(a), int(b)))
    pairs = judge_pairs(user, u, sorted(idx), rng)
    with open(path, "w") as fh:
        fh.write("preferred,other\n")
        for a, b in pairs:
            fh.write(f"{files[a].name},{files[b].name}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    ap.add_argument("--sweep", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        w = setup(args.photos, work)
        rng = np.random.default_rng(1)
        users = [random_user(rng) for _ in range(3)]
        prefs = []
        for i, user in enumerate(users):
            prefs.append(work / f"prefs{i}.csv")
            write_prefs(prefs[-1], w, user, rng)
        if not args.sweep:
            t = time.perf_counter()
            prof = personalize(w["ref"], w["album"], prefs[0], work / "profile", progress=False)
            dt = time.perf_counter() - t
            r = prof.report
            print(
                f"personalize: {dt:.1f} s  (100 album photos, {r.pairs_stated} stated + {r.pairs_inferred} "
                f"inferred pairs, K=50 -> {r.neighbours} neighbours)"
            )
            files = w["test_files"]
            prof.score_files(files[:16], progress=False)  # warm-up
            t = time.perf_counter()
            n = len(prof.score_files(files, progress=False))
            print(f"score: {n / (time.perf_counter() - t):.1f} images/s end to end from JPEG ({n} photos)")
            return
        truth = [u.utility(np.stack([w["attrs"][f] for f in w["test_files"]])) for u in users]
        settings = [
            ("generic_lr", [3e-4, 1e-3, 3e-3], {"rank_epochs": 0}),
            ("generic_epochs", [5, 10, 20, 40], {"rank_epochs": 0}),
            ("rank_lr", [1e-4, 3e-4, 1e-3, 3e-3], {}),
            ("rank_epochs", [5, 10, 20, 40], {}),
        ]
        for name, values, extra in settings:
            for v in values:
                rhos = []
                for p, t in zip(prefs, truth, strict=True):
                    prof = personalize(
                        w["ref"],
                        w["album"],
                        p if extra.get("rank_epochs", 1) else None,
                        None,
                        progress=False,
                        **{name: v, **extra},
                    )
                    s = np.array([x.score for x in prof.score_files(w["test_files"], progress=False)])
                    rhos.append(spearman(s, t))
                print(f"sweep {name}={v}: rho {np.mean(rhos):.3f} ± {np.std(rhos):.3f}")


if __name__ == "__main__":
    main()
