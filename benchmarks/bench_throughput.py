"""Throughput of ``piaa score`` and ``piaa reference build`` against the network alone, in one run.

    python benchmarks/bench_throughput.py [--photos ../shared/data/photos] [--n 400] [--camera 24]
        [--repeats 3] [--memory] [--markdown FILE]

Every figure is a ratio to a rate measured in the same run, interleaved (the machine is shared and
noisy): each round measures the network alone (pre-decoded pixels, piaa's arrangement of ONNX Runtime
calls) and decoding alone (``bound``: the best ratio that decoding and the network sharing the cores
allow), then ``Profile.score_files`` (what ``piaa score`` runs) and ``build_reference`` on JPEG files,
then the same scoring on 24-MP camera JPEGs, decoded from the photo and (``piaa score --previews``) from
their embedded MPF preview, and decoding those camera JPEGs alone (``camera bound``: the best ratio to the
small photos' score rate that decoding the photo allows, even with a free network). Medians of
``--repeats`` rounds are printed, then where ``piaa score``'s CPU time goes per image (thread CPU time
of decoding, the network and the head, over one more run). ``--memory`` also runs ``piaa score`` as a
subprocess on 200 and on 1000 photos and prints each one's peak resident memory. ``--preview-scores``
prints how far camera JPEGs' scores move between the full-resolution decode, the photo's draft decode
(the default) and the embedded preview (``--previews``), with the benchmark's head or ``--profile``'s.

Camera JPEGs are made once (cached under /tmp/piaa-bench-camera): shared photos upscaled to 6000x4000
with added grain, saved at quality 92 (~8 MB each), one copy plain and one carrying a 1620x1080 MPF
"Large Thumbnail" preview as cameras write it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import piaa.features.extract as extract
from piaa.backbones import create_backbone
from piaa.data.images import iter_image_files, load_image
from piaa.features.extract import FeatureExtractor
from piaa.settings import QUIET, RunSettings

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"
CAMERA_DIR = Path(tempfile.gettempdir()) / "piaa-bench-camera"
CAMERA_SIZE = (6000, 4000)
PREVIEW_SIZE = (1620, 1080)
LARGE_THUMBNAIL_FULL_HD = 0x010002


def save_with_preview(
    img: Image.Image, preview: Image.Image, path: Path, mptype: int = LARGE_THUMBNAIL_FULL_HD, **kw
) -> Path:
    """Save ``img`` as a JPEG carrying ``preview`` as an MPF "Large Thumbnail" (as cameras do; another
    ``mptype`` for tests). Pillow writes MPF for ``save_all`` but marks extra frames "Undefined"; the
    entry's type is patched. Also used by tests/test_throughput.py."""
    img.save(path, "MPO", save_all=True, append_images=[preview], **kw)
    with Image.open(path) as im:
        entry = im.mpinfo[0xB002][1]
        size, offset = entry["Size"], entry["DataOffset"]
    data = path.read_bytes()
    old = struct.pack("<LLL", 0, size, offset)
    assert data.count(old) == 1, "MPF entry not found"
    path.write_bytes(data.replace(old, struct.pack("<LLL", mptype, size, offset)))
    return path


def camera_photo(src: Path, seed: int) -> Image.Image:
    """A shared photo upscaled to 24 MP with film-like grain (so it compresses like a real photo)."""
    with Image.open(src) as im:
        big = im.convert("RGB").resize(CAMERA_SIZE, Image.Resampling.BICUBIC)
    rng = np.random.default_rng(seed)
    a = np.asarray(big).astype(np.int16)
    a += rng.normal(0, 7, (*a.shape[:2], 1)).astype(np.int16)  # luma grain
    a += rng.normal(0, 3, a.shape).astype(np.int16)  # chroma grain
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def make_camera_jpegs(photos: list[Path], n: int) -> tuple[list[Path], list[Path]]:
    """``n`` camera JPEGs without and with an embedded preview (made once, then reused)."""
    plain, with_preview = CAMERA_DIR / "plain", CAMERA_DIR / "preview"
    plain.mkdir(parents=True, exist_ok=True)
    with_preview.mkdir(parents=True, exist_ok=True)
    out_plain, out_prev = [], []
    for i, src in enumerate(photos[:n]):
        a, b = plain / f"{src.stem}.jpg", with_preview / f"{src.stem}.jpg"
        if not (a.is_file() and b.is_file()):
            img = camera_photo(src, i)
            img.save(a.with_suffix(".tmp"), "JPEG", quality=92)
            a.with_suffix(".tmp").replace(a)
            prev = img.resize(PREVIEW_SIZE, Image.Resampling.BICUBIC, reducing_gap=3.0)
            save_with_preview(img, prev, b.with_suffix(".tmp"), quality=92)
            b.with_suffix(".tmp").replace(b)
        out_plain.append(a)
        out_prev.append(b)
    return out_plain, out_prev


