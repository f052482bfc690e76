"""``piaa cull`` measured: grouping of bursts, picks against a simulated photographer, and speed.

    python benchmarks/bench_cull.py [--photos ../shared/data/photos] [--bursts 200] [--unrelated 200]
        [--pairs 100] [--speed-n 1000] [--camera 16] [--repeats 2] [--skip-picks] [--skip-speed] [--tune]

Data (``cull_bursts.build_shoot``): the shared photos are split by name, the first half for choosing
thresholds (``--tune``) and training the personal profile, the second half for every figure reported,
so no rule is tuned on what it is reported on. The report shoot turns ``--bursts`` photos into bursts of
3-8 frames (crop shifts, exposure changes, defocus and motion blur, noise, JPEG re-saves) and adds
``--unrelated`` other photos, shuffled into one timeline with EXIF capture times, plus exact duplicates
under other names (byte copies, and PNG exports with no EXIF and a file time a day later).

- Grouping: precision, recall and F1 of same-burst pairs over all photos of the shoot.
- Picks: the simulated photographer's taste (kept here, not in piaa) scores each frame from what was
  done to it: ``-|ev - 0.35| - 0.8 blur - 0.15 motion - 0.05 noise`` (likes frames a third of a stop
  brighter, hates blur). Their pick is the best frame of each burst; reported is how often piaa's pick of
  the group holding that frame is it (duplicates count as their original), for chance (1 / frames), the
  generic ``nima-ava`` and a profile personalized from ``--pairs`` pairs of frames of the same burst in a
  separate training shoot (made from the tuning half), judged by the same taste, with
  ``piaa.personalize(..., generic="nima-ava")``. "ranked" is the same with the true bursts given (the
  ranking alone, without grouping errors).
- Speed: ``piaa score`` and ``piaa cull --xmp`` (decode, embed, group, flag, rank, sidecars) run as
  subprocesses on the same ``--speed-n`` photos, interleaved ``--repeats`` times; the ratio of their
  median wall times, then the same on ``--camera`` 24-MP camera JPEGs (bench_throughput's writer).
- ``--tune-blur``: the sharpness measures compared for the blurred flag, on bursts of the tuning half.
- ``--tune``: F1 over a grid of ``--similarity`` and ``--time-window`` values on a tuning shoot, and
  nothing else; the defaults in ``piaa.cull.CullSettings`` were chosen from its output.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cull_bursts import DEFAULT_PHOTOS, Frame, Shoot, build_shoot  # noqa: E402
from piaa.cull import CullSettings, cull  # noqa: E402
from piaa.cull.core import find_duplicates, group_photos, layout_vectors  # noqa: E402
from piaa.settings import QUIET

PREF_EV = 0.35


def taste(f: Frame) -> float:
    """The simulated photographer's liking of a frame (benchmark only; see the module doc)."""
    return -abs(f.ev - PREF_EV) - 0.8 * f.blur - 0.15 * f.motion - 0.05 * f.noise


def load() -> str:
    return os.popen("uptime").read().strip().split("load average:")[-1].strip()


def pair_scores(shoot: Shoot, labels: dict[str, int]) -> tuple[float, float, float]:
    truth = shoot.same_burst_pairs()
    names = sorted(labels)
    by: dict[int, list[str]] = {}
    for n in names:
        by.setdefault(labels[n], []).append(n)
    pred = {frozenset(p) for members in by.values() for p in itertools.combinations(members, 2)}
    tp = len(truth & pred)
    precision = tp / len(pred) if pred else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def original(shoot: Shoot, name: str) -> str:
    return shoot.frames[name].duplicate_of or name


