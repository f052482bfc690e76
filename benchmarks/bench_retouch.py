"""Personalized retouching (the paper's section 4.6) measured on simulated persons whose taste is known.

    PYTHONPATH=src python benchmarks/bench_retouch.py [--photos DIR] [--test 20] [--steps 12]

World: photos from ``--photos`` (ImageNet-style JPEGs). A crowd's taste (``simulate.crowd_taste``)
gives the reference images simulated score histograms; the generic head is regressed on them (EMD), as
``piaa personalize`` does without preferences. Four persons, each the crowd's taste plus a strong
personal weight — likes bright photos, likes dark moody photos, likes vivid colours, likes clear
(haze-free) photos — judge 300 random pairs of album photos with noise; their personal head is the
generic one fine-tuned on those pairs (hinge loss). Every step is piaa's own training code on
frozen efficientnet-lite0 features.

Then ``--test`` held-out photos are retouched (exposure, colour, dehaze) with each person's profile
and with the generic model, and the person's true (noise-free) utility of each result is measured on
its pixels. Printed: share of photos whose utility rises, mean utility gain (personal vs generic
retouch), mean brightness change, for both ways of finding parameters (per-photo optimisation and the
learned predictor, trained on 64 album photos with the default settings; and per-photo optimisation
with fewer steps, ``--cheap-steps``), and seconds per 12-megapixel photo as ``piaa retouch`` runs it
(decode, parameters, scores, full-resolution apply, JPEG encode, write) for the default method with
its saved predictor and for optimisation, plus the one-off cost of training the predictor. Prints
the load average (the machine is shared). Writes ``docs/retouch.png``.
"""

from __future__ import annotations

import argparse
import copy
import functools
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from piaa.backbones import create_backbone
from piaa.data.images import FailureLog, iter_image_files, load_image
from piaa.evaluation.simulate import crowd_histograms, crowd_taste, haze, photo_attributes
from piaa.features.extract import FeatureExtractor
from piaa.models.profile import Profile
from piaa.models.train import TrainConfig, cached_source, fit_generic, fit_ranking, new_head
from piaa.retouch import get_ops, optimize_params, pixel_scorer, train_predictor
from piaa.retouch.core import FIDELITY, MAX_ALBUM, _contexts, apply_full, thumbnail
from piaa.retouch.scoring import to_tensor
from piaa.settings import QUIET

print = functools.partial(print, flush=True)  # noqa: A001 - progress must show while it runs
NAMES = ("brightness", "colourfulness", "contrast", "sharpness", "warmth", "haze")
CENTER = np.array([0.5, 0.35, 0.6, 0.5, 0.5, 0.2], np.float32)
SCALE = np.array([0.15, 0.2, 0.2, 0.3, 0.08, 0.1], np.float32)
ALBUM = MAX_ALBUM  # the learned predictor trains on 64 album photos with the default settings (8 epochs)
CROWD = np.array([*crowd_taste().weights, 0.0], np.float32)
PERSONS = {  # personal weights on NAMES, added to 0.3 x the crowd's
    "bright": [1.0, 0, 0, 0, 0, 0],
    "dark-moody": [-1.0, 0, 0.3, 0, 0, 0],
    "vivid": [0, 1.0, 0, 0, 0, 0],
    "clear": [0, 0, 0.3, 0, 0, -1.0],
}


def attributes(img: Image.Image) -> np.ndarray:
    return np.array([*photo_attributes(img), haze(img)], np.float32)


def utility(weights: np.ndarray, attrs: np.ndarray) -> np.ndarray:
    return ((np.atleast_2d(attrs) - CENTER) / SCALE) @ weights