def network_rate(fe: FeatureExtractor, pixels: np.ndarray, rounds: int = 1) -> float:
    """Images/s of the network alone on pre-decoded pixels: batches of ``fe.batch_size``, ``fe.streams``
    concurrent calls (piaa's arrangement)."""
    bs = fe.batch_size
    chunks = [pixels[i : i + bs] for i in range(0, len(pixels), bs)] * rounds
    with ThreadPoolExecutor(fe.streams) as pool:
        t = time.perf_counter()
        for _ in pool.map(fe.forward, chunks):
            pass
        return len(chunks) * bs / (time.perf_counter() - t)


def decode_rate(fe: FeatureExtractor, paths: list[Path]) -> float:
    """Images/s of decoding alone (to the network's input size), on as many threads as the network uses.
    Decoding and the network both need the cores, so ``decode / (decode + network)`` bounds the ratio
    any arrangement can reach."""
    with ThreadPoolExecutor(fe.streams) as pool:
        t = time.perf_counter()
        for _ in pool.map(fe.preprocess.load, paths):
            pass
        return len(paths) / (time.perf_counter() - t)


def score_rate(profile, paths: list[Path], workers: int | None, previews: bool = False) -> float:
    run = RunSettings(workers=workers, previews=previews, progress=False)
    profile._extractor = FeatureExtractor(profile.backbone, run)
    t = time.perf_counter()
    n = len(profile.score_files(paths, progress=False, settings=RunSettings(previews=previews)))
    return n / (time.perf_counter() - t)


def cpu_breakdown(profile, paths: list[Path]) -> dict[str, float]:
    """Thread CPU milliseconds per image that ``Profile.score_files`` spends decoding, in the network
    (``FeatureExtractor.forward``: normalisation and ONNX Runtime) and in the head, on every thread."""
    spent: dict[str, float] = {"decode": 0.0, "network": 0.0, "head": 0.0}
    lock = threading.Lock()

    def timed(name, f):
        def run(*a, **kw):
            t = time.thread_time()
            try:
                return f(*a, **kw)
            finally:
                with lock:
                    spent[name] += time.thread_time() - t

        return run

    fe = FeatureExtractor(profile.backbone, QUIET)
    decode_one, score_features = extract.decode_one, profile.score_features
    fe.forward = timed("network", fe.forward)  # type: ignore[method-assign]
    profile._extractor = fe
    extract.decode_one = timed("decode", decode_one)
    profile.score_features = timed("head", score_features)
    try:
        n = len(profile.score_files(paths, progress=False))
    finally:
        extract.decode_one = decode_one
        del profile.score_features
    return {k: 1e3 * v / n for k, v in spent.items()}


def preview_scores(profile, plain: list[Path], with_preview: list[Path]) -> dict[str, np.ndarray]:
    """Scores of the camera JPEGs decoded at full resolution, by the default draft decode, and from the
    embedded preview (``--previews``)."""
    fe = FeatureExtractor(profile.backbone, QUIET)

    def score(pixels: list[np.ndarray]) -> np.ndarray:
        px = np.stack(pixels)
        return np.concatenate(
            [profile.score_features(fe.forward(px[i : i + 8]))[0] for i in range(0, len(px), 8)]
        )

    full = score([fe.preprocess.from_pil(load_image(p)) for p in plain])
    draft = score([fe.preprocess.load(p) for p in plain])
    preview = score([fe.preprocess.load(p, previews=True) for p in with_preview])
    return {"full": full, "draft": draft, "preview": preview}


def build_rate(
    backbone, photos_dir: Path, paths: list[Path], work: Path, workers: int | None, batch: int
) -> float:
    """``piaa reference build``'s rate (its ``images/s`` line), the backbone already loaded."""
    from piaa.features.reference import build_reference

    labels = work / "labels.csv"
    rows = ["image,mean"] + [f"{p.name},{1 + (i % 9) + 0.5}" for i, p in enumerate(paths)]
    labels.write_text("\n".join(rows) + "\n")
    out = work / "ref"
    shutil.rmtree(out, ignore_errors=True)
    rep = build_reference(
        labels, photos_dir, out, backbone=backbone, batch_size=batch, workers=workers, progress=False
    )
    return rep.newly_embedded / rep.seconds


def load_profile(path: Path):
    from piaa.models.profile import load_profile as load

    return load(path)


def make_profile(work: Path):
    from piaa.models.profile import Profile, load_profile
    from piaa.models.train import TrainConfig, new_head

    bb = create_backbone("efficientnet-lite0")
    torch.manual_seed(0)
    head = new_head(bb.info.channels, TrainConfig(), stats=bb.info.stats_dim)
    head.fit_stats_scaling(torch.randn(8, bb.info.stats_dim) + 1)
    Profile(head, bb, {"name": "bench"}).save(work / "profile")
    return load_profile(work / "profile")