def pick_accuracy(shoot: Shoot, rows) -> dict[str, float]:
    """End-to-end pick accuracy, ranking-only accuracy (true bursts given) and chance."""
    by_name = {r.path.name: r for r in rows}
    bursts: dict[int, list[str]] = {}
    for name, f in shoot.frames.items():
        if not f.duplicate_of and name in by_name:
            bursts.setdefault(f.burst, []).append(name)
    hits = ranked = chance = 0.0
    count = 0
    for names in bursts.values():
        if len(names) < 2:
            continue
        count += 1
        best = max(names, key=lambda n: taste(shoot.frames[n]))
        group = by_name[best].group
        pick = next(r for r in rows if r.group == group and r.status == "pick")
        hits += original(shoot, pick.path.name) == best
        top = min(names, key=lambda n: (bool(by_name[n].flags), -by_name[n].score))
        ranked += top == best
        chance += 1 / len(names)
    return {"pick": hits / count, "ranked": ranked / count, "chance": chance / count, "bursts": count}


def run_cull(shoot: Shoot, scorer, settings: CullSettings | None = None):
    t = time.perf_counter()
    result = cull(shoot.files, scorer, settings, progress=False)
    return result, time.perf_counter() - t


def tune(photos: list[Path], work: Path) -> None:
    """F1 on a tuning shoot over a grid of thresholds (embeddings computed once)."""
    shoot = build_shoot(work / "tune", photos, n_bursts=120, n_unrelated=120, n_duplicates=20, seed=7)
    result, _ = run_cull(shoot, "nima-ava", CullSettings(eyes=False))
    files = [r.path for r in result.rows]
    from piaa.models.profile import load_profile

    prof = load_profile("nima-ava")
    emb = np.concatenate(
        [b.features.embedding.numpy() for b in prof.extractor(QUIET).files(files)]
    )  # the same embeddings cull used (same decode, same network)
    measures = [result.measures[p] for p in files]
    dups = find_duplicates(files, measures, emb)
    times = [r.capture_time for r in result.rows]
    layout = layout_vectors(measures)
    print(f"tuning shoot: {len(files)} photos from the first half of the shared photos, seed 7")
    print("| time window (s) | similarity | layout similarity | precision | recall | F1 |")
    print("|---|---|---|---|---|---|")
    for window in (2.0, 10.0, 30.0):
        for sim in (0.8, 0.85, 0.9, 0.93, 0.95, 2.0):
            for lay in (0.6, 0.7, 0.8, 0.9, 2.0):
                labels = group_photos(times, emb, time_window=window, similarity=sim, duplicates=dups,
                                      layout=layout, layout_similarity=lay)  # fmt: skip
                p, r, f = pair_scores(shoot, {q.name: g for q, g in zip(files, labels, strict=True)})
                off = lambda v: "off" if v > 1 else f"{v:.2f}"  # noqa: E731
                print(f"| {window:g} | {off(sim)} | {off(lay)} | {p:.3f} | {r:.3f} | {f:.3f} |")