def build_world(photos: Path, n_test: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    files = list(iter_image_files([photos]))
    files = [files[i] for i in rng.permutation(len(files))[: 160 + 160 + n_test]]
    bb = create_backbone("efficientnet-lite0")
    kept, maps = FeatureExtractor(bb, QUIET).collect(files, failures=FailureLog(), progress=False)
    files = [files[i] for i in kept]
    imgs = [load_image(f) for f in files]
    attrs = np.stack([attributes(im) for im in imgs])
    ref, album, test = np.arange(160), np.arange(160, 320), np.arange(320, len(files))
    cfg = TrainConfig(seed=seed)
    counts = crowd_histograms(utility(CROWD, attrs[ref]), rng)
    generic = new_head(bb.info.channels, cfg, bb.info.stats_dim)
    src = cached_source(maps)
    fit_generic(
        generic,
        lambda i: src(torch.from_numpy(ref)[i]),
        torch.tensor(counts / counts.sum(1, keepdims=True)),
        cfg,
    )
    heads = {"generic": generic.eval()}
    for name, w in PERSONS.items():
        weights = 0.3 * CROWD + np.array(w, np.float32)
        u = utility(weights, attrs[album])
        pairs = []
        for _ in range(300):
            a, b = rng.choice(len(album), 2, replace=False)
            noisy = u[[a, b]] + rng.normal(0, 0.3, 2)
            pairs.append((album[a], album[b]) if noisy[0] > noisy[1] else (album[b], album[a]))
        head = copy.deepcopy(generic)
        fit_ranking(head, src, torch.tensor(pairs), cfg)
        heads[name] = head.eval()
    return {
        "bb": bb,
        "files": files,
        "imgs": imgs,
        "attrs": attrs,
        "album": album,
        "test": test,
        "heads": heads,
    }


def run(world: dict, steps: int, fidelity: float, out_png: Path, cheap_steps: int = 0) -> None:
    bb, imgs, attrs = world["bb"], world["imgs"], world["attrs"]
    ops = get_ops("exposure,colour,dehaze")
    size = bb.preprocess.size
    thumbs = {i: thumbnail(imgs[i], size) for i in (*world["album"][:ALBUM], *world["test"])}
    test = world["test"]
    test_thumbs = torch.cat([thumbs[i] for i in test])
    ctx_full = [_contexts(ops, thumbs[i]) for i in test]

    def apply_all(raw: torch.Tensor) -> list[Image.Image]:
        return [apply_full(imgs[i], ops, raw[k], 1.0, ctx_full[k]) for k, i in enumerate(test)]

    results: dict[str, dict[str, list[Image.Image]]] = {}
    seconds: dict[str, float] = {}
    for name, head in world["heads"].items():
        print(f"retouching for {name}...")
        scorer = pixel_scorer(Profile(head, bb, {}))
        t = time.perf_counter()
        results.setdefault("optimize", {})[name] = apply_all(
            optimize_params(scorer, test_thumbs, ops, steps=steps, fidelity=fidelity)
        )
        seconds[f"optimize/{name}"] = time.perf_counter() - t
        if name == "generic":
            continue
        if cheap_steps:
            results.setdefault(f"optimize-{cheap_steps}", {})[name] = apply_all(
                optimize_params(scorer, test_thumbs, ops, steps=cheap_steps, fidelity=fidelity)
            )
        t = time.perf_counter()
        album_thumbs = torch.cat([thumbs[i] for i in world["album"][:ALBUM]])
        net = train_predictor(scorer, album_thumbs, ops, fidelity=fidelity)
        seconds[f"train/{name}"] = time.perf_counter() - t
        with torch.no_grad():
            results.setdefault("learned", {})[name] = apply_all(net(test_thumbs))
    prof = Profile(world["heads"]["bright"], bb, {})
    with torch.no_grad():  # from the full photo: the torch resize against Pillow's
        mine = np.array([float(pixel_scorer(prof)(to_tensor(imgs[i]))) for i in test])
    ref = np.array([r.score for r in prof.score([world["files"][i] for i in test])])
    print(
        f"pixel scorer vs Profile.score on {len(test)} photos: max |difference| "
        f"{np.abs(mine - ref).max():.3f}"
    )
    before = attrs[test]
    after = {
        m: {n: np.stack([attributes(im) for im in r]) for n, r in res.items()} for m, res in results.items()
    }
    print(f"\n{len(test)} held-out photos; utility in the person's standardized units (noise-free)")
    print("| person | method | utility rises (personal) | gain personal | gain generic | Δ brightness |")
    print("|---|---|---|---|---|---|")
    for name, w in PERSONS.items():
        weights = 0.3 * CROWD + np.array(w, np.float32)
        u0 = utility(weights, before)
        ug = utility(weights, after["optimize"]["generic"]) - u0
        for method in ("optimize", *([f"optimize-{cheap_steps}"] if cheap_steps else []), "learned"):
            up = utility(weights, after[method][name]) - u0
            db = after[method][name][:, 0] - before[:, 0]
            print(
                f"| {name} | {method} | {np.mean(up > 0):.0%} | {up.mean():+.2f} | {ug.mean():+.2f} | "
                f"{db.mean():+.3f} |"
            )
    print("\nseconds:", {k: round(v, 1) for k, v in seconds.items()})
    grid(world, results["optimize"], out_png)


def grid(world: dict, results: dict, path: Path, side: int = 200) -> None:
    """One row per person: a held-out photo, its generic retouch, its personal retouch."""
    test, imgs = world["test"], world["imgs"]
    rows = list(PERSONS)
    row_h = side + 40
    canvas = Image.new("RGB", (3 * side + 40, len(rows) * row_h + 8), "white")
    draw = ImageDraw.Draw(canvas)
    for r, name in enumerate(rows):
        k = r * 3 % len(test)
        y = 8 + r * row_h
        draw.text(
            (10, y), f"person who likes: {name}: original / generic retouch / personal retouch", fill="black"
        )
        for c, im in enumerate((imgs[test[k]], results["generic"][k], results[name][k])):
            th = im.copy()
            th.thumbnail((side, side))
            canvas.paste(th, (10 + c * (side + 10), y + 18))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    print(f"wrote {path}")


def speed(world: dict, repeats: int = 2, n_photos: int = 3, threads: tuple[int, ...] = (1,)) -> None:
    """Seconds per 12-megapixel photo (4000 x 3000 JPEG) as ``piaa retouch`` runs it: decode, find the
    parameters, score before and after, apply at full resolution, encode, write. For the default
    method (learned) the parameters come from the predictor saved with the profile, loaded from disk
    on each run; training it is a one-off cost per profile, measured separately on MAX_ALBUM album
    photos with the default settings."""
    from piaa.retouch.batch import prepare_predictors, retouch_files
    from piaa.retouch.core import MAX_ALBUM, PREDICTOR_SETTINGS, RetouchSettings

    ops = "exposure,colour,dehaze"
    album = [world["files"][i] for i in world["album"][:MAX_ALBUM]]
    print(f"\nspeed (load average before: {_load()})")
    with tempfile.TemporaryDirectory() as tmp:
        prof = Profile(world["heads"]["bright"], world["bb"], {}).save(Path(tmp) / "profile")
        prof = Profile.load(prof)
        t = time.perf_counter()
        method, _ = prepare_predictors(prof, {"personal": pixel_scorer(prof)}, ops, "auto", album=album)
        train_s = time.perf_counter() - t
        assert method == "learned"
        print(
            f"one-off: training the learned predictor on {len(album)} album photos, "
            f"{PREDICTOR_SETTINGS['epochs']} epochs: {train_s:.1f} s (saved with the profile)"
        )
        srcs = []
        for k in range(n_photos):
            srcs.append(Path(tmp) / f"big{k}.jpg")
            img = world["imgs"][world["test"][k]].resize((4000, 3000), Image.Resampling.BICUBIC)
            img.save(srcs[-1], quality=92)
        runs = [("default (learned, saved predictor)", "auto"), ("optimize, 12 steps", "optimize")]
        before = torch.get_num_threads()
        for label, method, n_threads in [(*r, t) for t in threads for r in runs]:
            torch.set_num_threads(n_threads)
            times = []
            for r in range(repeats):
                t = time.perf_counter()
                done = retouch_files(
                    prof, srcs, Path(tmp) / f"out-{method}-{n_threads}-{r}",
                    RetouchSettings(ops=ops, method=method), album=album, progress=False,
                )  # fmt: skip
                times.append((time.perf_counter() - t) / n_photos)
                assert len(done) == n_photos and done[0].personal.method in ("learned", "optimize")
            print(
                f"12 MP, {label}, {n_threads} torch thread(s): {min(times):.2f} s per photo end to end, "
                f"parameters included (best of {repeats} runs of {n_photos} photos, worst "
                f"{max(times):.2f} s; ran: {done[0].personal.method}; load average {_load()})"
            )
        torch.set_num_threads(before)
    print(f"load average after: {_load()}")


def _load() -> str:
    import os

    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/photos")
    ap.add_argument("--test", type=int, default=20)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--cheap-steps", type=int, default=6, help="also optimize with this many steps (0: no)")
    ap.add_argument("--fidelity", type=float, default=FIDELITY)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("docs/retouch.png"))
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument(
        "--threads", type=int, default=0, help="torch threads for the quality part (0: torch's default)"
    )
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    default_threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()} (default {default_threads}); load average {_load()}")
    t = time.perf_counter()
    world = build_world(args.photos, args.test, args.seed)
    print(f"world built in {time.perf_counter() - t:.0f} s")
    print(f"fidelity λ = {args.fidelity}, {args.steps} optimisation steps")
    run(world, args.steps, args.fidelity, args.out, args.cheap_steps)
    if not args.no_speed:
        speed(world, threads=tuple(sorted({default_threads, 1}, reverse=True)))
    print(f"total {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    from piaa.settings import RunSettings, torch_threads

    with torch_threads(RunSettings.from_env().torch_threads):  # this script is the entry point
        main()