def peak_memory(profile_dir: Path, paths: list[Path], work: Path) -> float:
    """Peak resident memory (GB) of a ``piaa score`` subprocess over ``paths`` (a folder of links)."""
    folder = work / f"links{len(paths)}"
    folder.mkdir(exist_ok=True)
    for p in paths:
        link = folder / p.name
        if not link.exists():
            link.symlink_to(p)
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's peak (it survives fork and exec).
    code = (
        "import re, sys; from piaa.cli.main import app\n"
        "try: app(sys.argv[1:])\n"
        "except SystemExit: pass\n"
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
        "print('PEAK_KB', hwm, file=sys.stderr)"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, "score", str(folder), "--profile", str(profile_dir),
         "--output", str(work / "scores.csv")],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, check=False,
    )  # fmt: skip
    line = [x for x in res.stderr.splitlines() if x.startswith("PEAK_KB")]
    if not line:
        raise RuntimeError(res.stderr[-2000:])
    return int(line[-1].split()[1]) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    ap.add_argument("--n", type=int, default=400, help="small photos per measurement")
    ap.add_argument("--camera", type=int, default=24, help="24-MP camera JPEGs per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None, help="decode processes (default: auto)")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--memory", action="store_true", help="peak memory of piaa score, 200 vs 1000 photos")
    ap.add_argument("--preview-scores", action="store_true", help="camera JPEGs: preview vs photo scores")
    ap.add_argument("--profile", type=Path, help="a trained profile for --preview-scores")
    ap.add_argument("--markdown", type=Path, help="also write what it prints, with provenance, to this file")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests load this file without running it
    from _provenance import Provenance

    with Provenance().tee(args.markdown):
        measure(args)


def measure(args: argparse.Namespace) -> None:
    photos = sorted(iter_image_files([args.photos]))
    paths = photos[: args.n]
    cam_plain, cam_prev = make_camera_jpegs(photos, args.camera) if args.camera else ([], [])
    work = Path(tempfile.mkdtemp(prefix="piaa-bench-"))
    profile = make_profile(work)
    fe = FeatureExtractor(profile.backbone, QUIET)
    pixels = np.stack([fe.preprocess.load(p) for p in paths[:200]])
    print(f"{len(paths)} photos from {args.photos}; {len(cam_plain)} camera JPEGs in {CAMERA_DIR}")
    print(f"engine {fe.engine_name}, {fe.streams} streams, batch {fe.batch_size}, workers {args.workers}")
    score_rate(profile, paths[:32], args.workers)  # warm-up
    rows: dict[str, list[float]] = {}
    for r in range(args.repeats):
        got = {"network": network_rate(fe, pixels, rounds=2), "decode": decode_rate(fe, paths)}
        got["score"] = score_rate(profile, paths, args.workers)
        if not args.skip_build:
            got["build"] = build_rate(profile.backbone, args.photos, paths, work, args.workers, fe.batch_size)
        if cam_plain:
            got["camera"] = score_rate(profile, cam_plain, args.workers)
            got["camera+preview"] = score_rate(profile, cam_prev, args.workers, previews=True)  # --previews
            got["camera decode"] = decode_rate(fe, cam_plain)
        got["network2"] = network_rate(fe, pixels, rounds=2)
        net = (got["network"] + got["network2"]) / 2
        ratios = {"bound": got["decode"] / (got["decode"] + net)}
        skip = ("network", "network2", "decode", "camera decode")
        ratios.update({k: v / net for k, v in got.items() if k not in skip})
        for k in ("camera", "camera+preview"):
            if k in got:
                ratios[k + " / score"] = got[k] / got["score"]
        if "camera decode" in got:  # decoding the photo and the network sharing the cores, nothing else
            cam = got["camera decode"]
            ratios["camera decode / score"] = cam / got["score"]  # even with a free network
            ratios["camera bound / score"] = cam * net / (cam + net) / got["score"]
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:.1f}/s" for k, v in got.items()), flush=True)
        print("         " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()), flush=True)
        for k, v in {**got, **{f"ratio {k}": v for k, v in ratios.items()}}.items():
            rows.setdefault(k, []).append(v)
    print(f"median of {args.repeats} rounds:")
    for k, v in rows.items():
        unit = "" if k.startswith("ratio") else " images/s"
        print(f"  {k:32s} {statistics.median(v):7.2f}{unit}")
    ms = cpu_breakdown(profile, paths)
    total = sum(ms.values())
    print(
        "piaa score, thread CPU per image: "
        + ", ".join(f"{k} {v:.2f} ms" for k, v in ms.items())
        + f"; network / total {ms['network'] / total:.2f} (the ratio a perfect arrangement reaches)"
    )
    if args.preview_scores and cam_plain:
        head = profile if args.profile is None else load_profile(args.profile)
        s = preview_scores(head, cam_plain, cam_prev)
        for a, b in (("draft", "full"), ("preview", "draft"), ("preview", "full")):
            d = np.abs(s[a] - s[b])
            what = f"|score {a} - score {b}| over {len(d)} camera JPEGs"
            print(f"  {what}: mean {d.mean():.4f}, max {d.max():.4f}")
    if args.memory:
        for n in (200, 1000):
            gb = peak_memory(work / "profile", photos[:n], work)
            print(f"  peak memory, piaa score on {n} photos: {gb:.2f} GB")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