def tune_blur(photos: list[Path], work: Path) -> None:
    """Sharpness measures compared on bursts of the tuning half: how well each one's ratio to the
    group's sharpest frame separates the frames the builder blurred from the others."""
    from PIL import Image
    from scipy import ndimage

    from piaa.cull.measure import analysis_image, luma, sharpness

    shoot = build_shoot(work / "tune-blur", photos, n_bursts=80, n_unrelated=0, n_duplicates=0, seed=7)

    def variants(path: Path) -> dict[str, float]:
        img = Image.open(path).convert("RGB")
        y = luma(np.asarray(analysis_image(img)))
        y2 = luma(np.asarray(analysis_image(img, 192)))
        gx = ndimage.sobel(ndimage.gaussian_filter(y, 1.0), 1)
        gy = ndimage.sobel(ndimage.gaussian_filter(y, 1.0), 0)
        lap384 = sharpness(y) * y.var()  # the raw variance of the Laplacian
        return {
            "variance of the Laplacian, 384 px": lap384,
            "the same over the luma's variance, 384 px": sharpness(y),
            "Laplacian of Gaussian (sigma 1) over the luma's variance": ndimage.gaussian_laplace(y, 1.0).var()
            / (y.var() + 1e-6),
            "variance of the Laplacian over the luma's variance, 192 px (piaa)": sharpness(y2),
            "Tenengrad over the luma's variance": (gx**2 + gy**2).mean() / (y.var() + 1e-6),
        }

    values = {p.name: variants(p) for p in shoot.files}
    bursts: dict[int, list[str]] = {}
    for name, f in shoot.frames.items():
        bursts.setdefault(f.burst, []).append(name)
    print(f"{len(shoot.files)} frames of 80 bursts from the first half of the shared photos, seed 7")
    print("| sharpness measure | AUC | best threshold | blurred flagged | sharp flagged |")
    print("|---|---|---|---|---|")
    for key in next(iter(values.values())):
        pos, neg = [], []
        for names in bursts.values():
            best = max(values[n][key] for n in names)
            for n in names:
                blurred = shoot.frames[n].blur or shoot.frames[n].motion
                (pos if blurred else neg).append(values[n][key] / best)
        pa, na = np.array(pos), np.array(neg)
        auc = float((pa[:, None] < na[None, :]).mean())
        t = max(np.arange(0.2, 0.95, 0.025), key=lambda t: (pa < t).mean() + (na >= t).mean())
        print(f"| {key} | {auc:.3f} | {t:.3f} | {(pa < t).mean():.3f} | {(na < t).mean():.3f} |")


