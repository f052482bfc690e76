"""Time to personalize and scoring throughput.

    python benchmarks/bench_personalize.py [--photos ../shared/data/photos] [--markdown FILE]
    python benchmarks/bench_personalize.py --para ../shared/data/para --ref-size 4900 --keep /tmp/para-ref

Setting (issue 3): a reference of 500 photos with simulated crowd histograms (built once, not timed),
an album of 100 other photos, 100 pairs judged by a simulated person, K = 50. Scoring runs end to end
from JPEG files. (How well the trained models rank is measured by ``piaa evaluate``.)

``--para``: the reference is ``--ref-size`` PARA photos with their real crowd means (issue 10's setting:
5,000 photos = 4,900 reference + 100 album), built once into ``--keep`` (reused when it exists).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from _provenance import Provenance
from piaa.data.images import iter_image_files
from piaa.evaluation.simulate import crowd_histograms, crowd_taste, judge_pairs, photo_attributes, random_user
from piaa.features.reference import build_reference
from piaa.models.personalize import personalize

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


def setup_para(
    para: Path, work: Path, keep: Path | None, n_ref: int, n_album: int = 100, seed: int = 0
) -> dict:
    with open(para / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    order = np.random.default_rng(seed).permutation(len(rows))
    ref_rows = [rows[i] for i in order[:n_ref]]
    album_files = [para / "images" / rows[i]["image"] for i in order[n_ref : n_ref + n_album]]
    test_files = [para / "images" / rows[i]["image"] for i in order[n_ref + n_album : n_ref + n_album + 300]]
    attrs = {f: photo_attributes(Image.open(f)) for f in album_files}
    album = work / "album"
    album.mkdir(exist_ok=True)
    for f in album_files:
        (album / f.name).symlink_to(f.resolve())
    ref = keep if keep is not None else work / "reference"
    if not (ref / "reference.sqlite").exists():
        labels = work / "para-ref.csv"
        with open(labels, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["image", "aesthetic_mean"])
            w.writerows([r["image"], r["aesthetic_mean"]] for r in ref_rows)
        t = time.perf_counter()
        build_reference(labels, para / "images", ref, progress=True)
        dt = time.perf_counter() - t
        print(f"reference of {n_ref} PARA photos built in {dt:.1f} s (one-off, not counted)")
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
    ap.add_argument("--para", type=Path, help="PARA folder (labels.csv, images/): real-label reference")
    ap.add_argument("--ref-size", type=int, default=4900, help="reference photos with --para")
    ap.add_argument("--keep", type=Path, help="with --para: build the reference here once and reuse it")
    ap.add_argument("--markdown", type=Path, help="also write the table, with its provenance, to this file")
    args = ap.parse_args()
    prov = Provenance()
    rows = ["| measurement | result |", "|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        w = setup_para(args.para, work, args.keep, args.ref_size) if args.para else setup(args.photos, work)
        rng = np.random.default_rng(1)
        prefs = work / "prefs.csv"
        write_prefs(prefs, w, random_user(rng), rng)
        t = time.perf_counter()
        prof = personalize(w["ref"], w["album"], prefs, work / "profile", progress=False)
        dt = time.perf_counter() - t
        r = prof.report
        print(
            f"personalize: {dt:.1f} s  (100 album photos, {r.pairs_stated} stated + {r.pairs_inferred} "
            f"inferred pairs, K=50 -> {r.neighbors} neighbours)"
        )
        reference = f"{args.ref_size} PARA photos" if args.para else "500 photos"
        rows.append(
            f"| personalize: 100 album photos, {r.pairs_stated} stated + {r.pairs_inferred} inferred pairs, "
            f"K = 50 ({r.neighbors} neighbours), reference of {reference} (built once, not counted) "
            f"| {dt:.1f} s |"
        )
        files = w["test_files"]
        if not files:  # --para with 4,900 + 100 uses every photo
            prov.write(args.markdown, "\n".join(rows))
            return
        prof.score_files(files[:16], progress=False)  # warm-up
        t = time.perf_counter()
        n = len(prof.score_files(files, progress=False))
        ips = n / (time.perf_counter() - t)
        print(f"score: {ips:.1f} images/s end to end from JPEG ({n} photos)")
        rows.append(f"| score with the profile, end to end from JPEG ({n} photos) | {ips:.1f} images/s |")
    prov.write(args.markdown, "\n".join(rows))


if __name__ == "__main__":
    main()
