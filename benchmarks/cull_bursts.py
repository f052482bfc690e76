"""A simulated shoot for culling benchmarks: bursts built from real photos, with the ground truth.

    from cull_bursts import build_shoot
    shoot = build_shoot(Path("/tmp/shoot"), photos, n_bursts=200, n_unrelated=200, seed=0)
    shoot.files            # every file written, shuffled order of capture
    shoot.burst_of[name]   # ground-truth burst id (an unrelated photo is a burst of one)
    shoot.frames[name]     # what was done to the frame: Frame(source, ev, blur, motion, noise, ...)

Each burst is one shared photo turned into 3-8 frames (``frames``): a small crop shift, an exposure
change (``ev`` stops), motion or defocus blur in some frames, sensor-like noise, a JPEG re-save at a
random quality; frames are 0.1-0.6 s apart with ``DateTimeOriginal`` + ``SubSecTimeOriginal`` in EXIF.
Bursts and unrelated photos (other shared photos, untouched but for a re-save) are shuffled into one
timeline; 30 % of the gaps between them are short (1-8 s, so time alone cannot separate them), the rest
20-600 s. ``n_duplicates`` frames are also written again under another name: half as a byte copy, half
as a PNG of the same pixels without EXIF and with a file time a day later (only the pixels tie it to
its burst). Also usable as a script: ``python benchmarks/cull_bursts.py OUT --bursts 20``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"
START = datetime(2024, 5, 1, 10, 0, 0)


@dataclass(frozen=True)
class Frame:
    """One written file and what was done to its source photo."""

    name: str
    source: str  # the shared photo it was made from
    burst: int
    ev: float = 0.0  # exposure change, stops
    blur: float = 0.0  # defocus blur radius, pixels (Gaussian), 0: none
    motion: int = 0  # motion blur length, pixels (horizontal box), 0: none
    noise: float = 0.0  # Gaussian noise sigma, 0-255 levels
    shift: tuple[int, int] = (0, 0)  # crop offset, pixels
    quality: int = 92
    time: str = ""  # ISO capture time written into EXIF ("" when none)
    duplicate_of: str = ""  # the frame this file copies, for exact duplicates


@dataclass
class Shoot:
    folder: Path
    files: list[Path]
    frames: dict[str, Frame]
    burst_of: dict[str, int] = field(default_factory=dict)

    def same_burst_pairs(self) -> set[frozenset[str]]:
        by: dict[int, list[str]] = {}
        for name, b in self.burst_of.items():
            by.setdefault(b, []).append(name)
        return {
            frozenset((a, b)) for names in by.values() for i, a in enumerate(names) for b in names[i + 1 :]
        }

    def to_json(self) -> dict:
        return {name: asdict(f) for name, f in self.frames.items()}


def exif_with_time(t: datetime) -> Image.Exif:
    """EXIF with ``DateTimeOriginal`` and ``SubSecTimeOriginal`` (milliseconds) set."""
    exif = Image.Exif()
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = t.strftime("%Y:%m:%d %H:%M:%S")
    ifd[0x9291] = f"{t.microsecond // 1000:03d}"
    return exif


def make_frame(src: Image.Image, rng: random.Random, strength: float = 1.0) -> tuple[Image.Image, dict]:
    """A burst frame from ``src`` and the parameters used (see the module doc)."""
    w, h = src.size
    dx, dy = rng.randint(-int(0.03 * w), int(0.03 * w)), rng.randint(-int(0.03 * h), int(0.03 * h))
    m = int(0.04 * max(w, h))
    crop = src.crop((m + dx, m + dy, w - m + dx, h - m + dy)).resize((w, h), Image.Resampling.BICUBIC)
    ev = rng.uniform(-0.8, 0.8) * strength
    blur = rng.uniform(1.2, 3.0) if rng.random() < 0.25 * strength else 0.0
    motion = rng.randint(6, 14) if blur == 0 and rng.random() < 0.2 * strength else 0
    noise = rng.uniform(0.0, 6.0)
    a = np.asarray(crop, np.float32)
    a = a * (2.0**ev)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    if motion:
        from scipy.ndimage import uniform_filter1d

        img = Image.fromarray(uniform_filter1d(np.asarray(img), size=motion, axis=1))
    if noise:
        nprng = np.random.default_rng(rng.randrange(2**32))
        a = np.asarray(img, np.float32) + nprng.normal(0, noise, (h, w, 1)).astype(np.float32)
        img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    params = {"ev": round(ev, 3), "blur": round(blur, 2), "motion": motion, "noise": round(noise, 2),
              "shift": (dx, dy)}  # fmt: skip
    return img, params


def build_shoot(
    folder: Path,
    photos: list[Path],
    *,
    n_bursts: int = 200,
    n_unrelated: int = 200,
    n_duplicates: int = 20,
    frames: tuple[int, int] = (3, 8),
    seed: int = 0,
) -> Shoot:
    """Write a shoot into ``folder`` (made empty first) from ``photos`` (distinct sources: bursts use
    the first ``n_bursts`` of a seeded shuffle, unrelated photos the next ``n_unrelated``)."""
    if len(photos) < n_bursts + n_unrelated:
        raise ValueError(f"need {n_bursts + n_unrelated} photos, got {len(photos)}")
    rng = random.Random(seed)
    pool = list(photos)
    rng.shuffle(pool)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    items: list[tuple[str, Path]] = [("burst", p) for p in pool[:n_bursts]]
    items += [("single", p) for p in pool[n_bursts : n_bursts + n_unrelated]]
    rng.shuffle(items)
    shoot = Shoot(folder, [], {})
    t = START
    written: list[tuple[Path, Frame, Image.Image]] = []
    for burst_id, (kind, src_path) in enumerate(items):
        src = Image.open(src_path).convert("RGB")
        count = rng.randint(*frames) if kind == "burst" else 1
        for k in range(count):
            name = f"IMG_{len(written) + 1:05d}.JPG"
            if kind == "burst":
                img, params = make_frame(src, rng)
            else:
                img, params = src, {}
            quality = rng.randint(80, 95)
            path = folder / name
            img.save(path, "JPEG", quality=quality, exif=exif_with_time(t))
            frame = Frame(name, src_path.name, burst_id, quality=quality, time=t.isoformat(), **params)
            written.append((path, frame, img))
            if k < count - 1:
                t += timedelta(seconds=rng.uniform(0.1, 0.6))
        t += timedelta(seconds=rng.uniform(1, 8) if rng.random() < 0.3 else rng.uniform(20, 600))
    later = (t + timedelta(days=1)).timestamp()
    for path, frame, _img in written:
        shoot.files.append(path)
        shoot.frames[frame.name] = frame
    for d, (path, frame, _img) in enumerate(rng.sample(written, min(n_duplicates, len(written)))):
        if d % 2 == 0:
            copy = folder / f"copy_{d:03d}_{path.name}"
            shutil.copy2(path, copy)
            time_text = frame.time
        else:
            copy = folder / f"export_{d:03d}.png"
            with Image.open(path) as im:
                im.convert("RGB").save(copy, "PNG")
            os.utime(copy, (later, later))
            time_text = ""
        shoot.files.append(copy)
        shoot.frames[copy.name] = replace(frame, name=copy.name, time=time_text, duplicate_of=frame.name)
    shoot.burst_of = {name: f.burst for name, f in shoot.frames.items()}
    return shoot


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    ap.add_argument("--bursts", type=int, default=20)
    ap.add_argument("--unrelated", type=int, default=20)
    ap.add_argument("--duplicates", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    photos = sorted(a.photos.glob("*.JPEG"))
    if len(photos) < a.bursts + a.unrelated:
        ap.error(f"{a.photos}: {len(photos)} .JPEG photos, {a.bursts + a.unrelated} needed (give --photos)")
    s = build_shoot(a.out, photos, n_bursts=a.bursts, n_unrelated=a.unrelated, n_duplicates=a.duplicates,
                    seed=a.seed)  # fmt: skip
    print(f"{len(s.files)} files, {len(set(s.burst_of.values()))} bursts in {a.out}")


if __name__ == "__main__":
    main()