def training_pairs(shoot: Shoot, n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` pairs of frames of the same burst, the one the photographer likes better first."""
    rng = random.Random(seed)
    bursts: dict[int, list[str]] = {}
    for name, f in shoot.frames.items():
        bursts.setdefault(f.burst, []).append(name)
    candidates = [
        (a, b) for names in bursts.values() for a, b in itertools.combinations(names, 2)
        if abs(taste(shoot.frames[a]) - taste(shoot.frames[b])) > 0.05
    ]  # fmt: skip
    chosen = rng.sample(candidates, min(n, len(candidates)))
    return [(a, b) if taste(shoot.frames[a]) > taste(shoot.frames[b]) else (b, a) for a, b in chosen]


def personal_profile(photos: list[Path], work: Path, n_pairs: int):
    from piaa import personalize

    train = build_shoot(work / "train", photos, n_bursts=60, n_unrelated=0, n_duplicates=0, seed=11)
    pairs = training_pairs(train, n_pairs, seed=0)
    prefs = work / "pairs.csv"
    with open(prefs, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["preferred", "other"])
        w.writerows(pairs)
    t = time.perf_counter()
    prof = personalize(None, train.folder, prefs, work / "profile", generic="nima-ava", progress=False)
    return prof, len(train.files), len(pairs), time.perf_counter() - t


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def speed(files: list[Path], work: Path, repeats: int, label: str) -> None:
    folder = work / f"speed-{label}"
    folder.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(files):
        link = folder / f"{i:05d}_{p.name}"
        if not link.exists():
            os.symlink(p.resolve(), link)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    base = [sys.executable, "-m", "piaa.cli"]
    score_t, cull_t = [], []
    before = load()
    for _ in range(repeats):
        for x in folder.glob("*.xmp"):
            x.unlink()
        score_t.append(timed([*base, "score", str(folder), "--profile", "nima-ava"], env))
        cull_t.append(timed([*base, "cull", str(folder), "--profile", "nima-ava", "--xmp"], env))
    s, c = statistics.median(score_t), statistics.median(cull_t)
    sidecars = len(list(folder.glob("*.xmp")))
    print(
        f"| {label} | {len(files)} | {s:.1f} | {c:.1f} | {c / s:.2f} | {len(files) / c:.1f} | "
        f"{sidecars} | {before} / {load()} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    ap.add_argument("--bursts", type=int, default=200)
    ap.add_argument("--unrelated", type=int, default=200)
    ap.add_argument("--duplicates", type=int, default=20)
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--speed-n", type=int, default=1000)
    ap.add_argument("--camera", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-picks", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--tune", action="store_true")
    ap.add_argument("--tune-blur", action="store_true")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "piaa-bench-cull")
    a = ap.parse_args()
    photos = sorted(a.photos.glob("*.JPEG"))
    half = len(photos) // 2
    tuning, report = photos[:half], photos[half:]
    a.work.mkdir(parents=True, exist_ok=True)
    commit = os.popen("git rev-parse --short HEAD").read().strip()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}, {os.cpu_count()} cores, "
          f"load {load()}")  # fmt: skip
    if a.tune:
        tune(tuning, a.work)
        return
    if a.tune_blur:
        tune_blur(tuning, a.work)
        return
    shoot = build_shoot(a.work / "shoot", report, n_bursts=a.bursts, n_unrelated=a.unrelated,
                        n_duplicates=a.duplicates, seed=a.seed)  # fmt: skip
    n_bursts = sum(1 for b in set(shoot.burst_of.values()) if list(shoot.burst_of.values()).count(b) > 1)
    print(f"report shoot: {len(shoot.files)} photos, {n_bursts} bursts of 2+ files, from the second half "
          f"of the shared photos (seed {a.seed})")  # fmt: skip
    generic, seconds = run_cull(shoot, "nima-ava")
    p, r, f = pair_scores(shoot, {row.path.name: row.group for row in generic.rows})
    print(f"\ngrouping (same-burst pairs): precision {p:.3f}, recall {r:.3f}, F1 {f:.3f} "
          f"(cull of {len(shoot.files)} photos in {seconds:.0f} s in-process)")  # fmt: skip
    flagged = {k: sum(k in row.flags for row in generic.rows) for k in ("blurred", "clipped", "eyes_closed")}
    blurred_truth = {n for n, fr in shoot.frames.items() if fr.blur or fr.motion}
    flagged_blur = {row.path.name for row in generic.rows if "blurred" in row.flags}
    if flagged_blur:
        hit = len(flagged_blur & blurred_truth)
        print(f"blurred flag: {len(flagged_blur)} flagged, {hit / len(flagged_blur):.3f} of them blurred "
              f"by the builder; {hit / len(blurred_truth):.3f} of the blurred frames flagged; "
              f"flags {flagged}; notes {generic.notes}")  # fmt: skip
    if not a.skip_picks:
        acc = pick_accuracy(shoot, generic.rows)
        print("\n| profile | pick = photographer's | ranked (true bursts) | chance |\n|---|---|---|---|")
        print(f"| nima-ava (generic) | {acc['pick']:.3f} | {acc['ranked']:.3f} | {acc['chance']:.3f} |")
        prof, n_album, n_pairs, t_train = personal_profile(tuning, a.work, a.pairs)
        personal, _ = run_cull(shoot, prof)
        acc_p = pick_accuracy(shoot, personal.rows)
        print(f"| personal ({n_pairs} pairs, {n_album}-photo training shoot, {t_train:.0f} s) | "
              f"{acc_p['pick']:.3f} | {acc_p['ranked']:.3f} | {acc_p['chance']:.3f} |")  # fmt: skip
        print(f"({acc['bursts']} bursts)")
    if not a.skip_speed:
        print("\n| photos | n | piaa score (s) | piaa cull --xmp (s) | ratio | cull photos/s | sidecars | "
              "load before / after |\n|---|---|---|---|---|---|---|---|")  # fmt: skip
        speed(shoot.files[: a.speed_n], a.work, a.repeats, "500x375 shoot")
        if a.camera:
            from bench_throughput import make_camera_jpegs

            plain, _ = make_camera_jpegs(report, a.camera)
            speed(plain, a.work, a.repeats, "24-MP camera JPEGs")


if __name__ == "__main__":
    main()
