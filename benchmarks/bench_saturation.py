"""Do personal scores saturate? Issue 23's new-user setting: a reference of 600 real PARA photos, an
album of 150 other PARA photos and 100 judgements "always the brighter photo"; and the same album and
judgements fine-tuned from ``--generic nima-ava``. Prints, per model, the share of album photos within
0.01 of the top score, the ties at the top (photos within 0.001 of it), the mean entropy (bits) of the
predicted 10-bin distributions and their largest bin, the chosen candidate, its held-out accuracy, and
the Spearman correlation of the scores with the photos' brightness (all photos, and those no judgement
named).

    python benchmarks/bench_saturation.py --para ../shared/data/para [--work /tmp/sat]

The reference build is a one-off (about 10 s at 600 photos) and is kept in ``--work``.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def setup(para: Path, work: Path, n_ref: int = 600, n_album: int = 150, n_pairs: int = 100) -> dict:
    from piaa.features.reference import build_reference

    work.mkdir(parents=True, exist_ok=True)
    with open(para / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    order = np.random.default_rng(0).permutation(len(rows))
    album = work / "album"
    album.mkdir(exist_ok=True)
    bright = {}
    for i in order[n_ref : n_ref + n_album]:
        f = para / "images" / rows[i]["image"]
        if not (album / f.name).exists():
            (album / f.name).symlink_to(f.resolve())
        bright[f.name] = float(np.asarray(Image.open(f).convert("L"), dtype=np.float64).mean())
    ref = work / "reference"
    if not (ref / "reference.sqlite").exists():
        labels = work / "ref.csv"
        with open(labels, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["image", "aesthetic_mean"])
            w.writerows([rows[i]["image"], rows[i]["aesthetic_mean"]] for i in order[:n_ref])
        build_reference(labels, para / "images", ref, progress=False)
    names = sorted(bright)
    rng = np.random.default_rng(1)
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < n_pairs:
        a, b = sorted(int(x) for x in rng.choice(len(names), 2, replace=False))
        if bright[names[a]] != bright[names[b]]:
            pairs.add((a, b))
    prefs = work / "prefs.csv"
    with open(prefs, "w") as fh:
        fh.write("preferred,other\n")
        for a, b in sorted(pairs):
            x, y = (names[a], names[b]) if bright[names[a]] > bright[names[b]] else (names[b], names[a])
            fh.write(f"{x},{y}\n")
    judged = {names[i] for pair in pairs for i in pair}
    return {"ref": ref, "album": album, "prefs": prefs, "bright": bright, "judged": judged}


def summarize(name: str, profile, seconds: float, w: dict | None = None) -> None:
    from scipy.stats import spearmanr

    from piaa.models.losses import score_from_distribution

    p = profile.report.album_distributions
    s = score_from_distribution(torch.as_tensor(p)).numpy()
    top = s.max()
    ent = -(p * np.log2(np.clip(p, 1e-12, 1))).sum(1)
    print(
        f"{name:<28} within 0.01 of top {np.mean(s >= top - 0.01):6.1%}  ties at top (0.001) "
        f"{int(np.sum(s >= top - 0.001)):3d}  scores {s.min():.2f}-{top:.2f} (sd {s.std():.2f})  "
        f"entropy mean {ent.mean():.2f} bits (min {ent.min():.2f})  largest bin max {p.max():.4f}  "
        f"choice {profile.report.selection.choice!r}  {seconds:.0f} s"
    )
    if w is not None and profile.report.pairs_stated:  # how well it learned the taste: SRCC with brightness
        sc = profile.report.album_scores
        unseen = [n for n in sc if n not in w["judged"]]
        srcc = lambda ns: spearmanr([sc[n] for n in ns], [w["bright"][n] for n in ns])[0]  # noqa: E731
        sel = profile.report.selection
        print(
            f"{'':<28} held-out accuracy of the choice {sel.cv_accuracy.get(sel.choice, float('nan')):.3f}  "
            f"SRCC with brightness: all {srcc(list(sc)):.3f}, unjudged ({len(unseen)}) {srcc(unseen):.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--para", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("/tmp/piaa-saturation"))
    args = ap.parse_args()
    from piaa.models.personalize import personalize

    w = setup(args.para, args.work)
    for name, kwargs in (
        ("PARA reference, generic", {"reference": w["ref"], "prefs": None}),
        ("PARA reference, personal", {"reference": w["ref"], "prefs": w["prefs"]}),
        ("nima-ava, personal", {"reference": None, "generic": "nima-ava", "prefs": w["prefs"]}),
    ):
        t = time.perf_counter()
        prof = personalize(album=w["album"], progress=False, **kwargs)
        summarize(name, prof, time.perf_counter() - t, w)


if __name__ == "__main__":
    main()
